/**
 * `imgmake watch TARGET…`: build, then rebuild whenever a file the build depends on changes —
 * the definition and its includes, project files and folders that stages take as inputs, and
 * imgmake.lock. The state machine is src/watch.ts; this module feeds it file events (chokidar)
 * and gives it a build: reload the definition, recompute keys, run what changed, export.
 *
 * - An event for a file whose content is what the last load read is ignored (an editor that
 *   rewrites a file unchanged, the lock this build itself wrote).
 * - An invalid edit reports its diagnostics as `build` does, keeps the last good output, and
 *   keeps watching the files it watched.
 * - After a successful rebuild, `--boot` (re)starts `imgmake boot TARGET` (with `--boot-args`)
 *   and `--exec CMD` (re)starts `sh -c CMD`: the previous one is stopped first. With --json
 *   their stdout goes to stderr, so stdout stays events only.
 * - Ctrl-C stops the build (its sandboxes die with it), the child, and the watcher: exit 130.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import chokidar from 'chokidar';
import type { Event, Logger } from '../event.js';
import type { NodeId } from '../ids.js';
import { sha256 } from '../key.js';
import { LOCK_FILE } from '../packages/index.js';
import { Rebuilder } from '../watch.js';
import { build as buildEngine } from '../engine/build.js';
import { collectedLine, maxCacheSize } from './cache.js';
import { afterExport } from './extras.js';
import type { TargetDef } from '../definition.js';
import { definitionPath, loadContext, loadDefinition, selectNodes, targetsOrDefault, type Context, type GlobalOptions } from './context.js';
import { jobsOf, pickLogger, reportDiagnostics } from './output.js';
import { EXIT_INTERRUPTED } from './exit.js';
import { PhaseClock } from '../timing.js';
import { packageRoot } from '../package-root.js';

export interface WatchOptions {
  /** (Re)start `imgmake boot TARGET` after each successful rebuild. */
  boot?: boolean;
  /** More arguments for that `imgmake boot`, split at spaces: "--bios --memory 2048". */
  bootArgs?: string;
  /** (Re)start `sh -c CMD` after each successful rebuild. */
  exec?: string;
  locked?: boolean;
  /** Update the previous image when only the OS tree changed (src/patch/, docs/patch.md). */
  patch?: boolean;
}

const BIN = join(packageRoot, 'bin', 'imgmake.js');

/** Diagnostics (without a place in the definition) about what the command line gave. */
const COMMAND_LINE = new Set(['unknown-variable', 'usage']);

