/**
 * Squashes: how a tree deeper than overlayfs can stack is still mounted.
 *
 * A tree is its own layer over its ancestors' (types.ts); a stage's overlay takes them all as
 * lower layers, and the mount option string holds ~56 (docs/store.md, "The layer limit"). Past
 * that depth, the tree at a fixed depth below is flattened once into one directory, its
 * *squash*, and a deep tree is mounted as its top layers over that squash:
 *
 *     depth n < SQUASH_FROM:   lowers = all n layers (as before)
 *     depth n ≥ SQUASH_FROM:   s = the largest multiple of SQUASH_EVERY below n
 *                              lowers = the top n − s layers, then CACHE/squash/<key of depth s>/
 *
 * so a mount never stacks more than SQUASH_EVERY + 1 lower directories, whatever the depth, and
 * the squashes of a chain are made every SQUASH_EVERY stages (one per band, shared by every tree
 * of the band). A squash is `cp -a` of the tree's merged view (in the sandbox, like an export):
 * the same files, owners, modes, times, xattrs, hardlinks and holes, whiteouts already applied;
 * the layers above it apply theirs over it exactly as over the stack it replaces. So keys do not
 * change (a squash has none of its own: it is named after the tree it flattens), layers do not
 * change (a stage's upper dir is the same diff over either), and the bytes out are the same.
 *
 * A squash is derived, local and disposable: never uploaded (a remote holds layers; a tree
 * downloaded from one gets its squash made here), rebuilt from the layers whenever it is
 * missing, removed with the layer it is named after (gc.ts) and whenever a layer it was made
 * from is replaced (`build --from`). It is made in a work dir of the store (`work/<owner>/`,
 * removed after a kill like any other) and renamed into place: present whole or absent.
 *
 *     CACHE/squash/<key>/   the tree <key> (at a depth that is a multiple of SQUASH_EVERY), flat
 *
 * This module makes and removes squashes; it does not decide when a tree is read (local.ts
 * asks it, for every tree it hands out).
 */
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKey } from '../ids.js';
import { bwrapSandbox } from '../sandbox/run.js';
import { SANDBOX_TREE, type TreeMount } from '../sandbox/spec.js';
import { ownedName } from './orphans.js';

/** The depth from which a tree is mounted over a squash (the store's MAX_LAYERS). */
export const SQUASH_FROM = 56;
/** Squashes are made of the trees whose depth is a multiple of this. */
export const SQUASH_EVERY = 48;

const SANDBOX_OUT = '/run/imgmake/out';

/** The depth of the squash a tree of `depth` layers is mounted over, or 0 for none. */
export function squashDepth(depth: number): number {
  return depth < SQUASH_FROM ? 0 : Math.floor((depth - 1) / SQUASH_EVERY) * SQUASH_EVERY;
}

/**
 * The lower directories of a tree (its layers, its own first), as names relative to
 * CACHE/layers/: all of them, or past SQUASH_FROM the top ones and `../squash/<key>`.
 */
export function mountLowers(layers: readonly CacheKey[]): string[] {
  const s = squashDepth(layers.length);
  if (s === 0) return [...layers];
  const top = layers.length - s;
  return [...layers.slice(0, top), `../squash/${layers[top]!}`];
}

/** The layers of the tree whose squash mounting `layers` needs, if any. */
function squashedTree(layers: readonly CacheKey[]): readonly CacheKey[] | undefined {
  const s = squashDepth(layers.length);
  return s === 0 ? undefined : layers.slice(layers.length - s);
}

/** Per cache root and key, the squashes this process is making (two stages may need one). */
const making = new Map<string, Promise<void>>();

/**
 * Makes sure the tree of `layers` can be mounted: the squash it is mounted over exists (made
 * now if missing, which first makes sure of the squashed tree's own). A no-op, one `stat`, for
 * a tree that has it, and nothing at all for one shallower than SQUASH_FROM.
 */
export async function ensureMountable(root: string, layers: readonly CacheKey[]): Promise<void> {
  const tree = squashedTree(layers);
  if (!tree) return;
  const dir = join(root, 'squash', tree[0]!);
  if (await exists(dir)) return;
  const id = `${root}\0${tree[0]}`;
  let p = making.get(id);
  if (!p) {
    p = makeSquash(root, tree, dir).finally(() => making.delete(id));
    making.set(id, p);
  }
  await p;
}

async function makeSquash(root: string, tree: readonly CacheKey[], dest: string): Promise<void> {
  await ensureMountable(root, tree);
  const work = join(root, 'work', ownedName());
  const flat = join(work, 'flat');
  const mnt = join(work, 'mnt');
  const logFile = join(work, 'log');
  try {
    await mkdir(flat, { recursive: true, mode: 0o700 });
    await mkdir(mnt);
    const mount: TreeMount = { kind: 'overlay', layersDir: join(root, 'layers'), lowers: mountLowers(tree), mountpoint: mnt };
    const r = await bwrapSandbox.run(
      {
        buildroot: { kind: 'host' },
        tree: { mount, writable: false },
        inputs: [],
        binds: [{ src: flat, dest: SANDBOX_OUT, writable: true }],
        argv: ['cp', '-a', '--', `${SANDBOX_TREE}/.`, `${SANDBOX_OUT}/`],
        env: {},
      },
      { logFile },
    );
    if (r.exitCode !== 0) {
      const log = (await readFile(logFile, 'utf8').catch(() => '')).trim();
      throw new Error(`flattening the tree ${tree[0]} (${tree.length} layers) into ${dest} failed: ${log || `exit ${r.exitCode}`}`);
    }
    await mkdir(join(root, 'squash'), { recursive: true });
    await rename(flat, dest).catch((e: NodeJS.ErrnoException) => {
      // Another build made it first: same layers, same squash.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Removes the squash of `key` (the tree flattened in it), if any: its layer is going away.
 * Renamed out of squash/ first, so that a reader finds it whole or not at all.
 */
export async function dropSquash(root: string, key: string): Promise<void> {
  const dir = join(root, 'squash', key);
  if (!(await exists(dir))) return;
  const gone = join(root, 'work', ownedName());
  await mkdir(join(root, 'work'), { recursive: true });
  await rename(dir, gone).catch(() => undefined);
  await rm(gone, { recursive: true, force: true });
}

/**
 * Removes every squash made from `layer` (`build --from` replaced it: the squash may hold what
 * it replaced), and every squash whose own layer is gone. `layersOf` says which layers a squash
 * flattened (its tree's entry), or undefined when unknown: those are removed too, being rebuilt
 * from the layers when next needed.
 */
export async function dropSquashes(root: string, o: { made?: string; layersOf: (key: string) => Promise<readonly string[] | undefined> }): Promise<void> {
  for (const key of await readdir(join(root, 'squash')).catch(() => [] as string[])) {
    let drop = !(await exists(join(root, 'layers', key)));
    if (!drop && o.made !== undefined) {
      const layers = await o.layersOf(key);
      drop = layers === undefined || layers.includes(o.made);
    }
    if (drop) await dropSquash(root, key);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
