/**
 * The local store: a cache directory on this machine.
 *
 *     CACHE/                    0700 (see openLocalStore)
 *       index-v5/ content-v2/   cacache: the key index (tree:<key>, layer:<key>, history:…,
 *                               log:<key>) and small blobs (tree records, logs)
 *       layers/<key>/           committed layers: the upper directory a stage wrote, never
 *                               modified again
 *       work/<pid>-<boot>.<pidns>-<rand>/
 *                               one running stage: upper/ work/ merged/ scratch/
 *
 * Commit order is what makes kill -9 safe: the layer directory is renamed into layers/ (atomic
 * on one filesystem) before the index entry naming it is appended, and cacache ignores a torn
 * index line. A layer without an entry is finished work whose entry was lost — or something
 * nobody can vouch for: the next commit of that key replaces it with its own, the next import
 * with the one it fetched, the next collection removes it. Nothing adopts a layer unless a
 * record of this cache vouches for it (a commit checks it against that record's digest). Orphaned work directories are removed when their pid is gone; a pid
 * is only judged in the pid namespace and boot it was taken in (named in the directory), so a
 * build in another container sharing this cache never removes a running build's work.
 *
 * This module stores and finds trees; it does not run stages or compute keys.
 */
import { cacache, ENTRY, entryKind, findEntry, putEntry } from './entries.js';
import { mkdir, readdir, readFile, rename, rm, stat, lstat, chmod, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CacheKey, NodeId } from '../ids.js';
import type { TreeMount } from '../sandbox/spec.js';
import { layerManifest } from './digest.js';
import { clampTimes } from './times.js';
import { CACACHE_TMP, ownedName, ownerScope, sweepCache } from './orphans.js';
import { dropSquashes, ensureMountable, mountLowers } from './squash.js';
import { SOURCE_DATE_EPOCH } from '../key.js';
import type { NodeHistory, Store, TreeRecord, WorkTree } from './types.js';
import { takeLock, type Held } from './lock.js';

/**
 * Overlayfs takes its lower layers in one mount option string of at most one page; with
 * layers named relative to layers/ that is room for ~59. From this depth on, a tree is mounted
 * over a squash of a tree below it (squash.ts), so no depth is out of reach.
 */
export const MAX_LAYERS = 56;

/**
 * Opens (and makes) the cache at `root`. The root is made 0700, and an existing one (made by an
 * older imgmake, or by hand) is set to 0700 on every open: layers keep what stages made,
 * setuid-root files and device nodes included (an image needs its sudo), so no other user of
 * the host may reach them. Everything that holds a tree lives below it (layers, work dirs,
 * imported blobs), so this one mode covers them all (docs/store.md, "Who can read the cache").
 */
export async function openLocalStore(root: string): Promise<Store> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  await mkdir(join(root, 'layers'), { recursive: true });
  await mkdir(join(root, 'work'), { recursive: true });
  await removeOrphans(join(root, 'work'), ownerScope());
  await sweepCache(root);
  return new LocalStore(root);
}

class LocalStore implements Store {
  /** Layer digests still being computed (see recordDigest). */
  private readonly digests = new Set<Promise<void>>();
  /** The same, by the key whose entry each one completes. */
  private readonly digesting = new Map<CacheKey, Promise<void>>();

  constructor(readonly root: string) {}

  private layer(key: CacheKey): string {
    return join(this.root, 'layers', key);
  }

  async get(key: CacheKey): Promise<TreeRecord | undefined> {
    // Read without cacache (entries.ts): a no-op build's only index reads.
    const info = await findEntry(this.root, ENTRY.tree(key));
    if (!info) return undefined;
    const rec = info.metadata as TreeRecord;
    // An entry whose layers were removed by hand is not a tree. Checked synchronously: a stat
    // of a cached dentry is microseconds, a round trip through libuv's pool a hundred or more,
    // and a no-op build checks every layer of every stage (docs/bench.md, "Start-up").
    for (const k of rec.layers) if (!existsSync(this.layer(k))) return undefined;
    // Past the overlay limit it is mounted over a squash: made now if missing (squash.ts).
    await ensureMountable(this.root, rec.layers);
    return rec;
  }

  readMount(rec: TreeRecord, mountpoint: string): TreeMount {
    if (rec.layers.length === 1) return { kind: 'dir', path: this.layer(rec.layers[0]!) };
    return { kind: 'overlay', layersDir: join(this.root, 'layers'), lowers: mountLowers(rec.layers), mountpoint };
  }

