/**
 * Garbage collection of the local cache: what it holds (`inventory`), removing least recently
 * used trees and .debs down to a size (`collect`), keeping only what named targets need
 * (`prune`), and dropping what no longer matches its digest (`verify`).
 *
 *     CACHE/
 *       used/<key>, used/deb-<sha256>   empty files whose mtime is the last use (a build touches
 *                                       those of every tree and .deb it needs, when it starts)
 *       leases/<pid>-<boot>.<pidns>-<rand>
 *                                       one running build: the keys and .debs it may read or
 *                                       commit (JSON); removed when it ends, ignored once its
 *                                       pid is gone (judged like work dirs, local.ts)
 *       gc.lock -> <pid>-<boot>.<pidns>-<rand>
 *                                       a symlink held while a collection removes anything
 *       gc.op                           which command holds it (cache-gc, cache-verify, …), so
 *                                       a build that waits can say what for
 *       trash/<rand>/                   a layer on its way out (renamed out of layers/ first)
 *
 * Why a build and a collection never hurt each other: a build writes its lease (renamed into
 * place), *then* waits while gc.lock is held, then plans. A collection takes gc.lock, *then*
 * reads the leases, then removes. Either the collection read the lease (and skips every key in
 * it), or the lease appeared after the lock was taken and the build waits until the collection
 * is done before it looks anything up. Every layer of a tree a build needs is the key of a
 * node it needs, so the lease names them all before a single lookup.
 *
 * Removal order keeps the index honest: a tree's entries (tree:, log:, history:) go first, then
 * its layer leaves layers/ by one rename. A kill -9 in between leaves a layer without an entry,
 * which the next collection removes (or the next commit of that key replaces). Removing a layer
 * removes every tree stacked on it: such a tree cannot be mounted any more.
 *
 * This module does not load definitions: prune gets the keys and .debs to keep.
 */
import { artifactOfEntry, cacache, ENTRY, entryKind } from './entries.js';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EntryInfo } from 'cacache';
import type { CacheKey } from '../ids.js';
import { sha256File } from '../hash.js';
import { layerManifest } from './digest.js';
import { diskUsage, ownerGone, pidScope, type LayerRecord } from './local.js';
import { takeLock } from './lock.js';
import { ownedName } from './orphans.js';
import { dropSquash, dropSquashes, verifySquashes } from './squash.js';
import type { TreeRecord } from './types.js';

/** What a running build may read or commit: the keys of every node it needs, and their .debs. */
export interface LeaseUse {
  keys: readonly CacheKey[];
  debs: readonly string[];
}

export interface Lease {
  /** Removes the lease: what it named may be collected again. */
  release(): Promise<void>;
  /** The same, synchronously (for process exit). */
  releaseSync(): void;
  readonly use: LeaseUse;
}

/**
 * Registers a build's use of the cache, marks everything in it used now, and returns once no
 * collection is removing anything: from then on nothing in `use` is removed until `release`.
 */
