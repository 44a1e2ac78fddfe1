/**
 * A directed multigraph with attributes on nodes and edges, and its topological order: what
 * graph.ts's DAG of stages needs, and nothing else. It replaced graphology's MultiDirectedGraph
 * and graphology-dag's topologicalSort (the same method names, so their callers did not
 * change): the graph has tens of nodes, and loading those packages was a tenth of a no-op
 * build's start-up (issue 18, docs/bench.md "Start-up").
 *
 * Orders are insertion orders: nodes in the order they were added, a node's neighbours in the
 * order of the first edge between them, its edges by neighbour in that order (graphology's, but
 * for the edges between the same two nodes, which it listed newest first: no caller depends on
 * that order, each looks an edge up by its kind and name). It does not
 * check for cycles when an edge is added (load rejected them with positions); `topologicalSort`
 * throws on one, an internal error by then.
 *
 *     const g = new Dag<string, { kind: string }>();
 *     g.addNode('a', 'A'); g.addNode('b', 'B');
 *     g.addDirectedEdge('a', 'b', { kind: 'parent' });
 *     g.topologicalSort();   // ['a', 'b']
 */

interface NodeEntry<N> {
  attrs: N;
  /** Neighbour → the edges between them, both ways. */
  in: Map<string, string[]>;
  out: Map<string, string[]>;
}

interface EdgeEntry<E> {
  source: string;
  target: string;
  attrs: E;
}

export class Dag<N, E> {
  readonly #nodes = new Map<string, NodeEntry<N>>();
  readonly #edges = new Map<string, EdgeEntry<E>>();

  /** How many nodes. */
  get order(): number {
    return this.#nodes.size;
  }

  addNode(id: string, attrs: N): void {
    if (this.#nodes.has(id)) throw new Error(`Internal error: node ${id} added twice`);
    this.#nodes.set(id, { attrs, in: new Map(), out: new Map() });
  }

  hasNode(id: string): boolean {
    return this.#nodes.has(id);
  }

  getNodeAttributes(id: string): N {
    return this.#node(id).attrs;
  }

  /** Adds an edge source → target (another between the same two is another edge) and returns its key. */
  addDirectedEdge(source: string, target: string, attrs: E): string {
    const from = this.#node(source);
    const to = this.#node(target);
    const key = `e${this.#edges.size}`;
    this.#edges.set(key, { source, target, attrs });
    append(from.out, target, key);
    append(to.in, source, key);
    return key;
  }

  /** The keys of the edges into `id`. */
  inEdges(id: string): string[] {
    return [...this.#node(id).in.values()].flat();
  }

  getEdgeAttributes(edge: string): E {
    return this.#edge(edge).attrs;
  }

  source(edge: string): string {
    return this.#edge(edge).source;
  }

  target(edge: string): string {
    return this.#edge(edge).target;
  }

  /** The nodes with an edge into `id`, each once. */
  inNeighbors(id: string): string[] {
    return [...this.#node(id).in.keys()];
  }

  /** The nodes `id` has an edge to, each once. */
  outNeighbors(id: string): string[] {
    return [...this.#node(id).out.keys()];
  }

  /**
   * Every node after the nodes it has edges from (Kahn's algorithm, first in first out): the
   * nodes without one in the order they were added, then each node as soon as the last of its
   * predecessors is out, visited in the order of their edges.
   */
  topologicalSort(): string[] {
    const waiting = new Map<string, number>();
    const queue: string[] = [];
    for (const [id, n] of this.#nodes) {
      if (n.in.size === 0) queue.push(id);
      else waiting.set(id, n.in.size);
    }
    for (let i = 0; i < queue.length; i++) {
      for (const next of this.#nodes.get(queue[i]!)!.out.keys()) {
        const left = waiting.get(next)! - 1;
        waiting.set(next, left);
        if (left === 0) queue.push(next);
      }
    }
    if (queue.length !== this.#nodes.size) throw new Error('Internal error: the graph has a cycle');
    return queue;
  }

  #node(id: string): NodeEntry<N> {
    const n = this.#nodes.get(id);
    if (!n) throw new Error(`Internal error: no node ${id} in the graph`);
    return n;
  }

  #edge(key: string): EdgeEntry<E> {
    const e = this.#edges.get(key);
    if (!e) throw new Error(`Internal error: no edge ${key} in the graph`);
    return e;
  }
}

function append(m: Map<string, string[]>, neighbour: string, key: string): void {
  const list = m.get(neighbour);
  if (list) list.push(key);
  else m.set(neighbour, [key]);
}
