/**
 * export: copies a target's files out of its committed tree into `out/TARGET/`.
 *
 * The copy runs in the sandbox (the tree read-only, the output directory read-write), so a
 * symlink in the tree never leads to a host path, and an export path is resolved inside the
 * tree, as a chroot would. `out/TARGET` is 0700 (`OWNER_ONLY`): a tree's setuid files and
 * device nodes are kept as they are, and only the output's owner can reach them. The new
 * output is assembled beside the old one and swapped in with two renames: `out/TARGET` is
 * always either the previous complete output or the new complete one (for an instant, absent),
 * never a partial one. A target whose tree key matches the last export is left alone: the
 * stamp names the key and the inode of the directory it was written for, so a build killed
 * between the swap and the stamp (or another build swapping in its own output) can never make
 * a stale directory look current.
 *
 * A target whose last stage delivered its file (src/deliver.ts) is swapped in the same way from
 * the folder that stage's file was moved into; its stamp names the stage's key, and says it was
 * delivered (the cache holds no tree to copy it from again).
 *
 * `copyOutOfTree` is the copy itself, which `imgmake export NODE DIR` shares.
 */
import { chmod, lstat, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PRELUDE } from '../rules/_lib/sh.js';
import type { TargetDef } from './definition.js';
import type { Sandbox } from './sandbox/run.js';
import { SANDBOX_TREE } from './sandbox/spec.js';
import type { Store, TreeRecord } from './store/types.js';
import type { CacheKey } from './ids.js';
import { SOURCE_DATE_EPOCH } from './key.js';
import { ownedName, sweepOut } from './store/orphans.js';
import { fail, ok, type Result } from './result.js';
import { describeSpace, describeWriteError, isFull, NO_SPACE_TEXT, spaceLeft } from './write-error.js';

const SANDBOX_OUT = '/run/imgmake/out';

export interface ExportOptions {
  target: TargetDef;
  /**
   * Where the files come from: the target's committed tree (copied out of it), or the files its
   * last stage delivered (moved in: src/deliver.ts), or nothing when that delivery is current.
   */
  from: { tree: TreeRecord } | { delivered: Staged } | { current: CacheKey };
  outDir: string;
  store: Store;
  sandbox: Sandbox;
  signal?: AbortSignal;
}

/** A delivery assembled beside out/TARGET (deliver.ts): `into` holds the target's files. */
export interface Staged {
  key: CacheKey;
  /** The private directory made for it in out/ (removed after the swap, or by sweepOut). */
  dir: string;
  into: string;
}

/**
 * What out/.imgmake/TARGET.json says of out/TARGET (`ino`: the directory it was written for).
 * `v`: what an export is; a new one redoes outputs made before (2: paths resolved in the tree,
 * 0700). A copied export names its tree (with createdAt: a tree rebuilt on purpose, `build
 * --from`, keeps its key but is new); a delivered one only the key of the stage that made it.
 */
type Stamp = { v: 2; key: CacheKey; export: string[] } & ({ createdAt: string } | { delivered: true });

function stampText(s: Stamp, ino: number): string {
  return JSON.stringify({ ...s, ino });
}

export function stampPath(outDir: string, target: string): string {
  return join(outDir, '.imgmake', `${target}.json`);
}

/**
 * Whether out/TARGET is what `stamp` says, for the directory there now. A delivered output must
 * also still hold each of its files: it has no tree in the cache to copy them from again.
 */
async function stampCurrent(outDir: string, target: TargetDef, stamp: Stamp): Promise<boolean> {
  const dest = join(outDir, target.name);
  const ino = await inodeOfDir(dest);
  if (ino === undefined || (await readFile(stampPath(outDir, target.name), 'utf8').catch(() => '')) !== stampText(stamp, ino)) return false;
  if (!('delivered' in stamp)) return true;
  for (const p of target.export) {
    const s = await lstat(join(dest, basename(p))).catch(() => undefined);
    if (!s?.isFile()) return false;
  }
  return true;
}

/** out/TARGET holds what the stage `key` delivered to it, untouched by a later build. */
export function deliveredCurrent(outDir: string, target: TargetDef, key: CacheKey): Promise<boolean> {
  return stampCurrent(outDir, target, { v: 2, key, export: target.export, delivered: true });
}

