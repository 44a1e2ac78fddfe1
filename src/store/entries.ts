/**
 * The cache's index: every cacache key namespace imgmake writes, named once, and the accessors
 * for the entries that are not trees (package artifacts, the remote's memos); `cacache()`, the
 * library loaded on first use, and `findEntry`, its one lookup read without it. Only modules in
 * src/store/ call cacache; the package fetcher and the remote cache go through these functions,
 * so the layout of the cache is this folder's to change (test/layering.test.ts checks it).
 *
 *     tree:KEY                    a committed tree's record (store/local.ts)
 *     layer:KEY                   a layer kept without its tree (a squash's or a download's)
 *     log:KEY                     a stage's log
 *     history:SCOPE:NODE          the newest build of a node, for plan's reasons
 *     squash:KEY                  a squashed image of a tree (store/squash.ts)
 *     deb:SHA256                  a package artifact of any format (the name predates formats)
 *     remote-blob:KEY             the packed blob's digest of a layer (remote/index.ts)
 *     remote-seen:URL:KEY         when this cache last saw KEY on that remote
 *
 * Artifacts are content-addressed by the lock's sha256: an entry's content is verified once on
 * the way in (cacache checks the integrity) and its size on the way out.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type Cacache from 'cacache';
import { CACACHE_TMP } from './orphans.js';

let loaded: typeof Cacache | undefined;

/**
 * cacache, required on first use rather than imported with the store: its modules (and theirs:
 * semver, glob, minipass) cost a process ~100 ms to load, and a no-op build, whose only index
 * reads are `findEntry`'s, never needs it (docs/bench.md, "Start-up").
 */
export function cacache(): typeof Cacache {
  return (loaded ??= createRequire(import.meta.url)('cacache') as typeof Cacache);
}

/** The folder of cacache's index, version 5 (its package.json's `cache-version.index`). */
const INDEX_DIR = 'index-v5';

/**
 * KEY's newest entry in the index, read without cacache: what `cacache().get.info(root, key)`
 * answers (its `metadata` and `time`; null: undefined), for the lookups every build makes, one per
 * stage planned. The layout is cacache's own (lib/entry-index.js), which
 * test/store-index.test.ts checks this against: a bucket file at
 * `index-v5/<sha256(KEY) as 2/2/60 hex>` holds one line per write, `sha1(JSON)<TAB>JSON`;
 * a torn or altered line is skipped, the last entry of KEY wins, and one without an integrity
 * is a removal.
 */
