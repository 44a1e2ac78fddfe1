/**
 * The remote cache, wired into a build: read-through at plan time, write-through after each
 * commit. A remote only ever saves work; it never fails a build.
 *
 *     lookup(keys)        plan: which of these keys the remote has (parallel, bounded, memoized)
 *     download(stage)     the layers of that tree this cache lacks, each verified, unpacked in
 *                         the cache's work dir, renamed into layers/; then the tree's entry.
 *                         Only when the entry's layers are exactly the chain this graph
 *                         computes for the stage (its key, its parent's, …): an entry cannot
 *                         fill another node's key. All or nothing.
 *     downloadPlanned(plan, again) downloads every `remote` node of a plan and plans again (a node whose
 *                         download failed is then built, and its ancestors looked up anew)
 *     upload(node, tree)  in the background: each layer's blob unless the remote has it
 *                         (HEAD first), then the node's entry
 *     seed(found)         in the background: the trees the build found locally that the
 *                         remote lacks, uploaded (a warm local cache seeds an empty remote)
 *     drain(ms)           at the end of a build: wait for pending uploads, at most `ms`
 *
 * A remote that does not answer (refused, timed out) or refuses the credentials costs one
 * warning; it is not asked again in this process for a minute (a watch's next rebuilds skip it).
 * Any other failure (an HTTP error, a corrupt or truncated blob, an entry for another chain, a
 * blob that unpacks to more than its entry declares, a full disk here) is a warning naming the
 * node and why, and that node is built instead.
 *
 * Which remote a build has, if any, is config.ts's (`remoteConfig`, re-exported here); this module
 * is imported only when there is one (engine/defaults.ts, openEngine).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Event, Logger } from '../event.js';
import type { CacheKey, NodeId } from '../ids.js';
import type { Plan, PlannedStage } from '../plan.js';
import type { Store, TreeRecord } from '../store/types.js';
import { packLayer, reseal, unpackLayer, type PackedBlob } from './blob.js';
import { HttpRemote } from './http.js';
import { OciRemote } from './oci.js';
import type { RemoteConfig } from './config.js';
import { inParallel } from '../net/download.js';
import { ENTRY, readMemo, writeMemo } from '../store/entries.js';
export { remoteConfig, type RemoteConfig } from './config.js';
import { ENTRY_SCHEMA, isBounded, RemoteError, type RemoteEntry, type RemoteLayer, type RemoteStore } from './types.js';

export function openRemote(config: RemoteConfig, store: Store): RemoteCache {
  const auth = config.authorization ? { authorization: config.authorization } : {};
  const transport: RemoteStore = config.oci ? new OciRemote({ ...config.oci, ...auth, readOnly: config.readOnly }) : new HttpRemote({ url: config.url, ...auth });
  return new RemoteCache({ transport, store, readOnly: config.readOnly });
}

/** Lookups and downloads in flight at once. */
const CONCURRENCY = 8;
/** How long the end of a build waits for pending uploads. */
export const UPLOAD_WAIT_MS = 120_000;

export class RemoteCache {
  readonly readOnly: boolean;
  private readonly transport: RemoteStore;
  private readonly store: Store;
  private logger: Logger = { log: () => undefined };
  private readonly entries = new Map<CacheKey, Promise<RemoteEntry | undefined>>();
  /** Keys whose download failed: built instead, not offered again. */
  private readonly rejected = new Set<CacheKey>();
  /** Why the remote counts as down for the rest of this process. */
  private down: string | undefined;
  private readonly uploads = new Set<Promise<void>>();
  /** A layer's blob, once on the remote in this process (many trees share a layer). */
  private readonly blobs = new Map<CacheKey, Promise<PackedBlob & { sent: number }>>();
  /** Downloads in flight, by each layer they write. */
  private readonly downloading = new Map<CacheKey, Promise<TreeRecord | undefined>>();
  /** Trees this process uploads (or has): not offered again. */
  private readonly sent = new Set<CacheKey>();
  /** Blobs that failed verification on download: uploaded again even though HEAD finds them. */
  private readonly suspect = new Set<string>();

  constructor(o: { transport: RemoteStore; store: Store; readOnly: boolean }) {
    this.transport = o.transport;
    this.store = o.store;
    this.readOnly = o.readOnly;
    const d = unusable.get(this.transport.url);
    if (d && performance.now() - d.at < ASK_AGAIN_AFTER_MS) this.down = d.why;
  }

  get url(): string {
    return this.transport.url;
  }

  /** Where warnings and download/upload events go. */
  attach(logger: Logger): void {
    this.logger = logger;
    if (this.down) {
      const ago = Math.round((performance.now() - unusable.get(this.url)!.at) / 1000);
      this.emit({ type: 'remote-skipped', url: this.url, agoS: ago, cause: this.down, retryS: ASK_AGAIN_AFTER_MS / 1000 });
    }
  }

