/**
 * One build of a keyed project's targets, in-process: lease what it needs, run the spine
 * (engine/run.ts: plan, remote, packages, schedule), export the targets, collect the cache to
 * its limit, release. `imgmake build` runs it once, `imgmake watch` once per settled change, a
 * test or a server as often as it likes. Reports through the logger only (the `summary` event
 * last); returns what happened.
 *
 * src/patch/ (debugfs, execa) is imported by a `--patch` build only (docs/bench.md, "Start-up").
 */
import type { TargetDef } from '../definition.js';
import { planDeliveries, type Deliveries } from '../deliver.js';
import { exportTarget } from '../export.js';
import type { NodeId } from '../ids.js';
import type { Prepared } from '../patch/index.js';
import type { Plan } from '../plan.js';
import { collect, type Report } from '../store/gc.js';
import { leaseGoals } from './lease.js';
import { buildroots } from './lock.js';
import { runSpine } from './run.js';
import type { Engine, KeyedProject, RunOptions, Selection } from './types.js';
import type { TreeRecord } from '../store/types.js';

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
  /**
   * `--patch` (src/patch/): a disk target whose OS tree alone changed is made by updating a copy
   * of its previous image in `outDir` instead of building the disk; every target's image gets
   * a record beside it saying which OS tree it holds. Not with `until` or `force`.
   */
  patch?: boolean;
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
  const { logger } = o;
  const started = o.started ?? performance.now();
  const summary = (r: Omit<BuildRun, 'wallMs'>): BuildRun => {
    const run = { ...r, wallMs: Math.round(performance.now() - started) };
    if (o.clock) logger.log({ type: 'timing', phases: o.clock.phases(), ...(o.clock.codeCache ? { codeCache: o.clock.codeCache } : {}) });
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
  // --patch: the targets that can be patched are built only up to their OS tree (patch/).
  const patcher = req.patch ? await import('../patch/index.js') : undefined;
  const patching = new Map<string, Prepared>();
  if (patcher && !req.selection.until && req.selection.force.size === 0) {
    for (const name of req.targets) {
      const ready = await patcher.preparePatch(p, e.store, req.outDir, p.def.targets.get(name)!);
      if (ready.ok) patching.set(name, ready.value);
      else logger.log({ type: 'patch', target: name, result: 'refused', reason: ready.error.reason, message: ready.error.message, ms: 0 });
    }
    o.clock?.lap('patch');
  }
  const goalsFor = (names: string[]): NodeId[] => [...new Set(names.map((n) => patching.get(n)?.shape.osNode ?? p.graph.final(p.def.targets.get(n)!.pipeline)))];
  const selection = patching.size ? { ...req.selection, goals: goalsFor(req.targets) } : req.selection;
  // Targets whose last stage hands its file to out/ (src/deliver.ts): never with a remote (it
  // gets every tree), --until (nothing is exported) or --patch (its records follow full exports).
  const deliveries =
    e.remote || req.patch || req.selection.until
      ? undefined
      : await planDeliveries({ graph: p.graph, keys: p.keys, targets: req.targets.map((n) => p.def.targets.get(n)!), goals: selection.goals, force: req.selection.force, outDir: req.outDir });
  try {
    return await buildPlanned(e, p, req, o, { roots, onPlan, patcher, patching, selection, deliveries, summary });
  } finally {
    await deliveries?.release();
  }
}