export async function takeLease(root: string, use: LeaseUse, o: { onWait?: (holder: { op: GcOperation; pid: number }) => void } = {}): Promise<Lease> {
  const name = ownedName();
  const dir = join(root, 'leases');
  // Synchronous, like touch: small writes that a round trip to libuv's pool each would only slow
  // (every build takes a lease, a no-op too).
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${name}`);
  writeFileSync(tmp, JSON.stringify({ keys: use.keys, debs: use.debs }));
  renameSync(tmp, join(dir, name));
  // Only now: a collection that took the lock before the rename did not see the lease.
  await waitForCollection(root, o.onWait);
  touch(root, [...use.keys, ...use.debs.map(debMarker)]);
  return { use, release: () => rm(join(dir, name), { force: true }), releaseSync: () => rmSync(join(dir, name), { force: true }) };
}

/** The commands that take gc.lock: what a waiting build names. */
export type GcOperation = 'cache-gc' | 'cache-verify' | 'cache-prune' | 'clean';

async function waitForCollection(root: string, onWait?: (holder: { op: GcOperation; pid: number }) => void): Promise<void> {
  const here = await pidScope();
  let told = false;
  for (;;) {
    const owner = await readlink(join(root, 'gc.lock')).catch(() => undefined);
    if (owner === undefined || ownerGone(owner, here)) return;
    if (!told && onWait) {
      told = true;
      const op = (await readFile(join(root, 'gc.op'), 'utf8').catch(() => 'cache-gc')).trim() as GcOperation;
      onWait({ op, pid: Number(owner.split('-')[0]) });
    }
    await sleep(50);
  }
}

/**
 * Sets the last use of these markers (`used/NAME`) to now, creating the ones that are missing.
 * Synchronous: a no-op build touches a few hundred (each stage and each .deb), a few µs each,
 * where a promise each through libuv's pool cost a no-op ~5 ms (docs/bench.md).
 */
function touch(root: string, names: string[]): void {
  const dir = join(root, 'used');
  const now = new Date();
  let made = false;
  for (const n of names) {
    const p = join(dir, n);
    try {
      utimesSync(p, now, now);
    } catch {
      if (!made) mkdirSync(dir, { recursive: true });
      made = true;
      // Created, then set: a new file's own mtime is the moment of its write, and markers of
      // one build a millisecond apart would no longer count as used at the same moment (a
      // collection would take the bottom tree, and every tree above it, first).
      writeFileSync(p, '');
      utimesSync(p, now, now);
    }
  }
}

function debMarker(sha256: string): string {
  return `deb-${sha256}`;
}

/** Holds gc.lock while `f` runs (saying which command in gc.op); waits for another collection to finish first. */
async function withLock<T>(root: string, op: GcOperation, f: () => Promise<T>): Promise<T> {
  const held = (await takeLock(join(root, 'gc.lock')))!;
  try {
    await writeFile(join(root, 'gc.op'), op).catch(() => undefined);
    return await f();
  } finally {
    await rm(join(root, 'gc.op'), { force: true });
    await held.release();
  }
}

/** Keys and .debs named by the leases of live builds; leases of dead ones are removed. */
async function leased(root: string): Promise<{ keys: Set<string>; debs: Set<string> }> {
  const here = await pidScope();
  const dir = join(root, 'leases');
  const keys = new Set<string>();
  const debs = new Set<string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    if (ownerGone(name, here)) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    const use = JSON.parse(await readFile(join(dir, name), 'utf8').catch(() => '{}')) as Partial<LeaseUse>;
    for (const k of use.keys ?? []) keys.add(k);
    for (const d of use.debs ?? []) debs.add(d);
  }
  return { keys, debs };
}

// ─── What the cache holds ────────────────────────────────────────────────────────────────────

export interface TreeItem {
  rec: TreeRecord;
  /** Its own layer is on disk, and every layer below it. */
  complete: boolean;
  /** Last use (ms since the epoch): the `used/` marker, else when it was committed. */
  lastUse: number;
}

export interface DebItem {
  sha256: string;
  name?: string;
  version?: string;
  bytes: number;
  integrity: string;
  lastUse: number;
}

export interface Inventory {
  trees: Map<CacheKey, TreeItem>;
  debs: Map<string, DebItem>;
  /** Layers on disk that no tree entry describes (a commit killed before its entry). */
  strayLayers: CacheKey[];
  /** Every other index entry (logs, history), by index key. */
  entries: Map<string, EntryInfo>;
  /** Bytes: own layers (as committed) + cacache content (each blob once) + stray layers. */
  bytes: number;
}

export async function inventory(root: string): Promise<Inventory> {
  const all = await cacache().ls(root).catch(() => ({}) as Record<string, EntryInfo>);
  const onDisk = new Set(await readdir(join(root, 'layers')).catch(() => [] as string[]));
  const used = new Map<string, number>();
  for (const n of await readdir(join(root, 'used')).catch(() => [] as string[])) {
    const s = await stat(join(root, 'used', n)).catch(() => undefined);
    if (s) used.set(n, s.mtimeMs);
  }
  const trees = new Map<CacheKey, TreeItem>();
  const debs = new Map<string, DebItem>();
  const entries = new Map<string, EntryInfo>();
  const blobs = new Map<string, number>();
  for (const [k, e] of Object.entries(all)) {
    blobs.set(String(e.integrity), e.size);
    const kind = entryKind(k);
    if (kind === 'tree') {
      const rec = e.metadata as TreeRecord;
      trees.set(rec.key, { rec, complete: rec.layers.every((l) => onDisk.has(l)), lastUse: used.get(rec.key) ?? Date.parse(rec.createdAt) });
    } else if (kind === 'artifact') {
      const sha = artifactOfEntry(k)!;
      const m = (e.metadata ?? {}) as { name?: string; version?: string };
      debs.set(sha, { sha256: sha, ...(m.name ? { name: m.name } : {}), ...(m.version ? { version: m.version } : {}), bytes: e.size, integrity: String(e.integrity), lastUse: used.get(debMarker(sha)) ?? e.time });
    } else entries.set(k, e);
  }
  // A layer below an imported tree (a remote's) has no entry of its own, but is not stray.
  const named = new Set<string>();
  for (const t of trees.values()) for (const l of t.rec.layers) named.add(l);
  const strayLayers = [...onDisk].filter((l) => !named.has(l)) as CacheKey[];
  let bytes = 0;
  for (const t of trees.values()) if (onDisk.has(t.rec.key)) bytes += t.rec.bytes;
  for (const b of blobs.values()) bytes += b;
  for (const l of onDisk) if (!trees.has(l as CacheKey)) bytes += await diskUsage(join(root, 'layers', l));
  return { trees, debs, strayLayers, entries, bytes };
}

// ─── Removing ────────────────────────────────────────────────────────────────────────────────

export interface Removed {
  kind: 'tree' | 'deb' | 'layer';
  /** The node (trees), the package (debs). */
  name?: string;
  key: string;
  bytes: number;
}

export interface Report {
  before: number;
  after: number;
  removed: Removed[];
  /** What would have gone but a running build uses it. */
  skipped: number;
}

/** One pass of removals over one inventory, under gc.lock, skipping what live builds lease. */
class Collector {
  readonly removed: Removed[] = [];
  skipped = 0;
  /** Trees removed in this pass (the inventory still lists them). */
  readonly gone = new Set<string>();
  constructor(
    private readonly root: string,
    readonly inv: Inventory,
    readonly lease: { keys: Set<string>; debs: Set<string> },
    /** `cache gc --dry-run`: decide and report as usual, remove nothing. */
    readonly dry = false,
  ) {}

  /** The trees that stand on `key`'s layer, `key`'s own first; undefined when a build leases one. */
  private stack(key: CacheKey, keep?: Set<string>): TreeItem[] | undefined {
    const above = [...this.inv.trees.values()].filter((t) => !this.gone.has(t.rec.key) && t.rec.layers.includes(key));
    if (above.some((t) => this.lease.keys.has(t.rec.key) || keep?.has(t.rec.key))) {
      this.skipped++;
      return undefined;
    }
    return above.sort((a, b) => b.rec.layers.length - a.rec.layers.length);
  }

  /** Removes the tree `key` and every tree above it; returns the bytes freed (0 if leased). */
  async tree(key: CacheKey, keep?: Set<string>): Promise<number> {
    if (this.gone.has(key)) return 0;
    const stack = this.stack(key, keep);
    if (!stack) return 0;
    let freed = 0;
    for (const t of stack) {
      const k = t.rec.key;
      this.gone.add(k);
      if (this.dry) {
        if (await layerExists(this.root, k)) freed += t.rec.bytes;
        this.removed.push({ kind: 'tree', name: t.rec.node, key: k, bytes: t.rec.bytes });
        continue;
      }
      await this.dropEntry(ENTRY.tree(k));
      await this.dropEntry(ENTRY.log(k));
      for (const [ik, e] of this.inv.entries) {
        if (ik.startsWith('history:') && (e.metadata as { key?: string } | undefined)?.key === k) await this.dropEntry(ik);
      }
      if (await layerExists(this.root, k)) freed += t.rec.bytes;
      await this.dropEntry(ENTRY.layer(k));
      await this.dropLayer(k);
      await rm(join(this.root, 'used', k), { force: true });
      this.removed.push({ kind: 'tree', name: t.rec.node, key: k, bytes: t.rec.bytes });
    }
    return freed;
  }

  async deb(d: DebItem): Promise<number> {
    if (this.lease.debs.has(d.sha256)) {
      this.skipped++;
      return 0;
    }
    if (!this.dry) {
      await cacache().rm.entry(this.root, ENTRY.artifact(d.sha256), { removeFully: true });
      await cacache().rm.content(this.root, d.integrity).catch(() => undefined);
      await rm(join(this.root, 'used', debMarker(d.sha256)), { force: true });
    }
    this.removed.push({ kind: 'deb', ...(d.name ? { name: `${d.name} ${d.version ?? ''}`.trim() } : {}), key: d.sha256, bytes: d.bytes });
    return d.bytes;
  }

  /** Layers no entry describes, unless a running build is about to write that entry. */
  async strays(): Promise<number> {
    let freed = 0;
    for (const l of this.inv.strayLayers) {
      if (this.lease.keys.has(l)) continue;
      const bytes = await diskUsage(join(this.root, 'layers', l));
      if (!this.dry) {
        await this.dropEntry(ENTRY.layer(l));
        await this.dropLayer(l);
      }
      this.removed.push({ kind: 'layer', key: l, bytes });
      freed += bytes;
    }
    return freed;
  }

  /** Removes an index entry, and its content when no other entry names it. */
  async dropEntry(key: string): Promise<void> {
    const e = await cacache().get.info(this.root, key);
    if (!e) return;
    await cacache().rm.entry(this.root, key, { removeFully: true });
    this.inv.entries.delete(key);
    const integrity = String(e.integrity);
    const shared = [...this.inv.entries.values()].some((o) => String(o.integrity) === integrity);
    if (!shared) await cacache().rm.content(this.root, integrity).catch(() => undefined);
  }

  private async dropLayer(key: string): Promise<void> {
    // Named after this process: a collection killed half-way leaves it to the next build (orphans.ts).
    const trash = join(this.root, 'trash', ownedName());
    await mkdir(join(this.root, 'trash'), { recursive: true });
    // Its squash (squash.ts) first: one left without its layer would be swept anyway.
    await dropSquash(this.root, key);
    try {
      await rename(join(this.root, 'layers', key), trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await rm(trash, { recursive: true, force: true });
  }
}

async function layerExists(root: string, key: string): Promise<boolean> {
  return (await lstat(join(root, 'layers', key)).catch(() => undefined)) !== undefined;
}

async function collecting(root: string, op: GcOperation, f: (c: Collector) => Promise<void>, dry = false): Promise<Report> {
  return withLock(root, op, async () => {
    const inv = await inventory(root);
    const c = new Collector(root, inv, await leased(root), dry);
    if (dry) {
      // What the pass would remove, from one inventory: the stray layers that removing trees
      // would leave (lower layers of imported trees) are not counted.
      for (const t of inv.trees.values()) if (!t.complete) await c.tree(t.rec.key);
      await c.strays();
      await f(c);
      const freed = c.removed.reduce((n, x) => n + x.bytes, 0);
      return { before: inv.bytes, after: Math.max(0, inv.bytes - freed), removed: c.removed, skipped: c.skipped };
    }
    await rm(join(root, 'trash'), { recursive: true, force: true });
    // Entries whose layers are gone describe no tree: remove them before anything else.
    for (const t of inv.trees.values()) if (!t.complete) await c.tree(t.rec.key);
    await c.strays();
    await f(c);
    // Layers only the removed trees stood on (lower layers of imported trees) are stray now.
    const again = new Collector(root, await inventory(root), c.lease);
    await again.strays();
    c.removed.push(...again.removed);
    await sweepMarkers(root);
    return { before: inv.bytes, after: (await inventory(root)).bytes, removed: c.removed, skipped: c.skipped };
  });
}

/** Markers of trees and .debs that are no longer there. */
async function sweepMarkers(root: string): Promise<void> {
  const layers = new Set(await readdir(join(root, 'layers')).catch(() => [] as string[]));
  for (const n of await readdir(join(root, 'used')).catch(() => [] as string[])) {
    const keep = n.startsWith('deb-') ? await cacache().get.info(root, ENTRY.artifact(n.slice(4))) : layers.has(n);
    if (!keep) await rm(join(root, 'used', n), { force: true });
  }
  // Squashes whose layer is gone (a collection killed between the two).
  await dropSquashes(root);
  // Claims (src/store/lock.ts) whose builds were killed: anyone would break them anyway.
  const here = await pidScope();
  for (const n of await readdir(join(root, 'claims')).catch(() => [] as string[])) {
    const owner = await readlink(join(root, 'claims', n)).catch(() => undefined);
    if (owner !== undefined && ownerGone(owner, here)) await rm(join(root, 'claims', n), { force: true });
  }
}

/**
 * Removes least recently used trees and .debs until the cache holds at most `maxBytes`.
 * Trees used at the same moment go top of the stack first (a tree above before the one below).
 */
export async function collect(root: string, maxBytes: number, o: { dryRun?: boolean } = {}): Promise<Report> {
  return collecting(root, 'cache-gc', async (c) => {
    let total = (await inventory(root)).bytes;
    type Candidate = { at: number; depth: number; go: () => Promise<number> };
    const candidates: Candidate[] = [
      ...[...c.inv.trees.values()].filter((t) => t.complete).map((t) => ({ at: t.lastUse, depth: t.rec.layers.length, go: () => c.tree(t.rec.key) })),
      ...[...c.inv.debs.values()].map((d) => ({ at: d.lastUse, depth: 0, go: () => c.deb(d) })),
    ].sort((a, b) => a.at - b.at || b.depth - a.depth);
    for (const cand of candidates) {
      if (total <= maxBytes) break;
      total -= await cand.go();
    }
  }, o.dryRun);
}

/**
 * `imgmake clean --cache`: everything no running build leases goes (as `prune` keeping
 * nothing); then, under gc.lock and only if no live build holds a lease, what is left of the
 * cache folder. `busy` counts the live builds that kept it (their trees stay).
 */
export async function clearCache(root: string): Promise<{ report: Report; busy: number }> {
  const report = await prune(root, { keys: new Set(), debs: new Set() }, 'clean');
  const busy = await withLock(root, 'clean', async () => {
    const live = await readdir(join(root, 'leases')).catch(() => [] as string[]);
    const here = await pidScope();
    const n = live.filter((name) => !name.startsWith('.') && !ownerGone(name, here)).length;
    if (n > 0) return n;
    // --one-file-system: a mount a killed stage left under work/ is not walked into.
    for (const name of await readdir(root)) if (name !== 'gc.lock') await removeTree(join(root, name));
    return 0;
  });
  return { report, busy };
}

/** `rm -rf --one-file-system`: never crosses into a mount, never follows a symlink. */
export async function removeTree(path: string): Promise<void> {
  const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  await new Promise<void>((done, reject) =>
    execFile('rm', ['-rf', '--one-file-system', '--', path], (e, _o, stderr) => (e ? reject(new Error(`rm -rf ${path}: ${stderr.trim() || e.message}`)) : done())),
  );
}

/** Keeps the trees under `keys` (with all their layers) and the .debs in `debs`; removes the rest. */
export async function prune(root: string, keep: { keys: Set<string>; debs: Set<string> }, op: GcOperation = 'cache-prune'): Promise<Report> {
  return collecting(root, op, async (c) => {
    for (const t of c.inv.trees.values()) if (!keep.keys.has(t.rec.key)) await c.tree(t.rec.key, keep.keys);
    for (const d of c.inv.debs.values()) if (!keep.debs.has(d.sha256)) await c.deb(d);
    for (const k of [...c.inv.entries.keys()]) {
      const kind = entryKind(k);
      const key = kind === 'log' ? k.slice(k.indexOf(':') + 1) : kind === 'history' ? (c.inv.entries.get(k)!.metadata as { key?: string })?.key : undefined;
      if (key !== undefined && !keep.keys.has(key)) await c.dropEntry(k);
    }
  });
}

export interface VerifyReport extends Report {
  checked: { trees: number; debs: number; entries: number };
  /** Trees committed before layers had a digest: nothing to check them against. */
  unchecked: number;
  corrupt: { kind: 'tree' | 'layer' | 'deb' | 'entry' | 'squash'; name: string; key: string; why: string }[];
  /** Squashes re-digested (squash.ts). */
  squashes: number;
}

/**
 * Re-hashes every layer that has a digest, every .deb against its sha256 and every other index
 * entry against its integrity; removes what does not match (a corrupt layer with every tree
 * above it, so the next build runs those stages again).
 *
 * Every layer directory must be vouched for: by its own tree's record (a commit's, or the tree
 * an import brought), or, below an imported tree, by the layer record that import wrote (with
 * the digest its remote entry declared). A layer directory nothing vouches for — no record at
 * all, or named below a tree with no layer record (a layer planted by a remote before entries
 * were checked against the graph) — is reported and removed with every tree above it. Records
 * without a digest (committed by an older imgmake, or a process that ended first) are counted
 * as unchecked: nothing to check them against.
 */
export async function verify(root: string): Promise<VerifyReport> {
  const corrupt: VerifyReport['corrupt'] = [];
  const checked = { trees: 0, debs: 0, entries: 0 };
  let unchecked = 0;
  let squashes = 0;
  const r = await collecting(root, 'cache-verify', async (c) => {
    for (const t of c.inv.trees.values()) {
      const { key, digest, node } = t.rec;
      if (!t.complete || c.gone.has(key)) continue;
      if (!digest) {
        unchecked++;
        continue;
      }
      checked.trees++;
      const now = await layerManifest(join(root, 'layers', key)).catch((e: Error) => ({ digest: `unreadable: ${e.message}` }));
      const record = await cacache().get(root, ENTRY.tree(key)).then(() => undefined, (e: Error) => e.message);
      const why = now.digest !== digest ? `layer content does not match its digest` : record ? `tree record: ${record}` : undefined;
      if (why) {
        corrupt.push({ kind: 'tree', name: node, key, why });
        await c.tree(key);
      }
    }
    // Layers below imported trees: checked against the layer record their import wrote.
    const below = new Map<string, string>();
    for (const t of c.inv.trees.values()) {
      if (!t.complete) continue;
      for (const l of t.rec.layers) if (!c.inv.trees.has(l) && !below.has(l)) below.set(l, t.rec.node);
    }
    for (const [l, node] of below) {
      if (c.lease.keys.has(l) || ![...c.inv.trees.values()].some((t) => !c.gone.has(t.rec.key) && t.rec.layers.includes(l as CacheKey))) continue;
      const rec = c.inv.entries.get(ENTRY.layer(l))?.metadata as LayerRecord | undefined;
      let why: string | undefined;
      if (!rec) why = 'a layer below this tree that no record vouches for';
      else if (!rec.digest) {
        unchecked++;
        continue;
      } else {
        checked.trees++;
        const now = await layerManifest(join(root, 'layers', l)).catch((e: Error) => ({ digest: `unreadable: ${e.message}` }));
        if (now.digest !== rec.digest) why = 'a layer below this tree does not match the digest its entry declared';
      }
      if (why) {
        corrupt.push({ kind: 'layer', name: node, key: l, why });
        await c.tree(l as CacheKey);
      }
    }
    // Layers no record names at all (removed before this ran, as every collection does).
    for (const x of c.removed) if (x.kind === 'layer') corrupt.push({ kind: 'layer', name: '(none)', key: x.key, why: 'no record vouches for this layer' });
    for (const d of c.inv.debs.values()) {
      checked.debs++;
      const info = await cacache().get.info(root, ENTRY.artifact(d.sha256));
      const got = info ? await sha256File(info.path).catch(() => 'missing') : 'missing';
      if (got !== d.sha256) {
        corrupt.push({ kind: 'deb', name: d.name ?? d.sha256, key: d.sha256, why: got === 'missing' ? 'content missing' : `sha256 is ${got}` });
        await c.deb(d);
      }
    }
    // A squash that does not match its digest goes (it is made again from the layers).
    const sq = await verifySquashes(root);
    squashes = sq.checked;
    for (const s of sq.corrupt) corrupt.push({ kind: 'squash', name: s.key, key: s.key, why: s.why });
    for (const k of [...c.inv.entries.keys()]) {
      // Removed above along with what it described (a tree's squash entry).
      if (!(await cacache().get.info(root, k))) continue;
      checked.entries++;
      const bad = await cacache().get(root, k).then(() => undefined, (e: Error) => e.message);
      if (bad) {
        corrupt.push({ kind: 'entry', name: k, key: k, why: bad });
        await c.dropEntry(k);
      }
    }
  });
  return { ...r, checked, unchecked, corrupt, squashes };
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