  /** Which of `keys` the remote holds (and this process has not rejected). */
  async lookup(keys: CacheKey[]): Promise<Set<CacheKey>> {
    const found = new Set<CacheKey>();
    await inParallel(keys, CONCURRENCY, async (key) => {
      if (this.rejected.has(key)) return;
      if (await this.entry(key)) found.add(key);
    });
    return found;
  }

  private entry(key: CacheKey): Promise<RemoteEntry | undefined> {
    let e = this.entries.get(key);
    if (!e) {
      e = this.down ? Promise.resolve(undefined) : this.transport.getEntry(key).catch((err: unknown) => this.failed(err, `looking up ${key} on the remote failed: ${(err as Error).message}`));
      this.entries.set(key, e);
    }
    return e;
  }

  /**
   * The tree of `stage` from the remote into the store, or undefined (a warning says why).
   * `stage.chain` is what this graph computes for it: its key, its parent's, and so on.
   */
  async download(stage: Pick<PlannedStage, 'id' | 'key' | 'chain'>): Promise<TreeRecord | undefined> {
    const { id: node, key } = stage;
    const entry = await this.entry(key);
    if (!entry || this.rejected.has(key)) return undefined;
    const refused = refusal(entry, stage.chain);
    if (refused) {
      this.rejected.add(key);
      this.warn('remote-failed', `${node}: its tree on the remote was not used (${refused}); building it instead`, node);
      return undefined;
    }
    // Two trees that share a layer (the package stage under both) download it once: the second
    // waits for the first, then finds the layer in place.
    for (;;) {
      const busy = entry.layers.map((l) => this.downloading.get(l.key)).filter((p) => p !== undefined);
      if (busy.length === 0) break;
      await Promise.allSettled(busy);
    }
    const p = this.claimed(key, () => this.fetchTree(node, entry));
    for (const l of entry.layers) this.downloading.set(l.key, p);
    try {
      return await p;
    } finally {
      for (const l of entry.layers) if (this.downloading.get(l.key) === p) this.downloading.delete(l.key);
    }
  }

  /**
   * Under the key's claim (the one a build takes to make it): two builds on one cache that both
   * want this tree download it once; the second then finds it in the store.
   */
  private async claimed(key: CacheKey, fetch: () => Promise<TreeRecord | undefined>): Promise<TreeRecord | undefined> {
    const held = await this.store.claim(key);
    if (!held) return undefined;
    try {
      return (await this.store.get(key)) ?? (await fetch());
    } finally {
      await held.release();
    }
  }

  private async fetchTree(node: NodeId, entry: RemoteEntry): Promise<TreeRecord | undefined> {
    const key = entry.record.key;
    const t0 = performance.now();
    let layers = 0;
    let bytes = 0;
    const total = entry.layers.reduce((n, l) => n + l.size, 0);
    const progress = (state: 'running' | 'done'): void =>
      this.emit({ type: 'progress', task: 'download', subject: node, state, unit: 'bytes', done: bytes, total });
    progress('running');
    try {
      // Here, it is as new as its download: export copies it out even if an older tree of this key was exported.
      const digests = new Map(entry.layers.flatMap((l) => (l.digest ? [[l.key, l.digest] as const] : [])));
      const rec = await this.store.importTree(
        { ...entry.record, createdAt: new Date().toISOString() },
        async (layer, dir) => {
          const blob = entry.layers.find((l) => l.key === layer)!;
          const file = `${dir}.tar.zst`;
          try {
            await this.transport.getBlob(blob, file).catch((e: unknown) => {
              // A corrupt or truncated blob: the next upload of that layer replaces it.
              if (e instanceof RemoteError && !e.unusable) this.suspect.add(blob.sha256);
              throw e;
            });
            // At most what the entry declares (refusal() made sure it declares it).
            await unpackLayer(file, dir, blob.unpacked ?? 0).catch((e: Error) => {
              throw new Error(`blob ${blob.sha256} of layer ${layer.slice(0, 12)}: ${e.message}`);
            });
          } finally {
            // Partial or whole, the blob goes (its work dir would take it too, later).
            await rm(file, { force: true });
          }
          await this.remember(layer, { sha256: blob.sha256, size: blob.size, unpacked: blob.unpacked ?? 0 });
          layers++;
          bytes += blob.size;
          progress('running');
        },
        { digests },
      );
      await this.markSeen(key);
      this.emit({ type: 'download', node, key, layers, bytes, ms: Math.round(performance.now() - t0) });
      return rec;
    } catch (e) {
      progress('done');
      this.rejected.add(key);
      this.failed(e, `${node}: its tree on the remote was not used (${(e as Error).message}); building it instead`, node);
      return undefined;
    }
  }

