/**
 * The local store: a cache directory on this machine.
 *
 *     CACHE/
 *       index-v5/ content-v2/   cacache: the key index (tree:<key>, history:…, log:<key>) and
 *                               small blobs (tree records, logs)
 *       layers/<key>/           committed layers: the upper directory a stage wrote, never
 *                               modified again
 *       work/<pid>-<rand>/      one running stage: upper/ work/ merged/ scratch/
 *
 * Commit order is what makes kill -9 safe: the layer directory is renamed into layers/ (atomic
 * on one filesystem) before the index entry naming it is appended, and cacache ignores a torn
 * index line. A layer without an entry is finished work whose entry was lost: the next commit
 * of that key adopts it. Orphaned work directories are removed when their pid is gone.
 *
 * This module stores and finds trees; it does not run stages or compute keys.
 */
import { mkdir, readdir, rename, rm, stat, lstat, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import cacache from 'cacache';
import type { CacheKey, NodeId } from '../ids.js';
import type { TreeMount } from '../sandbox/spec.js';
import type { NodeHistory, Store, TreeRecord, WorkTree } from './types.js';

/**
 * Overlayfs takes its lower layers in one mount option string of at most one page; with
 * layers named relative to layers/ that is room for ~59. Past this depth a stage cannot start.
 */
export const MAX_LAYERS = 56;

export async function openLocalStore(root: string): Promise<Store> {
  await mkdir(join(root, 'layers'), { recursive: true });
  await mkdir(join(root, 'work'), { recursive: true });
  await removeOrphans(join(root, 'work'));
  return new LocalStore(root);
}

class LocalStore implements Store {
  constructor(readonly root: string) {}

  private layer(key: CacheKey): string {
    return join(this.root, 'layers', key);
  }

  async get(key: CacheKey): Promise<TreeRecord | undefined> {
    const info = await cacache.get.info(this.root, `tree:${key}`);
    if (!info) return undefined;
    const rec = info.metadata as TreeRecord;
    // An entry whose layers were removed by hand is not a tree.
    for (const k of rec.layers) if (!(await exists(this.layer(k)))) return undefined;
    return rec;
  }

  readMount(rec: TreeRecord, mountpoint: string): TreeMount {
    if (rec.layers.length === 1) return { kind: 'dir', path: this.layer(rec.layers[0]!) };
    return { kind: 'overlay', layersDir: join(this.root, 'layers'), lowers: [...rec.layers], mountpoint };
  }

  async begin(parent: TreeRecord | undefined): Promise<WorkTree> {
    if (parent && parent.layers.length >= MAX_LAYERS) {
      throw new Error(
        `the tree of ${parent.node} already has ${parent.layers.length} layers, the most overlayfs can stack here; split the pipeline (a later pipeline can copy this one's tree in with files.copy)`,
      );
    }
    const dir = join(this.root, 'work', `${process.pid}-${randomBytes(6).toString('hex')}`);
    const upper = join(dir, 'upper');
    const scratch = join(dir, 'scratch');
    await mkdir(upper, { recursive: true, mode: 0o755 });
    await chmod(upper, 0o755);
    await mkdir(scratch);
    if (!parent) return { dir, upper, scratch, mount: { kind: 'dir', path: upper } };
    const work = join(dir, 'work');
    const merged = join(dir, 'merged');
    await mkdir(work);
    await mkdir(merged);
    return {
      dir,
      upper,
      scratch,
      parent,
      mount: { kind: 'overlay', layersDir: join(this.root, 'layers'), lowers: [...parent.layers], upper, work, mountpoint: merged },
    };
  }

  async commit(w: WorkTree, r: { key: CacheKey; node: NodeId; ms: number }): Promise<TreeRecord> {
    const bytes = await diskUsage(w.upper);
    const dest = this.layer(r.key);
    try {
      await rename(w.upper, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Another build committed this key first (or a killed one got this far): same key, same tree.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
    const rec: TreeRecord = {
      key: r.key,
      node: r.node,
      layers: [r.key, ...(w.parent?.layers ?? [])],
      createdAt: new Date().toISOString(),
      ms: r.ms,
      bytes,
    };
    await cacache.put(this.root, `tree:${r.key}`, JSON.stringify(rec), { metadata: rec });
    await this.discard(w);
    return rec;
  }

  async discard(w: WorkTree): Promise<void> {
    await rm(w.dir, { recursive: true, force: true });
  }

  async putLog(key: CacheKey, logFile: string): Promise<string> {
    const { readFile } = await import('node:fs/promises');
    await cacache.put(this.root, `log:${key}`, await readFile(logFile));
    return (await this.logPath(key))!;
  }

  async logPath(key: CacheKey): Promise<string | undefined> {
    const info = await cacache.get.info(this.root, `log:${key}`);
    return info?.path;
  }

  async getHistory(scope: string, node: NodeId): Promise<NodeHistory | undefined> {
    const info = await cacache.get.info(this.root, `history:${scope}:${node}`);
    return info ? (info.metadata as NodeHistory) : undefined;
  }

  async putHistory(scope: string, node: NodeId, h: NodeHistory): Promise<void> {
    await cacache.put(this.root, `history:${scope}:${node}`, JSON.stringify(h), { metadata: h });
  }

  async info() {
    const entries = await cacache.ls(this.root);
    let trees = 0;
    let logs = 0;
    for (const k of Object.keys(entries)) {
      if (k.startsWith('tree:')) trees++;
      else if (k.startsWith('log:')) logs++;
    }
    return { root: this.root, trees, logs, bytes: await diskUsage(this.root) };
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Bytes allocated below `dir` (st_blocks × 512, hardlinks counted once): what `du` says. */
export async function diskUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      const s = await lstat(p, { bigint: true });
      if (s.nlink > 1n) {
        const id = `${s.dev}:${s.ino}`;
        if (seen.has(id)) continue;
        seen.add(id);
      }
      total += Number(s.blocks) * 512;
      if (s.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return total;
}

/** Removes work directories whose imgmake process is gone (killed builds). */
async function removeOrphans(workDir: string): Promise<void> {
  for (const name of await readdir(workDir)) {
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) continue;
    await rm(join(workDir, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
