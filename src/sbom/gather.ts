/**
 * Copies named files out of a committed tree, for a package-database reader (packages/input.ts,
 * `PackageDatabase`), without trusting the tree: the copy runs in the sandbox (the tree
 * read-only at /run/imgmake/tree, the host's tools, no network), each path is resolved inside
 * the tree as a chroot would (rules/_lib/prelude.sh's `in_tree`: an absolute symlink restarts
 * at the tree's root, `..` stops there, 40 links at most), and only a regular file is copied,
 * at most MAX_FILE_BYTES big (a bigger one is left out). A symlink in the image that points at /etc/shadow therefore
 * reads the image's /etc/shadow, never the host's, and a path that leads nowhere (or to a
 * device, a FIFO, a directory) is simply absent from the result.
 *
 * It reads; it never runs anything of the image (the sandbox's /usr is the host's).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SOURCE_DATE_EPOCH } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import type { Sandbox } from '../sandbox/run.js';
import { SANDBOX_TREE } from '../sandbox/spec.js';
import type { Store, TreeRecord } from '../store/types.js';

/** A file bigger than this is left out (a package database is a few MB; a license file, KBs). */
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
  await mkdir(out, { recursive: true });
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
  // index: the 1-based line of each file copied; sizes: its length; all: their bytes in that order.
  const lines = async (name: string) => (await readFile(join(out, name), 'utf8')).split('\n').filter(Boolean).map(Number);
  const index = await lines('index');
  const sizes = await lines('sizes');
  const all = await readFile(join(out, 'all'));
  if (index.length !== sizes.length || sizes.reduce((a, b) => a + b, 0) !== all.length) throw new Error('Internal error: the package database copy is inconsistent');
  const files = new Map<string, string>();
  let at = 0;
  for (const [k, n] of index.entries()) {
    const size = sizes[k]!;
    files.set(paths[n - 1]!, all.subarray(at, at + size).toString('utf8'));
    at += size;
  }
  return ok(files);
}

/**
 * In the sandbox, in few processes (a fork per file made 181 copyright files take 10 s on a
 * loaded machine): each listed path resolved in the tree by `resolve`, which is prelude.sh's
 * `in_tree PATH follow` setting `$_cur` instead of printing it (so no subshell per path; the
 * prelude itself is part of every rule's key and stays as it is); then one `stat` of the
 * regular files found, and one `cat` of those no larger than MAX_FILE_BYTES into `all`, their
 * line numbers in `index` and sizes in `sizes`, which gatherFiles splits.
 */
const GATHER = `set -eu
resolve() {
  _rest=\${1#/}; _cur=.; _hops=0
  while [ -n "$_rest" ]; do
    case $_rest in
      */*) _c=\${_rest%%/*}; _rest=\${_rest#*/} ;;
      *) _c=$_rest; _rest= ;;
    esac
    case $_c in
      '' | .) continue ;;
      ..) [ "$_cur" = . ] || _cur=\${_cur%/*}; continue ;;
    esac
    if [ -L "$_cur/$_c" ]; then
      _hops=$((_hops + 1))
      [ "$_hops" -le 40 ] || return 1
      _t=$(readlink "$_cur/$_c")
      case $_t in
        /*) _cur=.; _rest=\${_t#/}/$_rest ;;
        *) _rest=$_t/$_rest ;;
      esac
    else
      _cur=$_cur/$_c
    fi
  done
}
cd ${SANDBOX_TREE}
out=${SANDBOX_OUT}
: > "$out/index"; : > "$out/sizes"; : > "$out/all"
i=0
set --
while IFS= read -r path; do
  i=$((i + 1))
  resolve "$path" || continue
  [ -f "$_cur" ] && [ ! -L "$_cur" ] || continue
  printf '%s\\n' "$i" >> "$out/found"
  set -- "$@" "$_cur"
done < "$out/list"
[ "$#" -gt 0 ] || exit 0
stat -c %s -- "$@" > "$out/found-sizes"
exec 3< "$out/found" 4< "$out/found-sizes"
for p do
  IFS= read -r n <&3; IFS= read -r size <&4
  shift
  [ "$size" -le ${MAX_FILE_BYTES} ] || continue
  printf '%s\\n' "$n" >> "$out/index"; printf '%s\\n' "$size" >> "$out/sizes"
  set -- "$@" "$p"
done
[ "$#" -eq 0 ] || cat -- "$@" > "$out/all"
`;