export type ExportResult = { ok: true; path: string; skipped: boolean; ms: number } | { ok: false; message: string };

export async function exportTarget(o: ExportOptions): Promise<ExportResult> {
  const started = performance.now();
  const dest = join(o.outDir, o.target.name);
  const stampDir = join(o.outDir, '.imgmake');
  const stamp = stampPath(o.outDir, o.target.name);
  const from = o.from;
  const want: Stamp =
    'tree' in from
      ? { v: 2, key: from.tree.key, createdAt: from.tree.createdAt, export: o.target.export }
      : { v: 2, key: 'delivered' in from ? from.delivered.key : from.current, export: o.target.export, delivered: true };
  const names = o.target.export.map((p) => basename(p));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) return { ok: false, message: `target ${o.target.name} exports two files named ${dup}` };
  const failed = async (e: unknown): Promise<ExportResult> => ({ ok: false, message: `exporting ${o.target.name} to ${dest} failed: ${await describeWriteError(e, o.outDir, OUT_FULL_HINT)}` });
  // What killed builds left here (half-assembled exports, swaps, stamps): named after their
  // process, removed once it is gone (store/orphans.ts).
  // A delivery's own folder is one of these too: not swept while this process lives.
  await sweepOut(o.outDir);
  if (!('delivered' in from) && (await stampCurrent(o.outDir, o.target, want))) {
    // An output of an older imgmake was 0755: closed now, as a new one would be.
    await chmod(dest, OWNER_ONLY).catch(() => undefined);
    return { ok: true, path: dest, skipped: true, ms: 0 };
  }
  // The build found it current before planning, and something changed it since.
  if ('current' in from) return { ok: false, message: `${dest} changed while the build ran (it holds no tree to copy from): build again` };
  let tmp: string | undefined;
  try {
    await mkdir(stampDir, { recursive: true });
    let into: string;
    if ('delivered' in from) {
      tmp = from.delivered.dir;
      into = from.delivered.into;
    } else {
      tmp = await privateDir(join(o.outDir, ownedName(`.${o.target.name}.new-`)));
      into = join(tmp, 'out');
      await mkdir(into);
      const copied = await copyOutOfTree({ ...o, tree: from.tree, paths: o.target.export, into, shownAs: dest, scratch: join(tmp, 'mnt') });
      if (!copied.ok) return { ok: false, message: `exporting ${o.target.name} to ${dest} failed: ${copied.error}` };
    }
    await chmod(into, OWNER_ONLY);
    const ino = (await inodeOfDir(into))!;
    await swapIn(into, dest);
    const stampTmp = join(stampDir, ownedName(`${o.target.name}.json.`));
    await writeFile(stampTmp, stampText(want, ino));
    await rename(stampTmp, stamp);
    return { ok: true, path: dest, skipped: false, ms: Math.round(performance.now() - started) };
  } catch (e) {
    return await failed(e);
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The mode of what imgmake hands out (out/TARGET, `imgmake export`'s DIR): only its owner may
 * enter. A tree keeps its setuid-root files and device nodes (an exported root filesystem needs
 * its sudo), and through a directory others can enter, any user of the host could run or open
 * them (docs/store.md, "Who can read the cache and out/").
 */
export const OWNER_ONLY = 0o700;

const OUT_FULL_HINT = 'free some space there, or export elsewhere';

/**
 * Makes `dir` (0700) for a copy under way: the copy is assembled inside it, so that a tree
 * whose root is 0755 (`cp -a` of `TREE/.` gives `into` the tree's root mode) is never
 * reachable by another user, not even between the copy and the chmod that closes it.
 */
export async function privateDir(dir: string): Promise<string> {
  await mkdir(dir, { mode: OWNER_ONLY });
  await chmod(dir, OWNER_ONLY);
  return dir;
}

/**
 * Copies `paths` of a committed tree (the whole tree when empty, its root directory's owner and
 * mode included) into the existing directory `into`, with `cp -a` in the sandbox: owners, modes,
 * symlinks, hardlinks within the copy, xattrs and holes are kept. Each path is resolved inside
 * the tree as a chroot would (`rootlink/etc/passwd` with `rootlink -> /` is the tree's
 * `etc/passwd`, never the sandbox's own); its last component is copied as it is (a symlink
 * stays a symlink). `scratch` is a directory to make, on which the tree may be mounted. Fails
 * with what went wrong, host paths named.
 */
export async function copyOutOfTree(o: {
  tree: TreeRecord;
  paths: readonly string[];
  into: string;
  /** Where `into` will end up (out/TARGET, DIR): the path messages name. */
  shownAs: string;
  scratch: string;
  store: Store;
  sandbox: Sandbox;
  signal?: AbortSignal | undefined;
}): Promise<Result<void, string>> {
  await mkdir(o.scratch, { recursive: true });
  const logFile = join(o.scratch, 'log');
  await writeFile(logFile, '');
  const argv = o.paths.length
    ? ['/bin/sh', '-c', COPY_PATHS, 'imgmake-export', ...o.paths]
    : ['cp', '-a', '--', `${SANDBOX_TREE}/.`, `${SANDBOX_OUT}/`];
  const r = await o.sandbox.run(
    {
      buildroot: { kind: 'host' },
      tree: { mount: o.store.readMount(o.tree, o.scratch), writable: false },
      inputs: [],
      binds: [{ src: o.into, dest: SANDBOX_OUT, writable: true }],
      argv,
      env: { SOURCE_DATE_EPOCH },
    },
    { logFile, ...(o.signal ? { signal: o.signal } : {}) },
  );
  if (r.exitCode === 0) return ok(undefined);
  if (r.cancelled) return fail('interrupted');
  // Sandbox paths in cp's words are named as the user will know them. On a full disk its
  // message may not even have reached the log (the log is on that disk too): the filesystem
  // says it then.
  const log = (await readFile(logFile, 'utf8').catch(() => '')).trim().replaceAll(SANDBOX_OUT, o.shownAs);
  const space = await spaceLeft(o.into);
  if (space && (isFull(space) || NO_SPACE_TEXT.test(log))) {
    return fail(`no space left on device (ENOSPC) in ${dirname(o.shownAs)} (${describeSpace(space)})${log ? `: ${lastLine(log)}` : ''}; ${OUT_FULL_HINT}`);
  }
  return fail(log || `exit ${r.exitCode}`);
}

/**
 * The sandboxed copy of named paths: each resolved in the tree by rules/_lib/prelude.sh's
 * `in_tree` (an absolute link restarts at the tree's root, `..` stops there, 40 links at
 * most), the last component not followed; then one `cp -a` of them all, so hardlinks between
 * them stay linked.
 */
const COPY_PATHS = `${PRELUDE}
cd ${SANDBOX_TREE}
n=$#
while [ "$n" -gt 0 ]; do
  p=$(in_tree "$1") || exit 1
  [ -e "$p" ] || [ -L "$p" ] || die "$1: not in the tree"
  shift
  set -- "$@" "$p"
  n=$((n - 1))
done
exec cp -a -- "$@" ${SANDBOX_OUT}/
`;

function lastLine(text: string): string {
  return text.split('\n').pop() ?? text;
}

/**
 * Moves `tmp` to `dest`, moving the previous `dest` aside first. Another build exporting the
 * same target at the same moment can put its own output in between: then try again (the last
 * one wins, each output complete).
 */
export async function swapIn(tmp: string, dest: string, keep?: (old: string) => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const old = join(dirname(dest), ownedName(`.${basename(dest)}.old-`));
    const had = await rename(dest, old).then(
      () => true,
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
        return false;
      },
    );
    try {
      await rename(tmp, dest);
      // What the caller takes out of the folder replaced before it goes (a patch's standby).
      if (had && keep) await keep(old).catch(() => undefined);
      await rm(old, { recursive: true, force: true });
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      await rm(old, { recursive: true, force: true });
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt > 20) throw e;
    }
  }
}

/** The inode number of directory `p`, or undefined when there is none. */
async function inodeOfDir(p: string): Promise<number | undefined> {
  return stat(p).then(
    (s) => (s.isDirectory() ? s.ino : undefined),
    () => undefined,
  );
}