export async function findEntry(root: string, key: string): Promise<{ metadata: unknown; time: number; path: string } | undefined> {
  let text: string;
  try {
    // Synchronously: a bucket is a line or a few (a no-op build reads one per stage).
    text = readFileSync(bucketOf(root, key), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let found: { key?: unknown; integrity?: unknown; metadata?: unknown; time: number } | undefined;
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const json = line.slice(tab + 1);
    if (!json || createHash('sha1').update(json).digest('hex') !== line.slice(0, tab)) continue;
    let entry: typeof found;
    try {
      entry = JSON.parse(json) as typeof found;
    } catch {
      continue;
    }
    if (entry && entry.key === key) found = entry;
  }
  return typeof found?.integrity === 'string' ? { metadata: found.metadata, time: found.time, path: contentPathOf(root, found.integrity) } : undefined;
}

/** KEY's index bucket: `index-v5/<sha256(KEY) as 2/2/60 hex>` (cacache's lib/entry-index.js). */
function bucketOf(root: string, key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return join(root, INDEX_DIR, h.slice(0, 2), h.slice(2, 4), h.slice(4));
}

/** The folder of cacache's content, version 2 (its package.json's `cache-version.content`). */
const CONTENT_DIR = 'content-v2';

/** Where cacache keeps the content of INTEGRITY (`ALGO-BASE64`): `content-v2/ALGO/<hex as 2/2/rest>`. */
function contentPathOf(root: string, integrity: string): string {
  const dash = integrity.indexOf('-');
  const hex = Buffer.from(integrity.slice(dash + 1), 'base64').toString('hex');
  return join(root, CONTENT_DIR, integrity.slice(0, dash), hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
}

/**
 * What `cacache().put(root, key, data, { metadata })` writes, written without loading cacache
 * (its modules cost each build that commits 50–70 ms of the main thread, most of it before the
 * first stage: plan's reasons read the history): DATA under its sha512 in content-v2 (a file
 * written beside, then renamed: content-addressed, so one already there is the same bytes),
 * then one line appended to KEY's index bucket, `sha1(JSON)<TAB>JSON` of `{key, integrity,
 * time, size, metadata}`. cacache reads both back (test/store-index.test.ts); `findEntry` too.
 * Returns the content's path.
 */
export async function putEntry(root: string, key: string, data: Uint8Array | string, metadata?: unknown): Promise<string> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const integrity = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
  const path = contentPathOf(root, integrity);
  if (!(await stat(path).then(() => true, () => false))) {
    // Named as cacache names its own temporaries (CACACHE_TMP): a dead build's are swept.
    const tmp = join(root, 'tmp', `${CACACHE_TMP.tmpPrefix}-${randomBytes(4).toString('hex')}`);
    await mkdir(dirname(tmp), { recursive: true });
    try {
      await writeFile(tmp, bytes, { flag: 'wx' });
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  const json = JSON.stringify({ key, integrity, time: Date.now(), size: bytes.length, metadata });
  const bucket = bucketOf(root, key);
  await mkdir(dirname(bucket), { recursive: true });
  await appendFile(bucket, `\n${createHash('sha1').update(json).digest('hex')}\t${json}`);
  return path;
}

export const ENTRY = {
  tree: (key: string) => `tree:${key}`,
  layer: (key: string) => `layer:${key}`,
  log: (key: string) => `log:${key}`,
  history: (scope: string, node: string) => `history:${scope}:${node}`,
  squash: (key: string) => `squash:${key}`,
  artifact: (sha256: string) => `deb:${sha256}`,
  remoteBlob: (key: string) => `remote-blob:${key}`,
  remoteSeen: (url: string, key: string) => `remote-seen:${url}:${key}`,
} as const;

/** The kind of an index key, by its namespace (what `cache info` and GC count). */
export function entryKind(k: string): 'tree' | 'layer' | 'log' | 'history' | 'squash' | 'artifact' | 'remote' | 'other' {
  const ns = k.slice(0, k.indexOf(':'));
  if (ns === 'tree' || ns === 'layer' || ns === 'log' || ns === 'history' || ns === 'squash') return ns;
  if (ns === 'deb') return 'artifact';
  if (ns === 'remote-blob' || ns === 'remote-seen') return 'remote';
  return 'other';
}

/** The sha256 of an artifact entry's key (`deb:SHA256`), or undefined for another key. */
export function artifactOfEntry(k: string): string | undefined {
  return k.startsWith('deb:') ? k.slice(4) : undefined;
}

/** What the artifact functions need of one: its digest, length, and what to note beside it. */
export interface StoredArtifact {
  sha256: string;
  size: number;
  metadata: Record<string, unknown>;
}

export function integrityOf(sha256hex: string): string {
  return `sha256-${Buffer.from(sha256hex, 'hex').toString('base64')}`;
}

/** The content path of a stored artifact of the right length, or undefined. Re-indexes content whose entry was lost. */
export async function artifactPath(root: string, a: StoredArtifact): Promise<string | undefined> {
  const info = await cacache().get.info(root, ENTRY.artifact(a.sha256));
  if (info && (await sizeOf(info.path)) === a.size) return info.path;
  const integrity = integrityOf(a.sha256);
  const content = await cacache().get.hasContent(root, integrity).catch(() => false as const);
  if (content && content.size === a.size) {
    const entry = await cacache().index.insert(root, ENTRY.artifact(a.sha256), integrity, { size: a.size, metadata: a.metadata });
    return entry.path;
  }
  return undefined;
}

/**
 * Content of the wrong length under this digest (damaged on disk) would block a new download:
 * cacache never overwrites a content file. Removes it.
 */
export async function discardWrongSize(root: string, a: StoredArtifact): Promise<void> {
  const content = await cacache().get.hasContent(root, integrityOf(a.sha256)).catch(() => false as const);
  if (content && content.size !== a.size) await cacache().rm.content(root, integrityOf(a.sha256));
}

/**
 * Stores a verified artifact from a stream of its bytes (cacache checks the integrity and size
 * once more on the way in) and returns its content path.
 */
export async function putArtifact(root: string, a: StoredArtifact, chunks: AsyncIterable<Buffer>): Promise<string> {
  const sink = cacache().put.stream(root, ENTRY.artifact(a.sha256), { integrity: integrityOf(a.sha256), size: a.size, algorithms: ['sha256'], metadata: a.metadata, ...CACACHE_TMP });
  const stored = sink.promise();
  stored.catch(() => undefined); // awaited below, after the bytes are written
  for await (const chunk of chunks) if (!sink.write(chunk)) await new Promise((resume) => sink.once('drain', resume));
  sink.end();
  await stored;
  const path = (await cacache().get.info(root, ENTRY.artifact(a.sha256)))?.path;
  if (!path) throw new Error(`Internal error: ${ENTRY.artifact(a.sha256)} was stored but has no index entry`);
  return path;
}

/** A small record kept under KEY (its metadata), or undefined; a read error counts as none. */
export async function readMemo<T>(root: string, key: string): Promise<{ value: T; time: number } | undefined> {
  const info = await cacache().get.info(root, key).catch(() => undefined);
  return info ? { value: info.metadata as T, time: info.time } : undefined;
}

/** Keeps a small record under KEY (a remote's memo: losing it costs a request, nothing more). */
export async function writeMemo(root: string, key: string, value: Record<string, unknown>): Promise<void> {
  await cacache().put(root, key, JSON.stringify(value), { metadata: value, ...CACACHE_TMP });
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
