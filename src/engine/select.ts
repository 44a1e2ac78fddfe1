/**
 * What a build or plan aims at, from names a user typed: targets → their final nodes, and
 * `--until` / `--from` stages → the goals cut short and the stages forced to run again. Unknown
 * names are usage diagnostics with a did-you-mean; nothing here reads the store.
 */
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { ancestors, descendants } from '../graph.js';
import { stageNodeId, type NodeId, type PipelineName } from '../ids.js';
import { closest, listOf } from '../load/suggest.js';
import { fail, ok, type Result } from '../result.js';
import type { KeyedProject, Selection } from './types.js';

type Named = Pick<KeyedProject, 'def' | 'graph'>;

/** Resolves target names to their final nodes, or a usage diagnostic naming the known ones. */
export function resolveTargets(ctx: Named, names: string[]): Result<NodeId[], Diagnostic[]> {
  const errors: Diagnostic[] = [];
  if (names.length === 0) return fail([noDefaultTarget()]);
  const goals: NodeId[] = [];
  for (const n of names) {
    const t = ctx.def.targets.get(n);
    if (!t) {
      const known = [...ctx.def.targets.keys()];
      errors.push(
        diagnostic(
          'unknown-target',
          `no target named ${JSON.stringify(n)}`,
          undefined,
          known.length ? `${closest(n, known) ? `did you mean ${JSON.stringify(closest(n, known))}? ` : ''}the targets are: ${known.join(', ')}` : 'the definition has no targets: add one under targets:',
        ),
      );
    } else goals.push(ctx.graph.final(t.pipeline));
  }
  return errors.length ? fail(errors) : ok(goals);
}

function noDefaultTarget(): Diagnostic {
  return diagnostic('unknown-target', 'no target named, and the definition has no targets', undefined, 'add one under targets:, or name a target');
}

/**
 * `PIPELINE.STAGE` (the stage's name, or its index) → the stage's node; unknown names are
 * usage errors with a did-you-mean. `what` names the flag or argument for the message.
 */
export function resolveNode(ctx: Named, text: string, what: string): Result<NodeId, Diagnostic[]> {
  const dot = text.indexOf('.');
  const pipelines = [...ctx.def.pipelines.keys()];
  const pl = dot > 0 ? ctx.def.pipelines.get(text.slice(0, dot) as PipelineName) : undefined;
  const whole = dot < 0 ? ctx.def.pipelines.get(text as PipelineName) : undefined;
  if (whole) {
    const last = whole.stages[whole.stages.length - 1]!;
    return fail([
      diagnostic('usage', `${what} ${text}: name a stage of it, PIPELINE.STAGE`, undefined, `the pipeline's tree is its last stage's: ${text}.${last.id}; its stages are ${listOf(whole.stages.map((s) => `${text}.${s.id}`))}`),
    ]);
  }
  if (!pl) {
    const name = dot > 0 ? text.slice(0, dot) : text;
    return fail([
      diagnostic(
        'usage',
        dot > 0 ? `${what} ${text}: no pipeline named ${JSON.stringify(name)}` : `${what} ${text}: a stage is named PIPELINE.STAGE`,
        undefined,
        `${closest(name, pipelines) ? `did you mean ${JSON.stringify(closest(name, pipelines))}? ` : ''}the pipelines are ${listOf(pipelines)}; a stage is its name or its index: ${pipelines[0] ?? 'os'}.0`,
      ),
    ]);
  }
  const rest = text.slice(dot + 1);
  const stage = pl.stages.find((s) => s.id === rest) ?? (/^\d+$/.test(rest) ? pl.stages[Number(rest)] : undefined);
  if (!stage) {
    const ids = pl.stages.map((s) => s.id);
    const guess = closest(rest, ids);
    return fail([
      diagnostic(
        'usage',
        `${what} ${text}: pipeline ${pl.name} has no stage ${JSON.stringify(rest)}`,
        undefined,
        `${guess ? `did you mean ${pl.name}.${guess}? ` : ''}its stages are ${listOf(ids.map((i) => `${pl.name}.${i}`))} (or their index, from 0)`,
      ),
    ]);
  }
  return ok(stageNodeId(pl.name, stage.id));
}

export function selectNodes(ctx: Named, targets: string[], o: { until?: string; from?: string }): Result<Selection, Diagnostic[]> {
  const finals = resolveTargets(ctx, targets);
  if (!finals.ok) return finals;
  const needed = ancestors(ctx.graph, finals.value);
  const pick = (text: string, flag: string): Result<NodeId, Diagnostic[]> => {
    const node = resolveNode(ctx, text, flag);
    if (!node.ok || needed.has(node.value)) return node;
    return fail([
      diagnostic('usage', `${flag} ${text}: ${targets.join(', ')} ${targets.length === 1 ? 'does' : 'do'} not need that stage`, undefined, `name a stage of a pipeline the target is built from; imgmake plan ${targets.join(' ')} lists them`),
    ]);
  };
  let goals = finals.value;
  let until: NodeId | undefined;
  if (o.until !== undefined) {
    const picked = pick(o.until, '--until');
    if (!picked.ok) return picked;
    until = picked.value;
    goals = [until];
  }
  let force = new Set<NodeId>();
  if (o.from !== undefined) {
    const from = pick(o.from, '--from');
    if (!from.ok) return from;
    const upTo = ancestors(ctx.graph, goals);
    if (!upTo.has(from.value)) {
      return fail([diagnostic('usage', `--from ${o.from} comes after --until ${o.until}`, undefined, 'name a stage before the --until stage, or the same one')]);
    }
    force = new Set([...descendants(ctx.graph, [from.value])].filter((id) => upTo.has(id)));
  }
  return ok({ goals, force, ...(until ? { until } : {}) });
}