  /**
   * Downloads every node the plan takes from the remote, then plans again with `again`: the
   * downloaded nodes are then cached, and a node whose download failed is to run (its
   * ancestors looked up in turn). Repeats until the plan has no `remote` node left; each round
   * downloads or rejects at least one, so it ends.
   */
  async downloadPlanned(p: Plan, again: () => Promise<Plan>): Promise<Plan> {
    for (;;) {
      const wanted = p.stages.filter((s) => s.status === 'remote');
      if (wanted.length === 0) return p;
      await inParallel(wanted, CONCURRENCY, async (s) => {
        if (!(await this.download(s))) this.rejected.add(s.key);
      });
      p = await again();
    }
  }

  /**
   * Trees this build found in the local cache, which it therefore never uploads: each one the
   * remote lacks is uploaded, in the background. So a warm local cache (restored by a CI's own
   * cache, or built before the remote existed) seeds an empty remote. What the remote was seen
   * to hold is remembered in the cache for a day (`remote-seen:<url>:<key>`), so a no-op build
   * asks nothing.
   */
  seed(found: Map<NodeId, TreeRecord>): void {
    if (this.readOnly || this.down || found.size === 0) return;
    const p: Promise<void> = inParallel([...found], CONCURRENCY, async ([node, tree]) => {
      if (this.down || this.sent.has(tree.key) || (await this.seen(tree.key))) return;
      const there = await this.entry(tree.key);
      // An entry of an older imgmake (no unpacked sizes) is refused by downloads: replace it.
      if (there && isBounded(there)) await this.markSeen(tree.key);
      else if (!this.down) this.upload(node, tree);
    })
      .catch((e: unknown) => void this.failed(e, `looking up this cache's trees on the remote failed: ${(e as Error).message}`))
      .finally(() => this.uploads.delete(p));
    this.uploads.add(p);
  }

  /** True when this cache saw `key` on this remote in the last day. */
  private async seen(key: CacheKey): Promise<boolean> {
    const memo = await readMemo(this.store.root, ENTRY.remoteSeen(this.url, key));
    return memo !== undefined && Date.now() - memo.time < SEEN_FOR_MS;
  }

  private async markSeen(key: CacheKey): Promise<void> {
    await writeMemo(this.store.root, ENTRY.remoteSeen(this.url, key), {}).catch(() => undefined);
  }

  /** Uploads a committed tree in the background (nothing in read-only mode). */
  upload(node: NodeId, tree: TreeRecord): void {
    if (this.readOnly || this.down || this.sent.has(tree.key)) return;
    this.sent.add(tree.key);
    const t0 = performance.now();
    const p: Promise<void> = (async () => {
      const layers: RemoteLayer[] = [];
      let blobs = 0;
      let bytes = 0;
      const progress = (state: 'running' | 'done'): void =>
        this.emit({ type: 'progress', task: 'upload', subject: node, state, unit: 'items', done: layers.length, total: tree.layers.length });
      for (const key of tree.layers) {
        progress('running');
        const b = await this.layerBlob(key);
        // Its manifest digest, so the downloader's `cache verify` can check each layer.
        const digest = await this.store.layerDigest(key);
        layers.push({ key, sha256: b.sha256, size: b.size, unpacked: b.unpacked, ...(digest ? { digest } : {}) });
        if (b.sent) blobs++;
        bytes += b.sent;
      }
      // With its layer digest (computed after the commit, meanwhile), so the downloader's
      // `cache verify` can check the tree too.
      const record = (await this.store.digested(tree.key)) ?? tree;
      await this.transport.putEntry({ schema: ENTRY_SCHEMA, record, layers });
      await this.markSeen(tree.key);
      this.emit({ type: 'upload', node, key: tree.key, blobs, bytes, ms: Math.round(performance.now() - t0) });
    })()
      .catch((e: unknown) => {
        this.emit({ type: 'progress', task: 'upload', subject: node, state: 'done' });
        this.failed(e, `${node}: upload to the remote failed: ${(e as Error).message}`, node);
      })
      .finally(() => this.uploads.delete(p));
    this.uploads.add(p);
  }