async function buildPlanned(
  e: Engine,
  p: KeyedProject,
  req: BuildRequest,
  o: BuildOptions,
  b: {
    roots: ReturnType<typeof buildroots>;
    onPlan: (planned: Plan) => void;
    patcher: typeof import('../patch/index.js') | undefined;
    patching: Map<string, Prepared>;
    selection: Selection;
    deliveries: Deliveries | undefined;
    summary: (r: Omit<BuildRun, 'wallMs'>) => BuildRun;
  },
): Promise<BuildRun> {
  const { logger, signal } = o;
  const { roots, onPlan, patcher, patching, selection, deliveries, summary } = b;
  const spine = await runSpine(e, p, selection, { ...o, onPlan, buildrootOf: roots.of, current: deliveries?.current, deliver: deliveries?.take }).finally(() => roots.release());
  if (!spine.ok) {
    logger.log({ type: 'fetch-failed', message: spine.fetch });
    return summary({ ok: false, ran: 0, cached: 0, failed: 0, cancelled: 0 });
  }
  const r = spine.schedule;
  const counts = { ran: r.ran, cached: r.cached, failed: r.failed, cancelled: r.cancelled };
  const { until } = req.selection;
  let good = r.ok && !signal?.aborted;
  if (good && until) logger.log({ type: 'until', node: until });
  const exportOne = async (name: string, trees: Map<NodeId, TreeRecord>): Promise<boolean> => {
    const t = p.def.targets.get(name)!;
    const final = p.graph.final(t.pipeline);
    const staged = deliveries?.staged.get(name);
    const tree = trees.get(final);
    // What its last stage delivered now, or out/ still holds, or its tree in the cache.
    const from = staged ? { delivered: staged } : deliveries?.current.has(final) ? { current: p.keys.get(final)!.key } : tree ? { tree } : undefined;
    if (!from) throw new Error(`Internal error: target ${name} has neither a tree nor a delivered output`);
    logger.log({ type: 'progress', task: 'export', subject: name, state: 'running' });
    const x = await exportTarget({ target: t, from, outDir: req.outDir, store: e.store, sandbox: e.sandbox, ...(signal ? { signal } : {}) });
    if (staged) deliveries!.staged.delete(name);
    o.clock?.lap('export');
    if (!x.ok) {
      logger.log({ type: 'export-failed', target: name, message: x.message });
      return false;
    }
    logger.log({ type: 'export', target: name, path: x.path, ms: x.ms, ...(req.patch ? { mode: 'full' as const } : {}) });
    if (patcher) {
      // What the next --patch build compares with: the OS tree this image holds.
      const shape = patcher.diskShape(p.graph, p.keys, t);
      if (shape.ok) await patcher.writeRecord(req.outDir, { target: name, file: shape.value.file, os: shape.value.osKey, shape: shape.value.shapeKey, mode: 'full' });
      else await patcher.dropRecord(req.outDir, name);
      o.clock?.lap('record');
    }
    const extras = req.afterExport ? await req.afterExport(t, { path: x.path, fresh: !x.skipped }) : true;
    o.clock?.lap('extras');
    return extras;
  };
  const fallback: string[] = [];
  const digesting: string[] = [];
  if (good && !until) {
    for (const name of req.targets) {
      const ready = patching.get(name);
      if (!ready || !patcher) {
        if (!(await exportOne(name, r.trees))) {
          good = false;
          break;
        }
        continue;
      }
      const t = p.def.targets.get(name)!;
      const began = performance.now();
      logger.log({ type: 'progress', task: 'patch', subject: name, state: 'running' });
      const applied = await patcher.applyPatch({ prepared: ready, newTree: r.trees.get(ready.shape.osNode)!, store: e.store, sandbox: e.sandbox, outDir: req.outDir, signal });
      o.clock?.lap('patch');
      const ms = Math.round(performance.now() - began);
      if (!applied.ok) {
        logger.log({ type: 'patch', target: name, result: 'refused', reason: applied.error.reason, message: applied.error.message, ms });
        fallback.push(name);
        continue;
      }
      const a = applied.value;
      logger.log({ type: 'patch', target: name, result: a.current ? 'current' : 'patched', written: a.written, removed: a.removed, layers: a.layers, ms, ...(a.current ? {} : { standby: a.standby === true }) });
      logger.log({ type: 'export', target: name, path: a.path, ms, mode: a.current ? ready.record.mode : 'patched' });
      if (!a.current) {
        // The image's digest is taken after the build's other work (record.ts): off the edit's path.
        await patcher.writeRecord(req.outDir, { target: name, file: ready.shape.file, os: ready.shape.osKey, shape: ready.shape.shapeKey, mode: 'patched' }, { digest: false });
        digesting.push(name);
        o.clock?.lap('record');
      }
      const extras = req.afterExport ? await req.afterExport(t, { path: a.path, fresh: !a.current }) : true;
      o.clock?.lap('extras');
      if (!extras) {
        good = false;
        break;
      }
    }
  }
  // A refused patch is a full build of that target: the rest of its graph runs now.
  if (good && fallback.length) {
    const again = await runSpine(e, p, { ...req.selection, goals: fallback.map((n) => p.graph.final(p.def.targets.get(n)!.pipeline)) }, o);
    if (!again.ok) {
      logger.log({ type: 'fetch-failed', message: again.fetch });
      good = false;
    } else {
      const s2 = again.schedule;
      counts.ran += s2.ran;
      counts.failed += s2.failed;
      counts.cancelled += s2.cancelled;
      good = s2.ok && !signal?.aborted;
      for (const name of fallback) {
        if (!good) break;
        good = await exportOne(name, s2.trees);
      }
    }
  }
  await e.remote?.drain();
  // The layer digests commits left running (store/local.ts) and patched images' digests: part of the build's time.
  await Promise.all([e.store.flush(), ...digesting.map((name) => patcher!.completeRecord(req.outDir, name))]);
  o.clock?.lap('flush');
  return summary({ ok: good, ...counts });
}
