/**
 * One build of a keyed project's targets, in-process: lease what it needs, run the spine
 * (engine/run.ts: plan, remote, packages, schedule), export the targets, collect the cache to
 * its limit, release. `imgmake build` runs it once, `imgmake watch` once per settled change, a
 * test or a server as often as it likes. Reports through the logger only (the `summary` event
 * last); returns what happened.
 */
import type { TargetDef } from '../definition.js';
import { exportTarget } from '../export.js';
import type { Plan } from '../plan.js';
import { collect, type Report } from '../store/gc.js';
import { leaseGoals } from './lease.js';
import { buildroots } from './lock.js';
import { runSpine } from './run.js';
import type { Engine, KeyedProject, RunOptions, Selection } from './types.js';

export interface BuildRequest {
  /** The targets by name (for the events), and what to build for them (engine/select.ts). */
  targets: string[];
  selection: Selection;
  /** Where the targets' exports are written. */
  outDir: string;
  /** After a success, collect the cache down to this many bytes, still holding the lease. */
  maxCacheBytes?: number | undefined;
  /**
   * Called after each target's export (`fresh`: a new image was written, not an unchanged one
   * kept): what a front end adds beside it (the CLI's SBOM and manifest, cli/extras.ts). False
   * fails the build; the hook has said why.
   */
  afterExport?: (target: TargetDef, exported: { path: string; fresh: boolean }) => Promise<boolean>;
}

export interface BuildOptions extends RunOptions {
  /** When the build started (performance.now()): its wall time counts the caller's loading too. */
  started?: number;
  /** What the collection after a success removed (`maxCacheBytes`); the caller says it. */
  onCollected?: (r: Report, maxBytes: number) => void;
}

export interface BuildRun {
  ok: boolean;
  ran: number;
  cached: number;
  failed: number;
  cancelled: number;
  wallMs: number;
}

export async function build(e: Engine, p: KeyedProject, req: BuildRequest, o: BuildOptions): Promise<BuildRun> {
  const lease = await leaseGoals(e, p, req.selection.goals, o.logger);
  try {
    const r = await buildLeased(e, p, req, o);
    const max = req.maxCacheBytes ?? p.def.cache?.maxSize;
    if (r.ok && max !== undefined) {
      const removed = await collect(e.cacheDir, max);
      if (removed.removed.length) o.onCollected?.(removed, max);
    }
    return r;
  } finally {
    await lease.release();
  }
}

async function buildLeased(e: Engine, p: KeyedProject, req: BuildRequest, o: BuildOptions): Promise<BuildRun> {
  const { logger, signal } = o;
  const started = o.started ?? performance.now();
  const summary = (r: Omit<BuildRun, 'wallMs'>): BuildRun => {
    const run = { ...r, wallMs: Math.round(performance.now() - started) };
    if (o.clock) logger.log({ type: 'timing', phases: o.clock.phases() });
    logger.log({ type: 'summary', ...run });
    return run;
  };
  if (p.def.allowed?.length) logger.log({ type: 'allow-path', dirs: p.def.allowed });
  // A format that verifies in the stage's buildroot gets it (built now if the cache lacks it).
  const roots = buildroots(e, p, o);
  const onPlan = (planned: Plan): void =>
    logger.log({
      type: 'plan',
      targets: req.targets,
      toRun: planned.stages.filter((s) => s.status === 'run').length,
      cached: planned.stages.filter((s) => s.status === 'cached').length,
    });
  const spine = await runSpine(e, p, req.selection, { ...o, onPlan, buildrootOf: roots.of }).finally(() => roots.release());
  if (!spine.ok) {
    logger.log({ type: 'fetch-failed', message: spine.fetch });
    return summary({ ok: false, ran: 0, cached: 0, failed: 0, cancelled: 0 });
  }
  const r = spine.schedule;
  const { until } = req.selection;
  let good = r.ok && !signal?.aborted;
  if (good && until) logger.log({ type: 'until', node: until });
  if (good && !until) {
    for (const name of req.targets) {
      const t = p.def.targets.get(name)!;
      const tree = r.trees.get(p.graph.final(t.pipeline))!;
      logger.log({ type: 'progress', task: 'export', subject: name, state: 'running' });
      const x = await exportTarget({ target: t, tree, outDir: req.outDir, store: e.store, sandbox: e.sandbox, ...(signal ? { signal } : {}) });
      o.clock?.lap('export');
      if (!x.ok) {
        logger.log({ type: 'export-failed', target: name, message: x.message });
        good = false;
        break;
      }
      logger.log({ type: 'export', target: name, path: x.path, ms: x.ms });
      const extras = req.afterExport ? await req.afterExport(t, { path: x.path, fresh: !x.skipped }) : true;
      o.clock?.lap('extras');
      if (!extras) {
        good = false;
        break;
      }
    }
  }
  await e.remote?.drain();
  // The layer digests commits left running (store/local.ts): part of the build's time.
  await e.store.flush();
  o.clock?.lap('flush');
  return summary({ ok: good, ran: r.ran, cached: r.cached, failed: r.failed, cancelled: r.cancelled });
}
