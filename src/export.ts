/**
 * export: copies a target's files out of its committed tree into `out/TARGET/`.
 *
 * The copy runs in the sandbox (the tree read-only, the output directory read-write), so an
 * absolute symlink in the tree resolves inside the sandbox, never to a host path. The new
 * output is assembled beside the old one and swapped in with two renames: `out/TARGET` is
 * always either the previous complete output or the new complete one (for an instant, absent),
 * never a partial one. A target whose tree key matches the last export is left alone: the
 * stamp names the key and the inode of the directory it was written for, so a build killed
 * between the swap and the stamp (or another build swapping in its own output) can never make
 * a stale directory look current.
 *
 * `copyOutOfTree` is the copy itself, which `imgmake export NODE DIR` shares.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { TargetDef } from './definition.js';
import type { Sandbox } from './sandbox/run.js';
import { SANDBOX_TREE } from './sandbox/spec.js';
import type { Store, TreeRecord } from './store/types.js';
import { SOURCE_DATE_EPOCH } from './key.js';
import { fail, ok, type Result } from './result.js';

const SANDBOX_OUT = '/run/imgmake/out';

export interface ExportOptions {
  target: TargetDef;
  tree: TreeRecord;
  outDir: string;
  store: Store;
  sandbox: Sandbox;
  signal?: AbortSignal;
}

export type ExportResult = { ok: true; path: string; skipped: boolean; ms: number } | { ok: false; message: string };

export async function exportTarget(o: ExportOptions): Promise<ExportResult> {
  const started = performance.now();
  const dest = join(o.outDir, o.target.name);
  const stampDir = join(o.outDir, '.imgmake');
  const stamp = join(stampDir, `${o.target.name}.json`);
  // createdAt too: a tree rebuilt on purpose (`build --from`) keeps its key but is new.
  const want = { key: o.tree.key, createdAt: o.tree.createdAt, export: o.target.export };
  const stampFor = (ino: number) => JSON.stringify({ ...want, ino });
  const current = await inodeOfDir(dest);
  if (current !== undefined && (await readFile(stamp, 'utf8').catch(() => '')) === stampFor(current)) {
    return { ok: true, path: dest, skipped: true, ms: 0 };
  }
  await mkdir(stampDir, { recursive: true });
  const tmp = join(o.outDir, `.${o.target.name}.new-${randomBytes(4).toString('hex')}`);
  const scratch = join(o.outDir, `.${o.target.name}.mnt-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  await mkdir(scratch);
  try {
    const names = o.target.export.map((p) => basename(p));
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) return { ok: false, message: `target ${o.target.name} exports two files named ${dup}` };
    const copied = await copyOutOfTree({ ...o, paths: o.target.export, into: tmp, scratch });
    if (!copied.ok) return { ok: false, message: `exporting ${o.target.name} failed: ${copied.error}` };
    const ino = (await inodeOfDir(tmp))!;
    await swapIn(tmp, dest);
    const stampTmp = `${stamp}.${randomBytes(4).toString('hex')}`;
    await writeFile(stampTmp, stampFor(ino));
    await rename(stampTmp, stamp);
    return { ok: true, path: dest, skipped: false, ms: Math.round(performance.now() - started) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Copies `paths` of a committed tree (the whole tree when empty, its root directory's owner and
 * mode included) into the existing directory `into`, with `cp -a` in the sandbox: owners, modes,
 * symlinks, hardlinks within the copy, xattrs and holes are kept, and an absolute symlink in the
 * tree resolves inside it. `scratch` is an empty directory the tree may be mounted on. Fails with
 * what cp said.
 */
export async function copyOutOfTree(o: {
  tree: TreeRecord;
  paths: readonly string[];
  into: string;
  scratch: string;
  store: Store;
  sandbox: Sandbox;
  signal?: AbortSignal | undefined;
}): Promise<Result<void, string>> {
  const sources = o.paths.length ? o.paths.map((p) => `${SANDBOX_TREE}/${p.replace(/^\/+/, '')}`) : [`${SANDBOX_TREE}/.`];
  const logFile = join(o.scratch, 'log');
  await writeFile(logFile, '');
  const r = await o.sandbox.run(
    {
      buildroot: { kind: 'host' },
      tree: { mount: o.store.readMount(o.tree, o.scratch), writable: false },
      inputs: [],
      binds: [{ src: o.into, dest: SANDBOX_OUT, writable: true }],
      argv: ['cp', '-a', '--', ...sources, `${SANDBOX_OUT}/`],
      env: { SOURCE_DATE_EPOCH },
    },
    { logFile, ...(o.signal ? { signal: o.signal } : {}) },
  );
  if (r.exitCode === 0) return ok(undefined);
  const log = (await readFile(logFile, 'utf8').catch(() => '')).trim();
  return fail(log || (r.cancelled ? 'interrupted' : `exit ${r.exitCode}`));
}

/**
 * Moves `tmp` to `dest`, moving the previous `dest` aside first. Another build exporting the
 * same target at the same moment can put its own output in between: then try again (the last
 * one wins, each output complete).
 */
async function swapIn(tmp: string, dest: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const old = join(dirname(dest), `.${basename(dest)}.old-${randomBytes(4).toString('hex')}`);
    await rename(dest, old).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    try {
      await rename(tmp, dest);
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
