/**
 * The one streaming downloader: every byte imgmake fetches by digest goes through here, a
 * package format's artifacts (packages/fetch.ts) and a remote cache's blobs (remote/request.ts).
 *
 *     receive(body, file, expect, { arm, state })   a response body into FILE; size and sha256
 *                                                   checked while it streams; never more than
 *                                                   expect.size bytes read
 *     fetchFile(url, file, expect, opts)            GET with an idle timeout, retries, and a
 *                                                   Range request that resumes a cut download
 *     describeFetchError(e, signal)                 fetch()'s useful words ("connect ECONNREFUSED…")
 *     inParallel(items, n, fn)                      at most N of fn at once
 *
 * Expected failures are values (`TransferFailure`, `FetchFailure`) whose words the caller
 * chooses ("the lock says…", "blob … is truncated"); a failure to write on this machine (the
 * disk is full) is not the server's and throws a `LocalWriteError` naming the file and the cause.
 *
 * A fetchFile attempt's life:
 *
 *     GET (Range: bytes=N- when N bytes are kept) ──206 from N──▶ append ─┐
 *        │                                       ──200────────▶ restart ─┴▶ streaming ──size and sha256──▶ done
 *        │ 4xx but 408/429: permanent, no retry                              │ cut, stalled: keep the N bytes
 *        │ 5xx, 408, 429, no answer: retry                                   │ wrong size, wrong sha256: drop them
 *        ▼                                                                   ▼
 *      failed ◀────────────────────────────── attempts used ──────────── retry
 *
 * A cancelled signal stops at once, without retries. This module knows no URL layout, no cache
 * and no lock: the caller says where the bytes go and what they must be.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { fail, ok, type Result } from '../result.js';

/** What the bytes must be. */
export interface Expected {
  /** 64 lowercase hex digits. */
  sha256: string;
  size: number;
}

/**
 * Writing a download on this machine failed (ENOSPC, EACCES): this machine's problem, not the
 * server's, so callers never blame (or stop using) the server for it.
 */
export class LocalWriteError extends Error {
  constructor(
    readonly path: string,
    readonly error: NodeJS.ErrnoException,
  ) {
    super(`writing ${path} failed: ${error.code ? `${error.code}: ` : ''}${describeErrno(error)}`);
  }
}

function describeErrno(e: NodeJS.ErrnoException): string {
  // "ENOSPC: no space left on device, write" → "no space left on device"
  return e.message.replace(/^[A-Z]+: /, '').replace(/, (write|open|close)( '.*')?$/, '');
}

/** Why a body was not the expected bytes. `bytes` counts from the start of the file. */
export type TransferFailure =
  /** Complete, but not `expected.size` long (`bytes` > size: reading stopped right there). */
  | { reason: 'size'; bytes: number }
  | { reason: 'sha256'; got: string }
  /** The body stopped (connection cut, no data for the idle time): the bytes so far are kept. */
  | { reason: 'cut'; bytes: number; cause: string };

/** The bytes of FILE so far and their running hash: what a resumed download continues. */
export interface Progress {
  bytes: number;
  hash: Hash;
}

export function newProgress(): Progress {
  return { bytes: 0, hash: createHash('sha256') };
}

export interface ReceiveOptions {
  /** Called whenever bytes move (re-arms the caller's idle timer). */
  arm?: () => void;
  /** The signal whose abort reason names a stall (for a cut's `cause`). */
  signal?: AbortSignal;
  /** Continue FILE from here (appending); default: a new file. Updated as bytes arrive. */
  progress?: Progress;
}

/**
 * Streams BODY into FILE and checks it against EXPECT while it streams. A cut body leaves FILE
 * and `progress` at the bytes received (a resume continues them); the other failures leave FILE
 * for the caller to remove. Throws only a LocalWriteError.
 */
export async function receive(body: ReadableStream<Uint8Array> | null, file: string, expect: Expected, o: ReceiveOptions = {}): Promise<Result<void, TransferFailure>> {
  const progress = o.progress ?? newProgress();
  const sink = createWriteStream(file, { flags: progress.bytes > 0 ? 'a' : 'w' });
  let writeError: NodeJS.ErrnoException | undefined;
  sink.on('error', (e) => (writeError ??= e));
  const closed = once(sink, 'close').catch(() => undefined);
  let cut: string | undefined;
  try {
    for await (const chunk of (body ?? []) as AsyncIterable<Uint8Array>) {
      o.arm?.();
      if (writeError) break;
      progress.bytes += chunk.length;
      // More than expected: stop reading (the size check below fails); nothing more is written.
      if (progress.bytes > expect.size) break;
      progress.hash.update(chunk);
      if (!sink.write(chunk)) await Promise.race([once(sink, 'drain').catch(() => undefined), closed]);
    }
  } catch (e) {
    cut = describeFetchError(e, o.signal);
  }
  // Ended, not destroyed: every byte counted is on disk before a resume continues the file.
  sink.end();
  await closed;
  if (writeError) throw new LocalWriteError(file, writeError);
  if (cut !== undefined) return fail({ reason: 'cut', bytes: progress.bytes, cause: cut });
  if (progress.bytes !== expect.size) return fail({ reason: 'size', bytes: progress.bytes });
  // A copy: the running hash stays usable (digest() finalizes).
  const got = progress.hash.copy().digest('hex');
  if (got !== expect.sha256) return fail({ reason: 'sha256', got });
  return ok(undefined);
}