export async function watchCommand(targets: string[], wo: WatchOptions, o: GlobalOptions): Promise<number> {
  const jobs = jobsOf(o);
  if (typeof jobs !== 'number') return reportDiagnostics([jobs], o);
  const maxCacheBytes = maxCacheSize(o);
  if (typeof maxCacheBytes === 'object') return reportDiagnostics([maxCacheBytes], o);
  if (wo.boot && wo.exec !== undefined) {
    return reportDiagnostics([{ reason: 'usage', message: '--boot and --exec cannot be used together', hint: 'use --exec "imgmake boot TARGET; other command" to do both' }], o);
  }
  if (wo.boot && targets.length > 1) {
    return reportDiagnostics([{ reason: 'usage', message: '--boot boots one target', hint: 'name one target with --boot' }], o);
  }
  // A mistake on the command line (a --var the definition does not declare, a missing
  // --allow-path folder) is not fixed by an edit of the definition: say so and stop, as build does.
  const first = await loadDefinition(o);
  if (!first.ok && first.error.some((d) => COMMAND_LINE.has(d.reason) && !d.loc)) {
    return reportDiagnostics(first.error.filter((d) => COMMAND_LINE.has(d.reason) && !d.loc), o);
  }
  if (first.ok) targets = targetsOrDefault(first.value.def, targets);
  const root = definitionPath(o);
  const base = dirname(root);
  const logger = pickLogger(o);
  const files = new FileSet(root);
  // followSymlinks off: a symlink in a folder input is watched as a link (its target text is
  // what the key hashes), never followed out of the project (`link -> /` would crawl the host).
  const watcher = chokidar.watch([...files.paths], { ignoreInitial: true, ignorePermissionErrors: true, followSymlinks: false });
  let child: ChildProcess | undefined;
  let excluded: string[] = [];

  const build = async (changed: string[], signal: AbortSignal): Promise<void> => {
    const started = performance.now();
    const clock = new PhaseClock(started);
    const rel = changed.map((p) => relative(base, p).split(sep).join('/') || '.');
    const report = (e: Omit<Extract<Event, { type: 'rebuild' }>, 'type' | 'targets' | 'changed' | 'wallMs'>): void =>
      logger.log({ type: 'rebuild', targets, changed: rel, wallMs: Math.round(performance.now() - started), ...e });
    // A remote cache is only read: an edit loop's trees are drafts, not worth a disk image's upload per save.
    const loaded = await loadContext({ ...o, remoteReadOnly: true }, { lock: wo.locked ? 'read' : 'resolve', logger, jobs, signal, clock });
    if (!loaded.ok) {
      // Any next event rebuilds, even one that restores what the last good load read.
      files.forget();
      reportDiagnostics(loaded.error, o);
      return report({ ran: [], reused: 0, result: signal.aborted ? 'cancelled' : 'invalid' });
    }
    const ctx = loaded.value;
    excluded = [ctx.cacheDir, ctx.outDir];
    const now = files.update(ctx);
    watcher.add(now.added);
    if (now.removed.length) watcher.unwatch(now.removed);
    const selected = selectNodes(ctx, targets, {});
    if (!selected.ok) {
      reportDiagnostics(selected.error, o);
      return report({ ran: [], reused: 0, result: 'invalid' });
    }
    const ran: NodeId[] = [];
    let reused = 0;
    const counting: Logger = {
      log(e) {
        if (e.type === 'stage' && e.status === 'ran') ran.push(e.node);
        if (e.type === 'stage' && e.status === 'cached') reused++;
        logger.log(e);
      },
    };
    // No SBOM or manifest in an edit loop; one an earlier build wrote goes when its image changes.
    const after = (t: TargetDef, x: { fresh: boolean }) => afterExport(ctx, t, { fresh: x.fresh }, counting, signal);
    const r = await buildEngine(ctx, ctx, { targets, selection: selected.value, outDir: ctx.outDir, maxCacheBytes, patch: wo.patch === true, afterExport: after }, { logger: counting, jobs, signal, started, clock, onCollected: collectedLine });
    reused = r.cached;
    const result = signal.aborted ? 'cancelled' : r.ok ? 'built' : 'failed';
    report({ ran: ran.sort(), reused, result });
    if (result === 'built') child = await restart(child, wo, targets, o);
  };

  const rebuilder = new Rebuilder({
    build: (changed, signal) =>
      build(changed, signal).catch((e: Error) => {
        process.stderr.write(`imgmake: internal error: ${e.stack ?? String(e)}\n`);
      }),
    onState: (state) => logger.log({ type: 'watch', state, files: files.paths.size }),
  });
  watcher.on('all', (_event, path) => {
    if (excluded.some((d) => path === d || path.startsWith(d + sep))) return;
    if (files.unchanged(path)) return;
    rebuilder.changed(path);
  });
  await new Promise<void>((ready) => watcher.once('ready', () => ready()));
  rebuilder.start();

  const code = await new Promise<number>((done) => {
    const onSignal = (): void => done(EXIT_INTERRUPTED);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await rebuilder.stop();
  await watcher.close();
  await stopChild(child);
  logger.close?.();
  return code;
}

/**
 * The files a build depends on, with the content digest each had when the definition was last
 * loaded (for files; folders are watched recursively and not digested).
 */
class FileSet {
  readonly paths = new Set<string>();
  readonly #digests = new Map<string, string>();

  constructor(private readonly root: string) {
    this.paths.add(root);
  }

  /** Takes the files of a freshly loaded definition; returns what to start and stop watching. */
  update(ctx: Context): { added: string[]; removed: string[] } {
    const next = new Set<string>([...ctx.def.files, join(ctx.def.dir, LOCK_FILE)]);
    for (const pl of ctx.def.pipelines.values()) for (const s of pl.stages) for (const i of s.inputs) if (i.kind === 'file') next.add(i.path);
    const added = [...next].filter((p) => !this.paths.has(p));
    // The root file stays watched even when a later load fails to read it.
    // (As named on the command line, and as load found it, through any symlink in the folders above.)
    const removed = [...this.paths].filter((p) => !next.has(p) && p !== ctx.def.file && p !== this.root);
    for (const p of removed) this.paths.delete(p);
    for (const p of added) this.paths.add(p);
    this.#digests.clear();
    for (const p of this.paths) {
      const d = digest(p);
      if (d !== undefined) this.#digests.set(p, d);
      // chokidar reports every symlink of a newly watched folder as added (ignoreInitial does not
      // cover unfollowed links): remember them, so that only a real change rebuilds.
      for (const link of symlinksIn(p)) this.#digests.set(link, digest(link)!);
    }
    return { added, removed };
  }

  forget(): void {
    this.#digests.clear();
  }

  /** True when `path` is a file whose content is what the last load read. */
  unchanged(path: string): boolean {
    const before = this.#digests.get(path);
    return before !== undefined && digest(path) === before;
  }
}

function digest(path: string): string | undefined {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return `link:${readlinkSync(path)}`;
    if (!st.isFile()) return undefined;
    return sha256(readFileSync(path));
  } catch {
    return 'missing';
  }
}

/** The symlinks under a folder (not followed), at most SYMLINK_SCAN entries looked at. */
function symlinksIn(dir: string): string[] {
  const out: string[] = [];
  let budget = SYMLINK_SCAN;
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (--budget < 0) return;
      const p = join(d, e.name);
      if (e.isSymbolicLink()) out.push(p);
      else if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const SYMLINK_SCAN = 20_000;

/** Stops the previous `--boot`/`--exec` child and starts the next one. */
async function restart(previous: ChildProcess | undefined, wo: WatchOptions, targets: string[], o: GlobalOptions): Promise<ChildProcess | undefined> {
  if (!wo.boot && wo.exec === undefined) return undefined;
  await stopChild(previous);
  const global = [
    ...(o.file ? ['-f', o.file] : []),
    ...(o.cache ? ['--cache', o.cache] : []),
    ...(o.out ? ['--out', o.out] : []),
    ...(o.var ?? []).flatMap((v) => ['--var', v]),
    ...(o.allowPath ?? []).flatMap((d) => ['--allow-path', d]),
  ];
  // With --json, stdout carries events only: the child's output goes to stderr.
  const stdout = o.json ? process.stderr : 'inherit';
  const extra = (wo.bootArgs ?? '').split(/\s+/).filter(Boolean);
  return wo.boot
    ? spawn(process.execPath, [BIN, ...global, 'boot', targets[0]!, ...extra], { stdio: ['inherit', stdout, 'inherit'] })
    : spawn('/bin/sh', ['-c', wo.exec!], { stdio: ['ignore', stdout, 'inherit'] });
}

async function stopChild(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
