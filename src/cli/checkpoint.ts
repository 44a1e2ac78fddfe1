/**
 * The checkpoint commands: look at the tree any stage left, as it is in the cache.
 *
 *     imgmake shell NODE [--before] [-- CMD ARGS…]   a shell in the stage's sandbox, on a
 *                                                    throw-away writable view of the tree
 *     imgmake export NODE DIR                        the tree copied out to DIR
 *     imgmake log NODE                               the stored log of the stage's last run
 *
 * NODE is `PIPELINE.STAGE` (name or index). These commands never build: a tree that is not in
 * the cache under the stage's current key is a usage error that says which build makes it. And
 * nothing reaches the cache: the shell's writable layer is discarded when it exits, on a signal
 * too (kill -9 leaves a work directory of a dead pid, which the next open of the store removes).
 */
import { chmod, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkpointLabel, notBuilt, shellArgv, shellBanner, shellEnv, shellTrees, targetReaching, upstreamStage, viewedNode, type NeededTree, type Side } from '../checkpoint.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { copyOutOfTree, OWNER_ONLY, privateDir } from '../export.js';
import type { NodeId } from '../ids.js';
import { missingArtifacts, packagesOf, storedArtifacts } from '../packages/index.js';
import { fail, ok, type Result } from '../result.js';
import { runInteractive } from '../sandbox/run.js';
import { stageSpec } from '../sandbox/stage.js';
import type { TreeRecord, WorkTree } from '../store/types.js';
import { describeWriteError } from '../write-error.js';
import { literal, ownedName, OWNER_RE, sweep } from '../store/orphans.js';
import { leaseGoals } from '../engine/lease.js';
import { loadContext, resolveNode, type Context, type GlobalOptions } from './context.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK } from './exit.js';
import { jsonLine } from '../logging/index.js';


/** What a checkpoint command returns: its exit code, or the diagnostics to report (exit 2). */
export type CommandResult = Result<number, Diagnostic[]>;

export interface ShellOptions {
  before?: boolean;
}

export async function shellCommand(text: string, command: string[], o: GlobalOptions & ShellOptions): Promise<CommandResult> {
  const side: Side = o.before ? 'before' : 'after';
  const opened = await openCheckpoint(o, text, 'imgmake shell');
  if (!opened.ok) return opened;
  const { ctx, node } = opened.value;
  const label = checkpointLabel(node, side);
  const trees = await committedTrees(ctx, shellTrees(ctx.graph, node, side), `imgmake shell ${label}`);
  if (!trees.ok) return trees;
  const artifacts = await storedPackages(ctx, node);
  if (!artifacts.ok) return artifacts;
  const { stage, rule } = ctx.graph.stage(node);
  const viewed = viewedNode(ctx.graph, node, side);
  const { value } = await interruptible(
    async (signal): Promise<CommandResult> => {
      let w: WorkTree;
      try {
        w = await ctx.store.begin(viewed ? trees.value.get(viewed) : undefined);
      } catch (e) {
        return fail([diagnostic('usage', `imgmake shell ${label}: ${(e as Error).message}`)]);
      }
      try {
        const treeOf = (kind: 'buildroot' | 'input', name?: string): TreeRecord | undefined => {
          const src = upstreamStage(ctx.graph, node, kind, name);
          return src ? trees.value.get(src) : undefined;
        };
        const spec = await stageSpec({ stage, rule, store: ctx.store, work: w, treeOf, artifacts: artifacts.value });
        if (process.stdin.isTTY) {
          const banner = shellBanner({ id: node, side, buildroot: upstreamStage(ctx.graph, node, 'buildroot'), inputs: spec.inputs.map((i) => i.name), argv: spec.argv });
          for (const line of banner) say(line);
        }
        return ok(await runInteractive({ ...spec, argv: shellArgv(command), env: { ...spec.env, ...shellEnv(label, process.env.TERM) } }, { signal }));
      } finally {
        await ctx.store.discard(w);
      }
    },
    { terminalOwnsCtrlC: true },
  );
  return value;
}

