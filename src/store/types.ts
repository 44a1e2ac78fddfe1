/**
 * The Store holds committed trees under their CacheKeys. A tree is a stack of layers (the
 * containers' model): each stage's layer is the overlayfs upper directory it wrote, holding
 * only what that stage changed (whiteouts for deletions). A committed tree is never modified;
 * a stage gets a writable overlay whose lower layers are its parent's stack.
 *
 * Life of a writable tree:
 *
 *     begin(parent) ──► open ──commit(key)──► committed (layers/<key>, index entry)
 *                        │
 *                        └──discard()──► gone
 *
 * A kill -9 anywhere leaves at worst an orphaned `work/<pid>-…` directory, removed by the next
 * `open` of the store once its pid is gone; an index entry is written only after its layer
 * directory is complete and in place, so an entry never names a partial tree.
 */
import type { CacheKey, NodeId } from '../ids.js';
import type { Held } from './lock.js';
import type { TreeMount } from '../sandbox/spec.js';

export interface TreeRecord {
  key: CacheKey;
  /** The node that built it, e.g. `rootfs.hostname` (informational: keys are what match). */
  node: NodeId;
  /** Layers of this tree, its own first, then its ancestors' (its parent's `layers`). */
  layers: CacheKey[];
  /** When it was committed (ISO 8601) and how long the stage ran. */
  createdAt: string;
  ms: number;
  /** Bytes of its own layer (as `du` counts: allocated blocks, sparse files cost their data). */
  bytes: number;
  /**
   * `sha256:<hex>` over its own layer's manifest (paths, types, modes, owners, contents, symlink
   * targets, xattrs; see digest.ts): what `imgmake cache verify` recomputes. Written into the
   * entry shortly after the commit (local.ts); absent until then, for layers committed before
   * it existed, and when the process ended first: verify cannot check those.
   */
  digest?: string;
}

/** A tree being written by one stage. */
export interface WorkTree {
  /** The private directory of this run: `work/<pid>-<boot>.<pidns>-<random>/` (see local.ts). */
  dir: string;
  /** How the tree is mounted read-write for the stage (the sandbox mounts it). */
  mount: TreeMount;
  /** The layer directory the stage's changes land in. */
  upper: string;
  parent?: TreeRecord;
  /** A scratch directory for this run (rule files, logs, input mountpoints). */
  scratch: string;
}

/** What `plan` compares against: the newest build of a node (by NodeId and definition). */
export interface NodeHistory {
  key: CacheKey;
  /** Per-field digests of the key object (see key.ts). */
  fields: Record<string, string>;
  at: string;
}

export interface Store {
  readonly root: string;
  /**
   * The committed tree under this key, if any. Reads one index entry; never a tree, except to
   * make the squash a tree deeper than overlayfs can stack is mounted over, when it is missing
   * (squash.ts: once per 48 stages, normally at commit).
   */
  get(key: CacheKey): Promise<TreeRecord | undefined>;
  /** A read-only view of a committed tree, for inputs, buildroots and exports. */
  readMount(rec: TreeRecord, mountpoint: string): TreeMount;
  /** A fresh writable tree on top of `parent` (empty when undefined). */
  begin(parent: TreeRecord | undefined): Promise<WorkTree>;
  /** The directory of one committed layer (read it only: trees share it). */
  layerPath(key: CacheKey): string;
  /**
   * A private scratch folder inside the cache (on its filesystem: a rename into it is atomic),
   * removed by `release`, or by the next open of the cache after a crash.
   */
  scratch(): Promise<{ dir: string; release(): Promise<void> }>;
  /**
   * Makes the work tree's layer the committed tree `key`. Atomic: either the entry and its
   * layer are there afterwards, or nothing is. If another build committed `key` first, theirs
   * is kept and ours discarded (same key, same tree) once their layer matches their record's
   * digest; a layer under `key` without such a record is never adopted: ours replaces it, as
   * with `replace` (a stage re-run on purpose, `build --from`).
   */
  commit(w: WorkTree, rec: { key: CacheKey; node: NodeId; ms: number; replace?: boolean }): Promise<TreeRecord>;
  discard(w: WorkTree): Promise<void>;
  /**
   * Claims the right to build `key`: while another live process (another build on this cache)
   * holds the claim, waits (`onWait` is told once). Undefined when `signal` aborts the wait.
   */
  claim(key: CacheKey, o?: { signal?: AbortSignal | undefined; onWait?: (holder: string) => void }): Promise<Held | undefined>;
  /**
   * Adds a tree built elsewhere (a remote cache) under `rec.key`: each of `rec.layers` that no
   * record here vouches for is written by `fill` into an empty directory inside the cache, then
   * renamed into `layers/` (atomic, as in a commit); the layers below the tree's own get a layer
   * record (with their digest from `digests`, when known), and the tree's entry is written last.
   * All or nothing: if `fill` throws, the layers this import put in place are removed again
   * and no entry is written. The caller has checked that `rec.layers` is the key's chain.
   */
  importTree(rec: TreeRecord, fill: (layer: CacheKey, dir: string) => Promise<void>, o?: { digests?: ReadonlyMap<CacheKey, string> }): Promise<TreeRecord>;
  /**
   * The manifest digest a record of this cache gives for layer `key`: its own tree's (waited
   * for while this process computes it), else the layer record of the import that brought it.
   */
  layerDigest(key: CacheKey): Promise<string | undefined>;
  /**
   * Keeps a stage's log under its key (a file's path, or the log's bytes: a failed stage's log
   * is read before its work dir is removed, and stored after, when a full disk has room again);
   * returns the path of the stored copy.
   */
  putLog(key: CacheKey, log: string | Uint8Array): Promise<string>;
  /** Path of the stored log of the newest run of `key`, if any. */
  logPath(key: CacheKey): Promise<string | undefined>;
  getHistory(scope: string, node: NodeId): Promise<NodeHistory | undefined>;
  putHistory(scope: string, node: NodeId, h: NodeHistory): Promise<void>;
  info(): Promise<{ root: string; trees: number; bytes: number; logs: number }>;
  /** The tree `key` once its layer digest (being computed after its commit) is in its entry. */
  digested(key: CacheKey): Promise<TreeRecord | undefined>;
  /** Waits for what commits left running: the layer digests written into their entries. */
  flush(): Promise<void>;
}
