/**
 * diff: what differs between two trees of the store, read from their layers alone. A tree is a
 * stack of layers, each the overlay upper dir one stage wrote (docs/store.md), so the trees
 * below their common layers differ only in the paths the other layers name:
 *
 *     old: [a', b', C, D]      new: [a, b, C, D]      differing layers: a', b', a, b
 *
 * Every path any differing layer holds (a file, a directory copied up, a whiteout) is
 * *touched*: its state in the new tree must be written over the old. A directory marked opaque
 * in a differing layer (removed and made again by a stage) is *replaced*: everything under it
 * is rewritten. So is a directory of the new tree where a differing layer holds anything but a
 * directory (a whiteout, a file, a link): that layer's side deleted or replaced the directory,
 * so the other side's whole subtree differs, though no differing layer names what is under it
 * (an edit undone: the old tree's layer deleted `/opt/x`, the new tree's lower layer has it). What the new tree holds at those paths is read through its merged view (the
 * sandbox's overlay), never from the layers: overlay's own rules decide it.
 *
 * It does not read the merged tree or the image; index.ts does.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { CacheKey } from '../ids.js';
import { fail, ok, type Result } from '../result.js';

export interface TreeDiff {
  /** Touched paths, relative to the tree's root ("etc/hostname"), sorted; the root itself excluded. */
  paths: string[];
  /** Directories replaced whole (opaque in a differing layer), relative. */
  opaque: string[];
  /**
   * Paths some differing layer holds as something other than a directory (whiteouts, files,
   * links): where the new tree has a directory, it is replaced whole too (index.ts decides,
   * reading the new tree).
   */
  replaced: string[];
  /**
   * Paths every differing layer that holds them holds as a directory: copied up because
   * something under them changed, or made new; their contents are the other paths.
   */
  dirs: string[];
  /** How many layers differ (old's and new's). */
  layers: number;
}

/** The layers either list has and the other lacks. */
export function differingLayers(older: readonly CacheKey[], newer: readonly CacheKey[]): CacheKey[] {
  const o = new Set(older);
  const n = new Set(newer);
  return [...older.filter((k) => !n.has(k)), ...newer.filter((k) => !o.has(k))];
}

/**
 * The touched and replaced paths of the layers `keys` (each at `layerPath(key)`). Fails on a
 * name holding a newline (debugfs cannot name it).
 */
export async function layerDiff(keys: readonly CacheKey[], layerPath: (k: CacheKey) => string): Promise<Result<TreeDiff, string>> {
  const paths = new Set<string>();
  const notDir = new Set<string>();
  const dirs = keys.map(layerPath);
  for (const dir of dirs) {
    const bad = walk(dir, '', paths, notDir);
    if (bad !== undefined) return fail(`a file name holds a newline, which debugfs cannot name: ${JSON.stringify(bad)}`);
  }
  const opaque = dirs.length ? await opaqueDirs(dirs) : [];
  const sorted = [...paths].sort();
  return ok({ paths: sorted, opaque: [...new Set(opaque)].sort(), replaced: sorted.filter((p) => notDir.has(p)), dirs: sorted.filter((p) => !notDir.has(p)), layers: keys.length });
}

function walk(root: string, rel: string, into: Set<string>, notDir: Set<string>): string | undefined {
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (p.includes('\n')) return p;
    into.add(p);
    if (!e.isDirectory()) notDir.add(p);
    if (e.isDirectory()) {
      const bad = walk(root, p, into, notDir);
      if (bad !== undefined) return bad;
    }
  }
  return undefined;
}

/** The directories of the layers marked `trusted.overlay.opaque="y"`, relative to their layer. */
async function opaqueDirs(layers: string[]): Promise<string[]> {
  // One getfattr for all layers: it prints only the files that have the attribute.
  const r = await execa('getfattr', ['-R', '-P', '--absolute-names', '-n', 'trusted.overlay.opaque', '-e', 'text', ...layers], { reject: false, stripFinalNewline: false });
  const out: string[] = [];
  let file: string | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8);
    else if (file && line === 'trusted.overlay.opaque="y"') {
      const layer = layers.find((l) => file === l || file!.startsWith(l + '/'));
      if (layer && file !== layer && lstatSync(file).isDirectory()) out.push(file.slice(layer.length + 1));
    }
  }
  return out;
}