  async begin(parent: TreeRecord | undefined): Promise<WorkTree> {
    const dir = join(this.root, 'work', ownedName());
    const upper = join(dir, 'upper');
    const scratch = join(dir, 'scratch');
    await mkdir(upper, { recursive: true, mode: 0o755 });
    await chmod(upper, 0o755);
    await mkdir(scratch);
    // overlayfs's own work directory, beside the upper: a first stage's tree is mounted as an
    // overlay too (over an empty lower), which keeps the host path out of its mount table.
    const work = join(dir, 'work');
    await mkdir(work);
    if (!parent) return { dir, upper, scratch, mount: { kind: 'dir', path: upper, work } };
    const merged = join(dir, 'merged');
    await mkdir(merged);
    return {
      dir,
      upper,
      scratch,
      parent,
      mount: { kind: 'overlay', layersDir: join(this.root, 'layers'), lowers: mountLowers(parent.layers), upper, work, mountpoint: merged },
    };
  }

  layerPath(key: CacheKey): string {
    return this.layer(key);
  }

  async scratch(): Promise<{ dir: string; release(): Promise<void> }> {
    // A work dir with no tree in it: swept like any other when its owner is gone.
    const w = await this.begin(undefined);
    return { dir: w.scratch, release: () => this.discard(w) };
  }

