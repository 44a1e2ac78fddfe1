/**
 * Copies named files out of a committed tree, for a package-database reader (packages/input.ts,
 * `PackageDatabase`), without trusting the tree: the copy runs in the sandbox (the tree
 * read-only at /run/imgmake/tree, the host's tools, no network), each path is resolved inside
 * the tree as a chroot would (rules/_lib/prelude.sh's `in_tree`: an absolute symlink restarts
 * at the tree's root, `..` stops there, 40 links at most), and only a regular file is copied,
 * at most MAX_FILE_BYTES of it. A symlink in the image that points at /etc/shadow therefore
 * reads the image's /etc/shadow, never the host's, and a path that leads nowhere (or to a
 * device, a FIFO, a directory) is simply absent from the result.
 *
 * It reads; it never runs anything of the image (the sandbox's /usr is the host's).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRELUDE } from '../../rules/_lib/sh.js';
import { SOURCE_DATE_EPOCH } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import type { Sandbox } from '../sandbox/run.js';
import { SANDBOX_TREE } from '../sandbox/spec.js';
import type { Store, TreeRecord } from '../store/types.js';

/** A file bigger than this is cut here (a dpkg status file is a few MB; a copyright file, KBs). */
export const MAX_FILE_BYTES = 32 * 1024 * 1024;

const SANDBOX_OUT = '/run/imgmake/out';

/** A path a reader may ask for: relative, `/`-separated, no `.`/`..` components, no control characters. */
export function validPath(p: string): boolean {
  if (!p || p.startsWith('/') || /[\x00-\x1f\x7f]/.test(p)) return false;
  return p.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

export interface GatherOptions {
  tree: TreeRecord;
  store: Store;
  sandbox: Sandbox;
  /** A directory of this run's own (made, emptied first): the tree's mountpoint and the copies. */
  scratch: string;
  signal?: AbortSignal | undefined;
}

/**
 * The text of each of PATHS that is a regular file in the tree (path → text, UTF-8); the
 * others are left out. Fails with the sandbox's words when the copy itself failed.
 */
export async function gatherFiles(paths: readonly string[], o: GatherOptions): Promise<Result<Map<string, string>, string>> {
  const bad = paths.find((p) => !validPath(p));
  if (bad !== undefined) throw new Error(`Internal error: a package database asked for ${JSON.stringify(bad)}`);
  await rm(o.scratch, { recursive: true, force: true });
  const out = join(o.scratch, 'out');
  await mkdir(join(out, 'files'), { recursive: true });
  await writeFile(join(out, 'list'), paths.map((p) => `${p}\n`).join(''));
  const logFile = join(o.scratch, 'log');
  await writeFile(logFile, '');
  const r = await o.sandbox.run(
    {
      buildroot: { kind: 'host' },
      tree: { mount: o.store.readMount(o.tree, join(o.scratch, 'mnt')), writable: false },
      inputs: [],
      binds: [{ src: out, dest: SANDBOX_OUT, writable: true }],
      argv: ['/bin/sh', '-c', GATHER],
      env: { SOURCE_DATE_EPOCH },
    },
    { logFile, ...(o.signal ? { signal: o.signal } : {}) },
  );
  if (r.exitCode !== 0) {
    if (r.cancelled) return fail('interrupted');
    const log = (await readFile(logFile, 'utf8').catch(() => '')).trim();
    return fail(`reading the package database of ${o.tree.node} failed: ${log || `exit ${r.exitCode}`}`);
  }
  const files = new Map<string, string>();
  for (const p of paths) {
    const text = await readFile(join(out, 'files', ...p.split('/')), 'utf8').catch(() => undefined);
    if (text !== undefined) files.set(p, text);
  }
  return ok(files);
}

/**
 * In the sandbox: each listed path resolved in the tree, links followed (`in_tree … follow`);
 * a regular file's first MAX_FILE_BYTES are copied to files/PATH. `in_tree` fails (too many
 * links) in its subshell only: that path is skipped.
 */
const GATHER = `${PRELUDE}
cd ${SANDBOX_TREE}
while IFS= read -r path; do
  p=$(in_tree "$path" follow 2>/dev/null) || continue
  [ -f "$p" ] && [ ! -L "$p" ] || continue
  dest=${SANDBOX_OUT}/files/$path
  mkdir -p "\${dest%/*}"
  head -c ${MAX_FILE_BYTES} "$p" > "$dest" || exit 1
done < ${SANDBOX_OUT}/list
`;
