import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dag } from '../src/dag.js';

/** a → b → d, a → c → d, two edges a → b, and e with no edges, added in the order a e d c b. */
function diamond(): Dag<string, { kind: string }> {
  const g = new Dag<string, { kind: string }>();
  for (const id of ['a', 'e', 'd', 'c', 'b']) g.addNode(id, id.toUpperCase());
  g.addDirectedEdge('a', 'b', { kind: 'parent' });
  g.addDirectedEdge('a', 'c', { kind: 'input' });
  g.addDirectedEdge('a', 'b', { kind: 'buildroot' });
  g.addDirectedEdge('c', 'd', { kind: 'parent' });
  g.addDirectedEdge('b', 'd', { kind: 'input' });
  return g;
}

test('topological order: sources in the order added, then each node once its last predecessor is out, first in first out', () => {
  assert.deepEqual(diamond().topologicalSort(), ['a', 'e', 'b', 'c', 'd']);
});

test('neighbours once each, in the order of their first edge; every edge with its source and attributes', () => {
  const g = diamond();
  assert.deepEqual(g.inNeighbors('b'), ['a']);
  assert.deepEqual(g.outNeighbors('a'), ['b', 'c']);
  assert.deepEqual(g.inNeighbors('d'), ['c', 'b']);
  assert.deepEqual(g.inEdges('b').map((e) => [g.source(e), g.target(e), g.getEdgeAttributes(e).kind]), [['a', 'b', 'parent'], ['a', 'b', 'buildroot']]);
  assert.deepEqual(g.inEdges('a'), []);
  assert.equal(g.getNodeAttributes('d'), 'D');
  assert.equal(g.hasNode('f'), false);
  assert.equal(g.order, 5);
});

test('a node added twice, an edge to a missing node and a cycle are internal errors', () => {
  const g = diamond();
  assert.throws(() => g.addNode('a', 'again'), /Internal error: node a added twice/);
  assert.throws(() => g.addDirectedEdge('a', 'z', { kind: 'input' }), /Internal error: no node z/);
  g.addDirectedEdge('d', 'a', { kind: 'input' });
  assert.throws(() => g.topologicalSort(), /Internal error: the graph has a cycle/);
});