  async commit(w: WorkTree, r: { key: CacheKey; node: NodeId; ms: number; replace?: boolean }): Promise<TreeRecord> {
    // Times clamped before the layer is in place (times.ts): a committed tree is reproducible.
    let bytes = (await clampTimes(w.upper, Number(SOURCE_DATE_EPOCH))).bytes;
    const dest = this.layer(r.key);
    // Said before the layer is in place: if this process dies before its entry is written, the
    // next store open finds the layer by this note (removeOrphans) instead of leaving it unvouched.
    // An empty file, named after the key: it needs no data block, so a full disk still takes it.
    try {
      await writeFile(noteOf(w.dir, r.key), '');
    } catch (e) {
      await this.discard(w); // nothing was placed
      throw e;
    }
    try {
      await rename(w.upper, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      // Another build committed this key first: same key, same tree. Theirs is kept, record and
      // all, and ours discarded — but only once their layer is checked against their record's
      // digest. A layer no record vouches for (a commit killed before its entry, a download
      // that never finished, one planted by a hostile remote) is never adopted: ours, which
      // this build just made, replaces it.
      const theirs = r.replace ? undefined : await this.verified(r.key);
      if (theirs) {
        await this.discard(w);
        return theirs;
      }
      // The old layer goes into our work dir (removed with it below), ours takes its place. A
      // tree mounted from the old layer keeps working meanwhile.
      await rename(dest, join(w.dir, 'replaced')).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e; // a dead build's uncommitted layer, removed meanwhile
      });
      await rename(w.upper, dest);
      // A squash flattened from the old layer may differ from one of the new (squash.ts).
      await dropSquashes(this.root, r.key);
    }
    return this.index(w, r, bytes);
  }

  /** The committed tree `key`, if its own layer matches its record's digest (waited for when this process is computing it). */
  private async verified(key: CacheKey): Promise<TreeRecord | undefined> {
    await this.digesting.get(key);
    const rec = await this.get(key);
    if (!rec?.digest) return undefined;
    const now = await layerManifest(this.layer(key)).catch(() => undefined);
    return now?.digest === rec.digest ? rec : undefined;
  }

  /** Writes the index entry of a layer now in place, then removes the work dir. */
  private async index(w: WorkTree, r: { key: CacheKey; node: NodeId; ms: number }, bytes: number): Promise<TreeRecord> {
    const rec: TreeRecord = {
      key: r.key,
      node: r.node,
      layers: [r.key, ...(w.parent?.layers ?? [])],
      createdAt: new Date().toISOString(),
      ms: r.ms,
      bytes,
    };
    try {
      await putEntry(this.root, ENTRY.tree(r.key), JSON.stringify(rec), rec);
    } catch (e) {
      // No entry (a full disk): the layer must not stay in layers/ without one, or a later
      // commit of this key would adopt it as finished work. It goes with the work dir; a layer
      // this commit replaced (`build --from`) goes back, still described by its entry.
      await rename(this.layer(r.key), join(w.dir, 'uncommitted')).catch(() => undefined);
      await rename(join(w.dir, 'replaced'), this.layer(r.key)).catch(() => undefined);
      await this.discard(w);
      throw e;
    }
    // A layer record an import wrote for the layer this commit replaced: its digest is not ours.
    if (await findEntry(this.root, ENTRY.layer(r.key))) await cacache().rm.entry(this.root, ENTRY.layer(r.key));
    await this.discard(w);
    this.recordDigest(rec);
    await ensureMountable(this.root, rec.layers);
    return rec;
  }

  /**
   * The layer's manifest digest (what `cache verify` checks), computed after the commit while
   * the build goes on — 1–2 s for a 760 MB layer or a 3 GiB sparse disk, which would otherwise
   * hold up the next stage — then written into its entry. A process that ends before `flush`
   * leaves the tree without a digest: verify says it cannot check it, never that it is good.
   */
  private recordDigest(rec: TreeRecord): void {
    const done: Promise<void> = layerManifest(this.layer(rec.key))
      .then(async (m) => {
        const now = await findEntry(this.root, ENTRY.tree(rec.key));
        // Replaced meanwhile (`build --from`): that commit records its own.
        if ((now?.metadata as TreeRecord | undefined)?.createdAt !== rec.createdAt) return;
        const withDigest: TreeRecord = { ...rec, digest: m.digest };
        await putEntry(this.root, ENTRY.tree(rec.key), JSON.stringify(withDigest), withDigest);
      })
      .catch(() => undefined)
      .finally(() => {
        this.digests.delete(done);
        if (this.digesting.get(rec.key) === done) this.digesting.delete(rec.key);
      });
    this.digests.add(done);
    this.digesting.set(rec.key, done);
  }

  async digested(key: CacheKey): Promise<TreeRecord | undefined> {
    await this.digesting.get(key);
    return this.get(key);
  }

  async flush(): Promise<void> {
    while (this.digests.size) await Promise.all([...this.digests]);
  }

  claim(key: CacheKey, o: { signal?: AbortSignal | undefined; onWait?: (holder: string) => void } = {}): Promise<Held | undefined> {
    // The holder is building the same key; a stage may take many minutes, but a claim held longer
    // than this is most likely a dead build in another container: same key, same tree, build it.
    return takeLock(join(this.root, 'claims', key), { ...o, giveUpMs: 30 * 60_000 });
  }

  async discard(w: WorkTree): Promise<void> {
    await rm(w.dir, { recursive: true, force: true });
  }

  async importTree(rec: TreeRecord, fill: (layer: CacheKey, dir: string) => Promise<void>, o: { digests?: ReadonlyMap<CacheKey, string> } = {}): Promise<TreeRecord> {
    const have = await this.get(rec.key);
    if (have) return have;
    /** Layers this import put in place: removed again if it fails. */
    const placed: CacheKey[] = [];
    // Holds the note of every layer placed until the entries are written (see commit).
    const guard = await this.begin(undefined);
    try {
      for (const layer of rec.layers) {
        // A layer a record of this cache vouches for stays; any other directory under its key
        // (a killed commit's or download's, a planted one) is replaced by the one fetched.
        if (await this.vouched(layer)) continue;
        const w = await this.begin(undefined);
        try {
          await fill(layer, w.upper);
          const dest = this.layer(layer);
          await writeFile(noteOf(guard.dir, layer), '');
          await rename(dest, join(w.dir, 'replaced')).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          });
          // Like a commit: the layer appears whole or not at all. If another build put it there
          // meanwhile (ENOTEMPTY), same key, same layer: theirs is kept, and theirs to vouch for.
          const mine = await rename(w.upper, dest).then(
            () => true,
            (e: NodeJS.ErrnoException) => {
              if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
              return false;
            },
          );
          if (mine) placed.push(layer);
        } finally {
          await this.discard(w);
        }
      }
      // The layers below the tree's own have no tree record here: a layer record vouches for
      // each (with its digest when the entry declared one: what `cache verify` checks).
      for (const layer of rec.layers.slice(1)) {
        if (!placed.includes(layer)) continue;
        const digest = o.digests?.get(layer);
        const meta: LayerRecord = { key: layer, tree: rec.key, ...(digest ? { digest } : {}) };
        await cacache().put(this.root, ENTRY.layer(layer), JSON.stringify(meta), { metadata: meta, ...CACACHE_TMP });
      }
      await cacache().put(this.root, ENTRY.tree(rec.key), JSON.stringify(rec), { metadata: rec, ...CACACHE_TMP });
    } catch (e) {
      // All or nothing: what this import put in place goes (layers that were here stay).
      const w = await this.begin(undefined);
      for (const layer of placed) await rename(this.layer(layer), join(w.dir, layer)).catch(() => undefined);
      await this.discard(w);
      throw e;
    } finally {
      await this.discard(guard);
    }
    // An entry uploaded before its digest was known: digest the layer as a commit would.
    if (!rec.digest) this.recordDigest(rec);
    await ensureMountable(this.root, rec.layers);
    return rec;
  }

  /** Whether `layers/<key>` is there and a record of this cache vouches for it (its tree's, or an import's layer record). */
  private async vouched(key: CacheKey): Promise<boolean> {
    if (!(await exists(this.layer(key)))) return false;
    return (await cacache().get.info(this.root, ENTRY.tree(key))) !== null || (await cacache().get.info(this.root, ENTRY.layer(key))) !== null;
  }

  async layerDigest(key: CacheKey): Promise<string | undefined> {
    const own = await this.digested(key);
    if (own) return own.digest;
    const info = await cacache().get.info(this.root, ENTRY.layer(key));
    return (info?.metadata as LayerRecord | undefined)?.digest;
  }

  async putLog(key: CacheKey, log: string | Uint8Array): Promise<string> {
    return await putEntry(this.root, ENTRY.log(key), typeof log === 'string' ? await readFile(log) : log);
  }

  async logPath(key: CacheKey): Promise<string | undefined> {
    return (await findEntry(this.root, ENTRY.log(key)))?.path;
  }

  async getHistory(scope: string, node: NodeId): Promise<NodeHistory | undefined> {
    const info = await findEntry(this.root, ENTRY.history(scope, node));
    return info ? (info.metadata as NodeHistory) : undefined;
  }

  async putHistory(scope: string, node: NodeId, h: NodeHistory): Promise<void> {
    await putEntry(this.root, ENTRY.history(scope, node), JSON.stringify(h), h);
  }

  async info() {
    const entries = await cacache().ls(this.root);
    let trees = 0;
    let logs = 0;
    for (const k of Object.keys(entries)) {
      if (entryKind(k) === 'tree') trees++;
      else if (entryKind(k) === 'log') logs++;
    }
    return { root: this.root, trees, logs, bytes: await diskUsage(this.root) };
  }
}