/** Why fetchFile gave up on an attempt (or for good). */
export type FetchFailure =
  | TransferFailure
  /** An answer other than 2xx; `permanent` when retrying cannot help (a 404). */
  | { reason: 'http'; status: number; statusText: string; permanent: boolean }
  /** No answer: refused, reset, a name that does not resolve, no headers for the idle time. */
  | { reason: 'unreachable'; cause: string };

export interface FetchFileOptions {
  signal?: AbortSignal;
  /** Tries before giving up (default 3). */
  attempts?: number;
  /** An attempt that receives nothing for this long is cut (and retried) (default 30 s). */
  idleMs?: number;
  headers?: Record<string, string>;
  onAttempt?: (attempt: number) => void;
  /** An attempt failed and another follows (after a short pause). */
  onRetry?: (attempt: number, failure: FetchFailure) => void;
  /** Bytes of FILE received so far, as they arrive (a live display's progress; not throttled). */
  onBytes?: (bytes: number) => void;
}

/**
 * GETs URL into FILE (a new file), verified against EXPECT, retrying what a retry can fix and
 * resuming a cut body with a Range request (a server that answers 200 instead starts over).
 * On failure FILE is removed and the last failure returned with the number of attempts made.
 * Throws a LocalWriteError, or the signal's reason when cancelled.
 */
export async function fetchFile(url: string, file: string, expect: Expected, o: FetchFileOptions = {}): Promise<Result<void, { failure: FetchFailure; attempts: number }>> {
  const attempts = Math.max(1, o.attempts ?? 3);
  let progress = newProgress();
  try {
    for (let attempt = 1; ; attempt++) {
      o.signal?.throwIfAborted();
      o.onAttempt?.(attempt);
      const r = await attemptOnce(url, file, expect, progress, o);
      if (r.ok) return ok(undefined);
      o.signal?.throwIfAborted();
      const f = r.error;
      // Only a cut keeps its bytes (when the file holds exactly them); a complete but wrong
      // body is of no use to resume.
      if (f.reason !== 'cut' || (await stat(file).then((st) => st.size, () => -1)) !== progress.bytes) progress = newProgress();
      if ((f.reason === 'http' && f.permanent) || attempt >= attempts) {
        await rm(file, { force: true });
        return fail({ failure: f, attempts: attempt });
      }
      o.onRetry?.(attempt, f);
      await delay(150 * attempt, o.signal);
    }
  } catch (e) {
    await rm(file, { force: true });
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    throw e;
  }
}

async function attemptOnce(url: string, file: string, expect: Expected, progress: Progress, o: FetchFileOptions): Promise<Result<void, FetchFailure>> {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const idleMs = o.idleMs ?? 30_000;
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => ctl.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  };
  try {
    arm();
    const from = progress.bytes;
    let res: Response;
    try {
      res = await fetch(url, { signal: ctl.signal, headers: { ...o.headers, ...(from > 0 ? { range: `bytes=${from}-` } : {}) } });
    } catch (e) {
      return fail({ reason: 'unreachable', cause: describeFetchError(e, ctl.signal) });
    }
    const resumed = from > 0 && res.status === 206 && new RegExp(`^bytes ${from}-`).test(res.headers.get('content-range') ?? '');
    if (!res.ok || !res.body || (res.status === 206 && !resumed)) {
      await res.body?.cancel().catch(() => undefined);
      if (res.status === 206 || res.status === 416) {
        // A range the server would not (or could not) serve: the next attempt starts over.
        Object.assign(progress, newProgress());
        return fail({ reason: 'cut', bytes: from, cause: `HTTP ${res.status} to a resumed request` });
      }
      // A missing file stays missing (a superseded version the mirror dropped); retry the rest.
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      return fail({ reason: 'http', status: res.status, statusText: res.statusText, permanent });
    }
    if (!resumed) Object.assign(progress, newProgress());
    const onBytes = o.onBytes;
    const armAndTell = onBytes
      ? () => {
          arm();
          onBytes(progress.bytes);
        }
      : arm;
    return await receive(res.body, file, expect, { arm: armAndTell, signal: ctl.signal, progress });
  } finally {
    clearTimeout(idle);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** fetch() wraps the useful part in `cause`: "fetch failed" → "fetch failed: connect ECONNREFUSED 127.0.0.1:9". */
export function describeFetchError(e: unknown, signal?: AbortSignal): string {
  if (signal?.aborted && signal.reason instanceof Error) return signal.reason.message;
  const err = e as Error & { cause?: Error & { code?: string } };
  if (err.cause?.message) return `${err.message}: ${err.cause.message}`;
  return err.message ?? String(e);
}

/** Runs FN over ITEMS, at most N at once (never more workers than items); FN's rejections propagate. */
export async function inParallel<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, n), queue.length) }, worker));
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
