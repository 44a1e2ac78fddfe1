/**
 * Fetch: the .debs of a lock, by URL, into the cacache store, each verified against the lock's
 * size and sha256 while it streams. Sources are addressed by digest: a .deb already in the store
 * is never downloaded again, whatever mirror it came from.
 *
 *     fetchPackages(packages, { mirror, cacheDir, concurrency })  → Map<sha256, content path>
 *     hasAll(packages, { cacheDir })                              → true when a build can be offline
 *     missingPackages(packages, { cacheDir })                     → the ones that are not stored
 *
 * Store layout (cacache at CACHEDIR): the index key is `deb:<sha256>`, the content is stored
 * under its sha256 integrity (`content-v2/sha256/<2>/<2>/<60>`), and the returned path is that
 * content file: a stage hard-links or binds it read-only. It is shared with the cache, so nothing
 * may write through such a link. An entry counts as present when its index entry or its
 * content exists with the locked size; content is not re-hashed (cacache stores only what
 * matched its integrity on the way in).
 *
 * A download's life:
 *
 *     request ──HTTP 2xx──▶ streaming (hash + count) ──size and sha256 match──▶ stored
 *        │                        │ wrong size, wrong sha256, a cut connection,
 *        │ HTTP 4xx (not 408/429) │ no bytes for idleTimeoutMs, HTTP 5xx
 *        ▼                        ▼
 *      failed ◀── attempts used ── discarded (cacache drops its temp file) ──▶ request again
 *
 * A cancelled signal stops everything at once, without retries. When some packages cannot be
 * fetched, the others are still stored, then one Error names every failed package and URL.
 *
 * This module does not resolve packages (lock.ts does), read the lock file, or build a repo.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import cacache from 'cacache';
import type { LockedPackage } from './lock.js';
import type { DebianMirror } from './sources.js';
import { CACACHE_TMP } from '../store/orphans.js';

export interface FetchOptions {
  mirror: DebianMirror;
  /** The cacache directory (imgmake's cache root: debs share it with trees and logs). */
  cacheDir: string;
  /** Downloads in flight at once (default 6). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Tries per package before giving up (default 3). */
  attempts?: number;
  /** A download that receives nothing for this long is cut and retried (default 30 s). */
  idleTimeoutMs?: number;
  /** Progress, for the logger; the core never prints. */
  onEvent?: (e: FetchEvent) => void;
}

/** What happened to one package; `retry` carries why the attempt was discarded. */
export type FetchEvent =
  | { type: 'cached'; pkg: LockedPackage }
  | { type: 'start'; pkg: LockedPackage; url: string; attempt: number }
  | { type: 'retry'; pkg: LockedPackage; url: string; attempt: number; error: string }
  | { type: 'fetched'; pkg: LockedPackage; url: string; bytes: number; ms: number }
  | { type: 'failed'; pkg: LockedPackage; url: string; error: string };

/** The cacache index key of a .deb. */
export function debKey(sha256: string): string {
  return `deb:${sha256}`;
}

/** The URL of a locked package on a mirror (each path segment URL-encoded, as apt does). */
export function packageUrl(mirror: DebianMirror, pkg: Pick<LockedPackage, 'source' | 'path' | 'name'>): string {
  const base = pkg.source === 'security' ? mirror.security : mirror.archive;
  if (!base) throw new Error(`${pkg.name} comes from the security archive, but the mirror names none`);
  return `${base.replace(/\/+$/, '')}/${pkg.path.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Makes sure every package is in the store, downloading what is missing, and returns
 * sha256 → content path for all of them. Throws one Error listing every package that could not
 * be fetched (name, version, URL, why); what was fetched meanwhile stays stored.
 */
export async function fetchPackages(packages: LockedPackage[], opts: FetchOptions): Promise<Map<string, string>> {
  const unique = new Map<string, LockedPackage>();
  for (const p of packages) unique.set(p.sha256, p);
  const paths = new Map<string, string>();
  const failures: string[] = [];
  const queue = [...unique.values()];
  const concurrency = Math.max(1, opts.concurrency ?? 6);

  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      opts.signal?.throwIfAborted();
      const have = await storedPath(opts.cacheDir, p);
      if (have) {
        paths.set(p.sha256, have);
        opts.onEvent?.({ type: 'cached', pkg: p });
        continue;
      }
      const url = packageUrl(opts.mirror, p);
      await discardWrongSize(opts.cacheDir, p);
      try {
        paths.set(p.sha256, await download(p, url, opts));
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        const error = (e as Error).message;
        opts.onEvent?.({ type: 'failed', pkg: p, url, error });
        failures.push(`${p.name} ${p.version} (${url}): ${error}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
  if (failures.length) {
    const n = failures.length;
    throw new Error(`could not fetch ${n} package${n === 1 ? '' : 's'}:\n  ${failures.sort().join('\n  ')}`);
  }
  return paths;
}

/** The packages not in the store. */
export async function missingPackages(packages: LockedPackage[], opts: { cacheDir: string }): Promise<LockedPackage[]> {
  const out: LockedPackage[] = [];
  for (const p of packages) if (!(await storedPath(opts.cacheDir, p))) out.push(p);
  return out;
}

