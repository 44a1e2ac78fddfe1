/**
 * A remote cache, as two stores the way build tools share them (Bazel's HTTP remote cache):
 *
 *     action cache (AC)       CacheKey → RemoteEntry (JSON: the tree record and its layers' blobs)
 *     content store (CAS)     sha256 → blob (one layer: tar | zstd, see blob.ts)
 *
 * `RemoteStore` is the transport: http.ts speaks `GET/PUT/HEAD {URL}/ac/<key>` and
 * `{URL}/cas/<sha256>`; oci.ts makes the same five calls to a registry (an entry as a
 * manifest tagged with the key, a blob as a registry blob). What to fetch, when to upload and
 * how a failure becomes a warning is index.ts's business, not the transport's.
 *
 * Every call may throw a `RemoteError`; none retries on its own.
 */
import type { CacheKey } from '../ids.js';
import type { TreeRecord } from '../store/types.js';
import type { BlobDigest } from './blob.js';

/** The schema tag of an AC entry; bumped when its meaning or the blob format changes. */
export const ENTRY_SCHEMA = 'imgmake.remote.v1';

/**
 * One layer of a remote tree: the layer's key (the key of the node that wrote it), its blob,
 * the length of the tar stream the blob decompresses to (`unpacked`: unpacking stops past it)
 * and the layer's manifest digest (`digest`, as in a tree record: what `cache verify` checks
 * the unpacked layer against) when the uploader knew it. Entries written before `unpacked`
 * existed lack both: a download refuses them (nothing bounds what they unpack to), and the
 * next upload of that key replaces them.
 */
export interface RemoteLayer extends BlobDigest {
  key: CacheKey;
  unpacked?: number;
  digest?: string;
}

/**
 * What the AC holds under a node's key. `layers` are the record's layers in the same order
 * (own first, then its ancestors'), each with the digest of its blob, e.g.
 * `{ schema: 'imgmake.remote.v1', record: { key: 'ab…', node: 'rootfs.motd', layers: ['ab…', '12…'], … },
 *    layers: [{ key: 'ab…', sha256: '9f…', size: 1234, unpacked: 10240, digest: 'sha256:…' }, { key: '12…', … }] }`.
 * A downloader installs it only when `record.layers` is exactly the chain its own graph
 * computes for the key (index.ts): an entry cannot fill any other key.
 */
export interface RemoteEntry {
  schema: typeof ENTRY_SCHEMA;
  record: TreeRecord;
  layers: RemoteLayer[];
}

export interface RemoteStore {
  /** Where it is, for messages (never with credentials). */
  readonly url: string;
  /** The entry under `key`, or undefined when the remote has none. */
  getEntry(key: CacheKey): Promise<RemoteEntry | undefined>;
  putEntry(entry: RemoteEntry): Promise<void>;
  /** True when the remote holds the blob with this size. */
  hasBlob(blob: BlobDigest): Promise<boolean>;
  /**
   * Downloads a blob into `file`, checking its size and sha256 while it streams; throws (and
   * leaves `file` to the caller to remove) on any mismatch or cut.
   */
  getBlob(blob: BlobDigest, file: string): Promise<void>;
  putBlob(blob: BlobDigest, file: string): Promise<void>;
}

/**
 * A failed remote call. `unusable`: the remote did not answer (refused, timed out, reset) or
 * refused the credentials (401, 403) — the caller stops asking it for the rest of the build; otherwise one request failed (an HTTP
 * error, a corrupt blob) and others may still work.
 */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly unusable: boolean,
  ) {
    super(message);
  }
}

/**
 * A failure on this machine while a remote call wrote a download (the disk is full, an I/O
 * error): not the remote's fault, so its blob is not suspected. Names the path and the cause.
 * (net/download.ts's, which every download shares.)
 */
export { LocalWriteError } from '../net/download.js';

/** Checks that parsed JSON is an entry for `key` whose layers match its record's. */
export function isEntryFor(x: unknown, key: CacheKey): x is RemoteEntry {
  const e = x as RemoteEntry;
  const hex = (s: unknown, n: number) => typeof s === 'string' && new RegExp(`^[0-9a-f]{${n}}$`).test(s);
  return (
    typeof e === 'object' &&
    e !== null &&
    e.schema === ENTRY_SCHEMA &&
    typeof e.record === 'object' &&
    e.record !== null &&
    e.record.key === key &&
    Array.isArray(e.record.layers) &&
    Array.isArray(e.layers) &&
    e.layers.length === e.record.layers.length &&
    e.layers.every(
      (l, i) =>
        l.key === e.record.layers[i] &&
        hex(l.key, 64) &&
        hex(l.sha256, 64) &&
        Number.isSafeInteger(l.size) &&
        l.size >= 0 &&
        (l.unpacked === undefined || (Number.isSafeInteger(l.unpacked) && l.unpacked >= 0)) &&
        (l.digest === undefined || (typeof l.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(l.digest))),
    )
  );
}

/** True when every layer of the entry declares its unpacked size (entries of older imgmakes do not). */
export function isBounded(e: RemoteEntry): e is RemoteEntry & { layers: (RemoteLayer & { unpacked: number })[] } {
  return e.layers.every((l) => l.unpacked !== undefined);
}
