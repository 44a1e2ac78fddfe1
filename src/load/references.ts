/**
 * References between pipelines (`base:`, `build:`, `{ pipeline: NAME }` inputs, targets' `pipeline:`):
 * each must name a pipeline, and pipelines may not depend on each other in a cycle.
 * A cycle is reported once, at the reference leaving its earliest-defined pipeline, naming
 * the whole chain, with notes at its other references.
 */
import type { Loc } from '../diagnostic.js';
import { closest, listOf } from './suggest.js';
import type { PipelineRef } from './pipelines.js';
import type { Diagnostics } from './yaml.js';

/** `declared`: every pipeline name written, in definition order, even those that had errors. */
export function checkReferences(
  d: Diagnostics,
  declared: readonly string[],
  refs: readonly PipelineRef[],
  targetRefs: readonly { to: string; loc: Loc }[],
): void {
  const known = new Set(declared);
  for (const r of [...refs, ...targetRefs]) {
    if (known.has(r.to)) continue;
    const guess = closest(r.to, declared);
    d.add(
      'unknown-pipeline',
      `unknown pipeline "${r.to}"`,
      r.loc,
      guess
        ? `did you mean "${guess}"? Pipelines defined: ${listOf(declared)}.`
        : declared.length > 0
          ? `define it under "pipelines:"; pipelines defined: ${listOf(declared)}`
          : 'define it under "pipelines:"; no pipelines are defined',
    );
  }
  findCycles(d, declared, refs.filter((r) => known.has(r.to)));
}

function findCycles(d: Diagnostics, order: readonly string[], refs: readonly PipelineRef[]): void {
  const out = new Map<string, PipelineRef[]>();
  for (const r of refs) out.set(r.from, [...(out.get(r.from) ?? []), r]);

  // Tarjan's strongly connected components; every component with a cycle is reported once.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const r of out.get(v) ?? []) {
      if (!index.has(r.to)) {
        connect(r.to);
        low.set(v, Math.min(low.get(v)!, low.get(r.to)!));
      } else if (onStack.has(r.to)) low.set(v, Math.min(low.get(v)!, index.get(r.to)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      components.push(c);
    }
  };
  for (const v of order) if (!index.has(v)) connect(v);

  for (const c of components) {
    const members = new Set(c);
    const selfLoop = c.length === 1 && (out.get(c[0]!) ?? []).some((r) => r.to === c[0]);
    if (c.length === 1 && !selfLoop) continue;
    const start = order.find((p) => members.has(p))!;
    const path = shortestCycle(start, members, out);
    const chain = [start, ...path.map((r) => r.to)];
    const [first, ...rest] = path;
    d.add(
      'cycle',
      `pipelines depend on each other in a cycle: ${chain.join(' → ')}`,
      first!.loc,
      "a pipeline cannot use its own tree, directly or through other pipelines: remove one of these references",
      rest.map((r) => ({
        message:
          r.how === 'build'
            ? `"${r.from}" builds in "${r.to}" here`
            : r.how === 'base'
              ? `"${r.from}" starts from "${r.to}" here`
              : `"${r.from}" uses "${r.to}" as an input here`,
        loc: r.loc,
      })),
    );
  }
}

/** The references of a shortest path from `start` back to itself, within one component. */
function shortestCycle(start: string, members: Set<string>, out: Map<string, PipelineRef[]>): PipelineRef[] {
  const via = new Map<string, PipelineRef>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const r of out.get(v) ?? []) {
      if (!members.has(r.to)) continue;
      if (r.to === start) {
        const path = [r];
        for (let at = v; at !== start; at = via.get(at)!.from) path.unshift(via.get(at)!);
        return path;
      }
      if (!via.has(r.to)) {
        via.set(r.to, r);
        queue.push(r.to);
      }
    }
  }
  throw new Error(`Internal error: no cycle through ${start}`);
}