  /** Waits for pending uploads, at most `ms`; then warns about those still running. */
  async drain(ms = UPLOAD_WAIT_MS): Promise<void> {
    const deadline = performance.now() + ms;
    // Seeding starts uploads of its own while it runs: wait until none is left.
    while (this.uploads.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.uploads]).then(() => false),
        new Promise<boolean>((ok) => (timer = setTimeout(() => ok(true), Math.max(0, deadline - performance.now())))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.warn('remote-failed', `${this.uploads.size} upload${this.uploads.size === 1 ? '' : 's'} to ${this.url} still running after ${ms / 1000} s: left unfinished`);
        return;
      }
    }
  }

  /** The blob of one layer, on the remote: known and there (HEAD), or packed and uploaded. */
  private layerBlob(key: CacheKey): Promise<PackedBlob & { sent: number }> {
    const had = this.blobs.get(key);
    // Another tree's upload has (or is) sending it: what it sent is counted there.
    if (had) return had.then((b) => ({ ...b, sent: 0 }));
    const b = this.ensureBlob(key);
    b.catch(() => this.blobs.delete(key));
    this.blobs.set(key, b);
    return b;
  }

  private async ensureBlob(key: CacheKey): Promise<PackedBlob & { sent: number }> {
    const known = await this.known(key);
    if (known && (await this.onRemote(known))) return { ...known, sent: 0 };
    // The blob is made in a scratch folder of the cache: removed with it, or by the next open after a crash.
    const scratch = await this.store.scratch();
    try {
      const file = join(scratch.dir, 'layer.tar.zst');
      let blob = await packLayer(this.store.layerPath(key), file);
      // Its blob is corrupt on the remote, which may keep that one whatever we send: send the same layer under another digest.
      if (this.suspect.has(blob.sha256)) blob = { ...(await reseal(file, `imgmake-reupload ${new Date().toISOString()}`)), unpacked: blob.unpacked };
      await this.remember(key, blob);
      if (await this.onRemote(blob)) return { ...blob, sent: 0 };
      await this.transport.putBlob(blob, file);
      return { ...blob, sent: blob.size };
    } finally {
      await scratch.release();
    }
  }

  private async onRemote(blob: PackedBlob): Promise<boolean> {
    return !this.suspect.has(blob.sha256) && (await this.transport.hasBlob(blob));
  }

  /** The blob digest of a layer packed or downloaded before (a memo in the cache; one without its unpacked size is packed again). */
  private async known(key: CacheKey): Promise<PackedBlob | undefined> {
    const d = (await readMemo<Partial<PackedBlob>>(this.store.root, ENTRY.remoteBlob(key)))?.value;
    return d?.sha256 && d.size !== undefined && d.unpacked !== undefined ? (d as PackedBlob) : undefined;
  }

  private async remember(key: CacheKey, blob: PackedBlob): Promise<void> {
    const d = { sha256: blob.sha256, size: blob.size, unpacked: blob.unpacked };
    await writeMemo(this.store.root, ENTRY.remoteBlob(key), d);
  }

  /** Turns a failure into a warning (or, when the remote cannot be used at all, marks it down: one warning in all). */
  private failed(e: unknown, message: string, node?: NodeId): undefined {
    if (e instanceof RemoteError && e.unusable) {
      if (!this.down) {
        this.down = e.message;
        unusable.set(this.url, { at: performance.now(), why: e.message });
        this.warn('remote-unusable', `the remote cache ${this.url} cannot be used (${e.message}): continuing without it`);
      }
      return undefined;
    }
    this.warn('remote-failed', message, node);
    return undefined;
  }

  private warn(reason: Extract<Event, { type: 'warning' }>['reason'], message: string, node?: NodeId): void {
    this.emit({ type: 'warning', reason, message, ...(node ? { node } : {}) });
  }

  private emit(e: Event): void {
    this.logger.log(e);
  }
}

/**
 * Remotes this process found unusable, and when. A watch makes a new RemoteCache per rebuild;
 * without this, a remote that is down would cost its timeout again on every save.
 */
const unusable = new Map<string, { at: number; why: string }>();
const ASK_AGAIN_AFTER_MS = 60_000;

/** How long a tree seen on a remote is taken to be still there (an expired remote is seeded again after that). */
const SEEN_FOR_MS = 24 * 3600_000;

/**
 * Why an entry fetched for a stage may not be installed, or undefined when it may: its layers
 * must be exactly the chain this graph computes for the stage (so it cannot fill any other
 * key), and each must declare what it unpacks to (so that is bounded).
 */
function refusal(entry: RemoteEntry, chain: readonly CacheKey[]): string | undefined {
  const layers = entry.record.layers;
  if (layers.length !== chain.length || layers.some((l, i) => l !== chain[i])) {
    const foreign = layers.filter((l) => !chain.includes(l));
    const short = (ks: readonly string[]) => ks.map((k) => k.slice(0, 12)).join(', ');
    return `its entry's layers [${short(layers)}] are not the chain this definition computes for it [${short(chain)}]${foreign.length ? `: ${foreign.length} layer${foreign.length === 1 ? '' : 's'} of other keys` : ''}; nothing of it was kept`;
  }
  if (!isBounded(entry)) return 'its entry, written by an older imgmake, does not declare what its layers unpack to; the upload of this build replaces it';
  return undefined;
}