/** True when every package is stored: a build from this lock needs no network. */
export async function hasAll(packages: LockedPackage[], opts: { cacheDir: string }): Promise<boolean> {
  for (const p of packages) if (!(await storedPath(opts.cacheDir, p))) return false;
  return true;
}

function integrityOf(sha256hex: string): string {
  return `sha256-${Buffer.from(sha256hex, 'hex').toString('base64')}`;
}

/** The content path of a stored package, or undefined. Re-indexes content whose entry was lost. */
async function storedPath(cacheDir: string, p: LockedPackage): Promise<string | undefined> {
  const info = await cacache.get.info(cacheDir, debKey(p.sha256));
  if (info && (await sizeOf(info.path)) === p.size) return info.path;
  const integrity = integrityOf(p.sha256);
  const content = await cacache.get.hasContent(cacheDir, integrity).catch(() => false as const);
  if (content && content.size === p.size) {
    const entry = await cacache.index.insert(cacheDir, debKey(p.sha256), integrity, { size: p.size, metadata: meta(p) });
    return entry.path;
  }
  return undefined;
}

/**
 * Content of the wrong length under this digest (damaged on disk) would block the new download:
 * cacache never overwrites a content file. Remove it first.
 */
async function discardWrongSize(cacheDir: string, p: LockedPackage): Promise<void> {
  const content = await cacache.get.hasContent(cacheDir, integrityOf(p.sha256)).catch(() => false as const);
  if (content && content.size !== p.size) await cacache.rm.content(cacheDir, integrityOf(p.sha256));
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

function meta(p: LockedPackage) {
  return { name: p.name, version: p.version, architecture: p.architecture, path: p.path };
}

class PermanentError extends Error {}

async function download(p: LockedPackage, url: string, opts: FetchOptions): Promise<string> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  for (let attempt = 1; ; attempt++) {
    opts.onEvent?.({ type: 'start', pkg: p, url, attempt });
    const t0 = performance.now();
    try {
      await downloadOnce(p, url, opts);
      const path = (await cacache.get.info(opts.cacheDir, debKey(p.sha256)))?.path;
      if (!path) throw new Error(`Internal error: ${debKey(p.sha256)} was stored but has no index entry`);
      opts.onEvent?.({ type: 'fetched', pkg: p, url, bytes: p.size, ms: Math.round(performance.now() - t0) });
      return path;
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? e;
      const error = (e as Error).message;
      if (e instanceof PermanentError) throw e;
      if (attempt >= attempts) throw new Error(`${error} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`);
      opts.onEvent?.({ type: 'retry', pkg: p, url, attempt, error });
      await delay(150 * attempt, opts.signal);
    }
  }
}

/**
 * One GET, streamed through sha256 and a byte count into cacache (which checks the integrity and
 * size again and keeps nothing that does not match). Throws with the reason on any mismatch.
 */
async function downloadOnce(p: LockedPackage, url: string, opts: FetchOptions): Promise<void> {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => ctl.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  };
  try {
    armIdle();
    let res: Response;
    try {
      res = await fetch(url, { signal: ctl.signal });
    } catch (e) {
      throw new Error(describe(e, ctl.signal));
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      const msg = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
      // A missing file stays missing (a superseded version the mirror dropped); retry the rest.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentError(msg);
      throw new Error(msg);
    }
    const hash = createHash('sha256');
    const sink = cacache.put.stream(opts.cacheDir, debKey(p.sha256), {
      integrity: integrityOf(p.sha256),
      size: p.size,
      algorithms: ['sha256'],
      metadata: meta(p),
      ...CACACHE_TMP,
    });
    const stored = sink.promise();
    stored.catch(() => undefined); // judged below, after the body is read
    let n = 0;
    let readError: unknown;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        armIdle();
        n += chunk.length;
        hash.update(chunk);
        if (!sink.write(chunk)) await new Promise((ok) => sink.once('drain', ok));
        // A server sending more than the lock says: stop reading; the size check below fails.
        if (n > p.size) break;
      }
    } catch (e) {
      readError = e;
    }
    sink.end();
    const storeError = await stored.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (readError) throw new Error(`download cut after ${n} of ${p.size} bytes: ${describe(readError, ctl.signal)}`);
    if (n !== p.size) throw new Error(`${n > p.size ? 'more than' : 'got'} ${n} bytes, the lock says ${p.size}`);
    const got = hash.digest('hex');
    if (got !== p.sha256) throw new Error(`sha256 ${got} does not match the lock's ${p.sha256}`);
    if (storeError) throw new Error(`storing in ${opts.cacheDir} failed: ${(storeError as Error).message}`);
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** fetch() wraps the useful part in `cause`: "fetch failed" → "connect ECONNREFUSED 127.0.0.1:9". */
export function describe(e: unknown, signal: AbortSignal): string {
  if (signal.aborted && signal.reason instanceof Error) return signal.reason.message;
  const err = e as Error & { cause?: Error & { code?: string } };
  if (err.cause?.message) return `${err.message}: ${err.cause.message}`;
  return err.message ?? String(e);
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((ok, ko) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      ok();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      ko(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
