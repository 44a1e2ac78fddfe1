/**
 * One build of a loaded definition: plan, fetch the packages of the package stages that will run,
 * schedule, export. `imgmake build` runs it once; `imgmake watch` once per settled change.
 * Reports through the logger only; returns what happened.
 */
import { join } from 'node:path';
import type { Logger } from '../event.js';
import { exportTarget } from '../export.js';
import type { StageDef } from '../definition.js';
import { fetchPackageInputs } from '../packages/index.js';
import { FORMATS } from '../packages/formats.js';
import { plan } from '../plan.js';
import type { Result } from '../result.js';
import { schedule } from '../schedule.js';
import type { Context, Selection } from './context.js';
import { buildrootHook } from './buildroot.js';
import { collectAfterBuild, leaseBuild } from './cache.js';
import type { NodeId } from '../ids.js';
import type { TreeRecord } from '../store/types.js';

export interface BuildRun {
  ok: boolean;
  ran: number;
  cached: number;
  failed: number;
  cancelled: number;
  wallMs: number;
}

export interface RunBuildOptions {
  logger: Logger;
  jobs: number;
  signal: AbortSignal;
  /** When the command started (performance.now()): wall time counts loading too. */
  started: number;
  /** After a successful build, collect the cache down to this many bytes (`--max-cache-size`). */
  maxCacheBytes?: number | undefined;
}

/**
 * Holds a lease on everything the build needs while it runs (a `cache gc` meanwhile leaves it
 * alone, see store/gc.ts), and collects the cache to `--max-cache-size` after a success, still
 * holding it: nothing the build used or made can go.
 */
export async function runBuild(ctx: Context, targets: string[], selection: Selection, o: RunBuildOptions): Promise<BuildRun> {
  const lease = await leaseBuild(ctx, selection.goals, o.logger);
  try {
    const r = await buildLeased(ctx, targets, selection, o);
    const max = o.maxCacheBytes ?? ctx.def.cache?.maxSize;
    if (r.ok && max !== undefined) await collectAfterBuild(ctx, max);
    return r;
  } finally {
    await lease.release();
  }
}

async function buildLeased(ctx: Context, targets: string[], selection: Selection, o: RunBuildOptions): Promise<BuildRun> {
  const { logger, signal, started } = o;
  const { goals, force, until } = selection;
  const summary = (r: Omit<BuildRun, 'wallMs'>): BuildRun => {
    const run = { ...r, wallMs: Math.round(performance.now() - started) };
    logger.log({ type: 'summary', ...run });
    return run;
  };
  const planOpts = { graph: ctx.graph, keys: ctx.keys, store: ctx.store, goals, scope: ctx.scope, force, ...(ctx.remote ? { remote: ctx.remote } : {}) };
  if (ctx.def.allowed?.length) logger.log({ type: 'allow-path', dirs: ctx.def.allowed });
  ctx.remote?.attach(logger);
  let p = await plan(planOpts);
  // Trees the remote has are downloaded first (one that fails to download is built instead).
  if (ctx.remote) p = await ctx.remote.settle(p, () => plan(planOpts));
  const toRun = p.stages.filter((s) => s.status === 'run').length;
  logger.log({ type: 'plan', targets, toRun, cached: p.stages.filter((s) => s.status === 'cached').length });
  // The packages of the package stages that will run, fetched (or found) and verified before
  // any stage starts.
  const artifacts = await fetchPackages(ctx, p.stages.filter((s) => s.status === 'run').map((s) => ctx.graph.stage(s.id).stage), logger, signal, o.jobs);
  if (!artifacts.ok) {
    logger.log({ type: 'fetch-failed', message: artifacts.error });
    return summary({ ok: false, ran: 0, cached: 0, failed: 0, cancelled: 0 });
  }
  // Trees found here that the remote lacks go up too, while the build runs.
  ctx.remote?.seed(p.found);
  const r = await schedule({
    graph: ctx.graph,
    keys: ctx.keys,
    plan: p,
    store: ctx.store,
    sandbox: ctx.sandbox,
    logger,
    jobs: o.jobs,
    scope: ctx.scope,
    signal,
    artifacts: artifacts.value,
    replace: force,
    ...(ctx.remote ? { onCommit: (id: NodeId, tree: TreeRecord) => ctx.remote!.upload(id, tree) } : {}),
  });
  let good = r.ok && !signal.aborted;
  if (good && until) logger.log({ type: 'until', node: until });
  if (good && !until) {
    for (const name of targets) {
      const t = ctx.def.targets.get(name)!;
      const tree = r.trees.get(ctx.graph.final(t.pipeline))!;
      logger.log({ type: 'progress', task: 'export', subject: name, state: 'running' });
      const e = await exportTarget({ target: t, tree, outDir: ctx.outDir, store: ctx.store, sandbox: ctx.sandbox, signal });
      if (!e.ok) {
        logger.log({ type: 'export-failed', target: name, message: e.message });
        good = false;
        break;
      }
      logger.log({ type: 'export', target: name, path: e.path, ms: e.ms });
    }
  }
  await ctx.remote?.drain();
  // The layer digests commits left running (store/local.ts): part of the build's time.
  await ctx.store.settle();
  return summary({ ok: good, ran: r.ran, cached: r.cached, failed: r.failed, cancelled: r.cancelled });
}

export async function fetchPackages(ctx: Context, stages: StageDef[], logger: Logger, signal: AbortSignal, jobs = 1): Promise<Result<Map<string, string>, string>> {
  return fetchPackageInputs(stages, {
    formats: FORMATS,
    vars: ctx.def.vars,
    cacheDir: ctx.cacheDir,
    sandbox: ctx.sandbox,
    workDir: join(ctx.cacheDir, 'verify'),
    // A format that verifies in the stage's buildroot gets it (built now if the cache lacks it).
    buildrootOf: buildrootHook({ def: ctx.def, rules: ctx.rules, store: ctx.store, sandbox: ctx.sandbox, cacheDir: ctx.cacheDir, scope: ctx.scope, logger, jobs, signal }),
    signal,
    logger,
  });
}
