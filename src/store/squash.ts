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
 * removed after a kill like any other) and renamed into place: present whole or absent. Its
 * entry, written just before, holds the layers it was made from and its manifest digest (as a
 * layer's, digest.ts), which `cache verify` checks.
 *
 *     CACHE/squash/<key>/   the tree <key> (at a depth that is a multiple of SQUASH_EVERY), flat
 *     squash:<key>          its entry in the index: { layers, digest }
 *
 * This module makes and removes squashes; it does not decide when a tree is read (local.ts
 * asks it, for every tree it hands out).
 */
import { cacache, ENTRY } from './entries.js';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKey } from '../ids.js';
import { bwrapSandbox } from '../sandbox/run.js';
import { SANDBOX_TREE, type TreeMount } from '../sandbox/spec.js';
import { layerManifest } from './digest.js';
import { CACACHE_TMP, ownedName } from './orphans.js';

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
    // The entry first: a squash in place always has one (a kill between the two leaves an
    // entry without its squash, rewritten when it is made again).
    const meta: SquashRecord = { layers: [...tree], digest: (await layerManifest(flat)).digest };
    await cacache().put(root, ENTRY.squash(tree[0]), meta.digest, { metadata: meta, ...CACACHE_TMP });
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
  await cacache().rm.entry(root, ENTRY.squash(key), { removeFully: true }).catch(() => undefined);
}

/** A squash's index entry (`squash:<key>`). */
export interface SquashRecord {
  /** The layers it flattens, the squashed tree's own first. */
  layers: string[];
  /** `sha256:…` over its manifest, as a layer's (digest.ts). */
  digest: string;
}

async function squashRecord(root: string, key: string): Promise<SquashRecord | undefined> {
  return (await cacache().get.info(root, ENTRY.squash(key)).catch(() => undefined))?.metadata as SquashRecord | undefined;
}

/**
 * Re-digests every squash against its entry; removes a squash that does not match or has no
 * entry (it is made again from the layers when next needed). Returns what was checked and
 * what removed.
 */
export async function verifySquashes(root: string): Promise<{ checked: number; corrupt: { key: string; why: string }[] }> {
  const corrupt: { key: string; why: string }[] = [];
  let checked = 0;
  for (const key of await readdir(join(root, 'squash')).catch(() => [] as string[])) {
    checked++;
    const rec = await squashRecord(root, key);
    const now = await layerManifest(join(root, 'squash', key)).catch((e: Error) => ({ digest: `unreadable: ${e.message}` }));
    const why = !rec ? 'no entry' : now.digest !== rec.digest ? 'content does not match its digest' : undefined;
    if (!why) continue;
    corrupt.push({ key, why });
    await dropSquash(root, key);
  }
  return { checked, corrupt };
}

/**
 * Removes every squash whose own layer is gone, and with `madeFrom`, every squash made from that
 * layer (`build --from` replaced it: the squash may hold what it replaced; one whose entry is
 * lost too). They are made again from the layers when next needed.
 */
export async function dropSquashes(root: string, madeFrom?: string): Promise<void> {
  for (const key of await readdir(join(root, 'squash')).catch(() => [] as string[])) {
    let drop = !(await exists(join(root, 'layers', key)));
    if (!drop && madeFrom !== undefined) drop = (await squashRecord(root, key))?.layers.includes(madeFrom) ?? true;
    if (drop) await dropSquash(root, key);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