export async function exportCommand(text: string, dir: string, o: GlobalOptions): Promise<CommandResult> {
  const opened = await openCheckpoint(o, text, 'imgmake export');
  if (!opened.ok) return opened;
  const { ctx, node } = opened.value;
  const trees = await committedTrees(ctx, [{ node, role: 'tree' }], `imgmake export ${node}`);
  if (!trees.ok) return trees;
  const dest = resolve(dir);
  if (!(await isEmptyOrAbsent(dest))) {
    return fail([diagnostic('usage', `${dir} exists and is not an empty directory`, undefined, 'name a new directory, or an empty one: export never merges into or replaces what is there')]);
  }
  // Copied beside DIR (in a 0700 directory), then renamed onto it (absent, or empty): DIR is
  // never left half-written, and never open to other users (export.ts, OWNER_ONLY).
  const started = performance.now();
  let tmp: string | undefined;
  try {
    await mkdir(dirname(dest), { recursive: true });
    // Named after this process; a killed export's is removed by the next one into DIR (orphans.ts).
    await sweep(dirname(dest), new RegExp(`^\\.${literal(basename(dest))}\\.new-(${OWNER_RE})$`));
    tmp = await privateDir(join(dirname(dest), ownedName(`.${basename(dest)}.new-`)));
    const into = join(tmp, 'out');
    await mkdir(into);
    const tree = trees.value.get(node)!;
    const copied = await interruptible((signal) => copyOutOfTree({ tree, paths: [], into, shownAs: dest, scratch: join(tmp!, 'mnt'), store: ctx.store, sandbox: ctx.sandbox, signal }));
    if (copied.interrupted) return ok(EXIT_INTERRUPTED);
    if (!copied.value.ok) {
      say(`imgmake: exporting ${node} to ${dest} failed: ${copied.value.error}`);
      return ok(EXIT_FAILED);
    }
    // `cp -a` gave it the tree's root mode; DIR is its owner's only, like out/TARGET.
    await chmod(into, OWNER_ONLY);
    await rename(into, dest);
    const ms = Math.round(performance.now() - started);
    if (o.json) out(jsonLine({ type: 'checkpoint-export', node, key: tree.key, path: dest, ms }));
    else out(`imgmake: exported the tree after ${node} to ${dest}`);
    return ok(EXIT_OK);
  } catch (e) {
    say(`imgmake: exporting ${node} to ${dest} failed: ${await describeWriteError(e, dirname(dest), 'free some space there, or export elsewhere')}`);
    return ok(EXIT_FAILED);
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

export async function logCommand(text: string, o: GlobalOptions): Promise<CommandResult> {
  const opened = await openCheckpoint(o, text, 'imgmake log');
  if (!opened.ok) return opened;
  const { ctx, node } = opened.value;
  const key = ctx.keys.get(node)!.key;
  const path = await ctx.store.logPath(key);
  if (!path) {
    const cached = (await ctx.store.get(key)) !== undefined;
    const target = targetReaching(ctx.def, ctx.graph, node);
    say(
      cached
        ? `imgmake: no log of ${node}: its tree is in the cache, but not the log of the run that made it`
        : `imgmake: no log of ${node}: it has not run with its current definition (key ${key.slice(0, 12)}…)`,
    );
    if (!cached) say(`hint: ${target ? `imgmake build ${target} --until ${node}` : `a build that needs ${node}`} runs it and keeps its log`);
    return ok(EXIT_FAILED);
  }
  const log = await readFile(path, 'utf8');
  if (o.json) out(jsonLine({ type: 'log', node, key, text: log }));
  else {
    process.stdout.write(log);
    if (log === '') say(`imgmake: the log of ${node} is empty: the stage printed nothing`);
  }
  return ok(EXIT_OK);
}

/** The definition loaded (no lock resolving: never the network) and NODE resolved in it. */
async function openCheckpoint(o: GlobalOptions, text: string, command: string): Promise<Result<{ ctx: Context; node: NodeId }, Diagnostic[]>> {
  const loaded = await loadContext(o, { lock: 'read' });
  if (!loaded.ok) return loaded;
  const node = resolveNode(loaded.value, text, command);
  if (!node.ok) return node;
  // What the command reads stays while it runs (a `cache gc` meanwhile skips it), and counts as used.
  const lease = await leaseGoals(loaded.value, loaded.value, [node.value]);
  process.once('exit', lease.releaseSync);
  return ok({ ctx: loaded.value, node: node.value });
}

/** The committed trees of `needed`, or the "not built" error of the first one missing. */
async function committedTrees(ctx: Context, needed: NeededTree[], command: string): Promise<Result<Map<NodeId, TreeRecord>, Diagnostic[]>> {
  const found = new Map<NodeId, TreeRecord>();
  for (const n of needed) {
    const rec = await ctx.store.get(ctx.keys.get(n.node)!.key);
    if (!rec) return fail([notBuilt(ctx.def, ctx.graph, n, command)]);
    found.set(n.node, rec);
  }
  return ok(found);
}

/** A package stage's artifacts, as its build bound them; all must be in the cache already (no download here). */
async function storedPackages(ctx: Context, node: NodeId): Promise<Result<ReadonlyMap<string, string> | undefined, Diagnostic[]>> {
  const packages = packagesOf([ctx.graph.stage(node).stage]);
  if (packages.length === 0) return ok(undefined);
  const missing = await missingArtifacts(packages, { cacheDir: ctx.cacheDir });
  if (missing.length) {
    const target = targetReaching(ctx.def, ctx.graph, node);
    return fail([
      diagnostic('not-built', `${missing.length} of the ${packages.length} packages ${node} installs are not in the cache`, undefined, `${target ? `imgmake build ${target} --until ${node}` : 'a build of the stage'} fetches them`),
    ]);
  }
  // Every artifact is stored: this only finds their paths, it downloads nothing.
  return ok(await storedArtifacts(packages, { cacheDir: ctx.cacheDir }));
}

/**
 * Runs `fn` with a signal that SIGINT, SIGTERM and SIGHUP abort, so that its clean-up (the
 * shell's work tree, a half copy) runs before imgmake exits. With `terminalOwnsCtrlC`, a SIGINT
 * while stdin is a terminal is left alone: the terminal gave Ctrl-C to the shell as well, and
 * the shell decides what it means.
 */
async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>, o: { terminalOwnsCtrlC?: boolean } = {}): Promise<{ value: T; interrupted: boolean }> {
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGINT' && o.terminalOwnsCtrlC && process.stdin.isTTY) return;
    abort.abort();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    const value = await fn(abort.signal);
    return { value, interrupted: abort.signal.aborted };
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  return readdir(dir).then(
    (names) => names.length === 0,
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
  );
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}
