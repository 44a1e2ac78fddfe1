/**
 * The build spine, shared by a build (engine/build.ts) and by a buildroot built while locking
 * (engine/lock.ts): for some goal nodes of a keyed project, plan → trees the remote has →
 * packages of the stages that will run, fetched and verified → schedule. It does not lease,
 * export or summarise; its callers do.
 *
 *     plan ─▶ remote.downloadPlanned (what it has; re-plan) ─▶ fetch + verify packages
 *          ─▶ remote.seed (upload what it lacks) ─▶ schedule (sandboxed stages, commits)
 */
import { join } from 'node:path';
import type { StageDef } from '../definition.js';
import type { NodeId } from '../ids.js';
import { fetchPackageInputs } from '../packages/index.js';
import { plan, type Plan } from '../plan.js';
import type { Result } from '../result.js';
import { schedule, type ScheduleResult } from '../schedule.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import type { TreeRecord } from '../store/types.js';
import { exclusively } from './exclusive.js';
import type { Engine, KeyedProject, RunOptions, Selection } from './types.js';

/** A package stage's buildroot, or none (the package layer's hook: format.ts, ResolveContext). */
export type BuildrootOf = (stage: StageDef) => Promise<SandboxSpec['buildroot'] | undefined>;

export interface SpineOptions extends RunOptions {
  /** Where a package stage's buildroot comes from while verifying (engine/lock.ts, buildroots). */
  buildrootOf?: BuildrootOf | undefined;
  /** Told the plan once it is final (after the remote's trees), before anything is fetched or run. */
  onPlan?: (p: Plan) => void;
  /** Targets' last stages whose output goes to out/ (src/deliver.ts): those current there, and how to take the others'. */
  current?: ReadonlySet<NodeId> | undefined;
  deliver?: ReadonlyMap<NodeId, (upper: string) => Promise<boolean>> | undefined;
}

export type SpineResult =
  | { ok: true; plan: Plan; schedule: ScheduleResult }
  /** The packages could not be fetched or verified: nothing ran. */
  | { ok: false; plan: Plan; fetch: string };

export async function runSpine(e: Engine, p: KeyedProject, sel: Selection, o: SpineOptions): Promise<SpineResult> {
  e.remote?.attach(o.logger);
  const planOpts = { graph: p.graph, keys: p.keys, store: e.store, goals: sel.goals, scope: p.scope, force: sel.force, ...(e.remote ? { remote: e.remote } : {}), ...(o.current ? { current: o.current } : {}), ...(o.deliver ? { delivers: new Set(o.deliver.keys()) } : {}) };
  let planned = await plan(planOpts);
  // Trees the remote has are downloaded first (one that fails to download is built instead).
  if (e.remote) planned = await e.remote.downloadPlanned(planned, () => plan(planOpts));
  o.onPlan?.(planned);
  o.clock?.lap('plan');
  const running = planned.stages.filter((s) => s.status === 'run').map((s) => p.graph.stage(s.id).stage);
  const artifacts = await fetchPackages(e, p, running, o);
  o.clock?.lap('fetch');
  if (!artifacts.ok) return { ok: false, plan: planned, fetch: artifacts.error };
  // Trees found here that the remote lacks go up too, while the build runs.
  e.remote?.seed(planned.found);
  const r = await schedule({
    graph: p.graph,
    keys: p.keys,
    plan: planned,
    store: e.store,
    sandbox: e.sandbox,
    logger: o.logger,
    jobs: o.jobs,
    scope: p.scope,
    artifacts: artifacts.value,
    replace: sel.force,
    ...(o.deliver ? { deliver: o.deliver } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(e.remote ? { onCommit: (id: NodeId, tree: TreeRecord) => e.remote!.upload(id, tree) } : {}),
  });
  o.clock?.lap('stages');
  return { ok: true, plan: planned, schedule: r };
}

/**
 * The packages of STAGES' package inputs, fetched (or found in the cache) and verified:
 * sha256 → content path, or a message naming what failed and what to do.
 */
export async function fetchPackages(e: Engine, p: KeyedProject, stages: StageDef[], o: SpineOptions): Promise<Result<Map<string, string>, string>> {
  const fetch = () => fetchPackageInputs(stages, {
    formats: e.formats.formats,
    vars: p.def.vars,
    cacheDir: e.cacheDir,
    sandbox: e.sandbox,
    workDir: join(e.cacheDir, 'verify'),
    ...(o.buildrootOf ? { buildrootOf: o.buildrootOf } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    logger: o.logger,
  });
  // Verifying writes in CACHE/verify: one build at a time, and only when there is something to verify.
  return stages.some((s) => s.inputs.some((i) => i.kind === 'packages')) ? exclusively(e, 'verifying', o, fetch) : fetch();
}
