/**
 * graph: Definition + rules → the DAG. One node per stage, one per project file a stage takes
 * as input; edges run from what a stage needs to the stage:
 *
 *     parent     the previous stage of the same pipeline (the tree it starts from); for a
 *                pipeline's first stage, the last stage of its `base:` pipeline, if it has one
 *     input      the last stage of an input pipeline, or a project file's node
 *     buildroot  the last stage of the pipeline named by `build:`
 *
 * Load has already rejected cycles and dangling references with positions; this module
 * assumes a valid Definition. It does not compute keys, touch the store or validate options.
 */
import { Dag } from './dag.js';
import type { Definition, InputDef, PipelineDef, StageDef } from './definition.js';
import { fileNodeId, stageNodeId, type NodeId, type PipelineName } from './ids.js';
import type { Rule, RuleRegistry } from './rule.js';

export type EdgeKind = 'parent' | 'input' | 'buildroot';

export type GraphNode =
  | { kind: 'stage'; id: NodeId; stage: StageDef; rule: Rule }
  | { kind: 'file'; id: NodeId; input: Extract<InputDef, { kind: 'file' }> };

export interface BuildGraph {
  graph: Dag<GraphNode, { kind: EdgeKind; name?: string }>;
  /** Stage nodes in dependency order. */
  order: NodeId[];
  /** The node whose tree is the pipeline's tree (its last stage). */
  final(pipeline: PipelineName): NodeId;
  stage(id: NodeId): Extract<GraphNode, { kind: 'stage' }>;
}

export function buildGraph(def: Definition, rules: RuleRegistry): BuildGraph {
  const graph = new Dag<GraphNode, { kind: EdgeKind; name?: string }>();
  const finalOf = (p: PipelineName): NodeId => {
    const pl = def.pipelines.get(p);
    const last = pl?.stages[pl.stages.length - 1];
    if (!pl || !last) throw new Error(`Internal error: pipeline ${p} has no stages`);
    return stageNodeId(p, last.id);
  };
  for (const pl of def.pipelines.values()) {
    for (const s of pl.stages) {
      const rule = rules.get(s.rule);
      if (!rule) throw new Error(`Internal error: unknown rule ${s.rule} after load`);
      graph.addNode(stageNodeId(pl.name, s.id), { kind: 'stage', id: stageNodeId(pl.name, s.id), stage: s, rule });
    }
  }
  for (const pl of def.pipelines.values()) addEdges(graph, pl, finalOf);
  const order = graph.topologicalSort().filter((id) => graph.getNodeAttributes(id).kind === 'stage') as NodeId[];
  return {
    graph,
    order,
    final: finalOf,
    stage(id) {
      const n = graph.getNodeAttributes(id);
      if (n.kind !== 'stage') throw new Error(`Internal error: ${id} is not a stage`);
      return n;
    },
  };
}

function addEdges(graph: BuildGraph['graph'], pl: PipelineDef, finalOf: (p: PipelineName) => NodeId): void {
  pl.stages.forEach((s, i) => {
    const id = stageNodeId(pl.name, s.id);
    const prev = pl.stages[i - 1];
    if (prev) graph.addDirectedEdge(stageNodeId(pl.name, prev.id), id, { kind: 'parent' });
    else if (pl.base) graph.addDirectedEdge(finalOf(pl.base.pipeline), id, { kind: 'parent' });
    if (pl.build) graph.addDirectedEdge(finalOf(pl.build.pipeline), id, { kind: 'buildroot' });
    for (const input of s.inputs) {
      if (input.kind === 'pipeline') {
        graph.addDirectedEdge(finalOf(input.pipeline), id, { kind: 'input', name: input.name });
      } else if (input.kind === 'packages') {
        // No node: the locked set is data of the stage itself, digested by key.ts.
        continue;
      } else {
        const fid = fileNodeId(input.rel);
        if (!graph.hasNode(fid)) graph.addNode(fid, { kind: 'file', id: fid, input });
        graph.addDirectedEdge(fid, id, { kind: 'input', name: input.name });
      }
    }
  });
}

/** Every stage node the given nodes need, themselves included (ancestors through all edges). */
export function ancestors(g: BuildGraph, from: NodeId[]): Set<NodeId> {
  return walk(g, from, (id) => g.graph.inNeighbors(id));
}

/** Every stage node that needs one of the given nodes, themselves included (through all edges). */
export function descendants(g: BuildGraph, from: NodeId[]): Set<NodeId> {
  return walk(g, from, (id) => g.graph.outNeighbors(id));
}

/** The stage nodes reachable from `from` by `next`, `from` included; file nodes are not followed. */
function walk(g: BuildGraph, from: NodeId[], next: (id: NodeId) => string[]): Set<NodeId> {
  const seen = new Set<NodeId>();
  const stack = [...from];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    if (g.graph.getNodeAttributes(id).kind !== 'stage') continue;
    seen.add(id);
    for (const n of next(id)) stack.push(n as NodeId);
  }
  return seen;
}