/**
 * What vouches for a layer below an imported tree (`layer:<key>` in the index): the tree it
 * came with, and its manifest digest when the remote entry declared one. A layer with its
 * own tree record needs none.
 */
export interface LayerRecord {
  key: CacheKey;
  tree: CacheKey;
  digest?: string;
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

/**
 * Where a pid means something: this boot and this pid namespace. Two containers that share a
 * cache directory have their own pid namespaces, and pid 40 of one says nothing of the other.
 */
export interface PidScope {
  /** The first 8 hex digits of the kernel's boot id. */
  boot: string;
  /** The inode of /proc/self/ns/pid. */
  ns: string;
}

/** This process's scope: the one computed for its owner name (orphans.ts, OWNER). */
export async function pidScope(): Promise<PidScope> {
  return ownerScope();
}

/**
 * Removes work directories whose imgmake process is gone (killed builds): a pid of this boot and
 * namespace that is not alive, or any directory of an earlier boot. One made in another pid
 * namespace of this boot is left alone: its process may be running, and this one cannot tell.
 */
async function removeOrphans(workDir: string, here: PidScope): Promise<void> {
  const root = join(workDir, '..');
  for (const name of await readdir(workDir)) {
    if (!ownerGone(name, here)) continue;
    const dir = join(workDir, name);
    // A commit or import killed between placing a layer and writing its entry: that layer
    // is no one's finished work (nothing vouches for it); it goes with the work dir.
    for (const note of await readdir(dir).catch(() => [] as string[])) {
      const key = NOTE.exec(note)?.[1];
      if (!key) continue;
      const vouched = (await cacache().get.info(root, ENTRY.tree(key))) ?? (await cacache().get.info(root, ENTRY.layer(key as CacheKey)));
      if (!vouched) await rename(join(root, 'layers', key), join(dir, `uncommitted-${key}`)).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** The note in a work dir that its process is placing layer KEY: an empty file `committing.<key>`. */
const noteOf = (dir: string, key: string): string => join(dir, `committing.${key}`);
const NOTE = /^committing\.([0-9a-f]{64})$/;

/**
 * Whether the process that made `<pid>-<boot>.<pidns>-…` (a work dir, a lease) is gone: a pid of
 * this boot and namespace that is not alive, or anything of an earlier boot. One of another pid
 * namespace of this boot counts as alive: this process cannot tell.
 */
export function ownerGone(name: string, here: PidScope): boolean {
  const [pidText, where, rand] = name.split('-');
  if (rand !== undefined && where !== `${here.boot}.${here.ns}`) return where?.split('.')[0] !== here.boot;
  const pid = Number(pidText);
  return !(Number.isInteger(pid) && pid > 0 && isAlive(pid));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
