/**
 * HTTP for remotes: one request with an idle timeout, and the pieces both transports read
 * responses with (http.ts: Bazel's layout; oci.ts: a registry).
 *
 *     request(method, url, handle, { body, headers, idleMs })
 *         handle(res, arm) reads the response; arm() re-arms the idle timer whenever bytes
 *         move. A body given as a string is a file, streamed. A request that never got an
 *         answer (refused, reset, timed out before the response) throws an `unusable`
 *         RemoteError: the remote is down.
 *     download(res, arm, blob, file)    the body into `file`, size and sha256 checked while it
 *                                        streams (net/download.ts's receive, in a remote's words)
 *     expectOk(res, what)               throws for a status other than 2xx; 401/403 unusable
 *     readText(res, arm, limit)         a small body, as text
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { describeFetchError as describe, receive } from '../net/download.js';
import type { BlobDigest } from './blob.js';
import { LocalWriteError, RemoteError } from './types.js';

/** Abort a request that makes no progress for this long, by default. */
export const IDLE_TIMEOUT_MS = 5000;

export interface Send {
  /** Bytes, or a file (its path) to stream. */
  body?: Buffer | string;
  headers?: Record<string, string>;
  idleMs?: number;
}

export async function request<T>(method: string, url: string, handle: (res: Response, arm: () => void) => Promise<T>, send: Send = {}): Promise<T> {
  const idleMs = send.idleMs ?? IDLE_TIMEOUT_MS;
  const ctl = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  let answered = false;
  const arm = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => ctl.abort(new Error(`no progress for ${idleMs / 1000} s`)), idleMs);
  };
  try {
    arm();
    let body: RequestInit['body'];
    if (typeof send.body === 'string') {
      const file = createReadStream(send.body);
      file.on('data', arm);
      body = Readable.toWeb(file) as unknown as RequestInit['body'];
    } else body = send.body;
    const init: RequestInit & { duplex?: 'half' } = {
      method,
      signal: ctl.signal,
      headers: send.headers ?? {},
      ...(body ? { body, duplex: 'half' } : {}),
    };
    const res = await fetch(url, init);
    answered = true;
    arm();
    try {
      return await handle(res, arm);
    } finally {
      await res.body?.cancel().catch(() => undefined);
    }
  } catch (e) {
    // The remote's failures as they are; this machine's (a full disk) are not the remote's.
    if (e instanceof RemoteError || e instanceof LocalWriteError) throw e;
    throw new RemoteError(`${method} ${url}: ${describe(e, ctl.signal)}`, !answered);
  } finally {
    clearTimeout(idle);
  }
}

/**
 * Streams a response body into `file`, checking its size and sha256 against `blob`. A write
 * error (the disk is full) rejects with a LocalWriteError naming `file` and the cause; the
 * file, partial, is the caller's to remove. Every path settles: a write stream that failed
 * is not waited on for a `close` that never comes.
 */
export async function download(res: Response, arm: () => void, blob: BlobDigest, file: string): Promise<void> {
  const r = await receive(res.body, file, blob, { arm });
  if (r.ok) return;
  const f = r.error;
  switch (f.reason) {
    case 'size':
      throw new RemoteError(`blob ${blob.sha256} is ${f.bytes > blob.size ? 'longer' : `truncated: ${f.bytes} of`} ${blob.size} bytes`, false);
    case 'sha256':
      throw new RemoteError(`blob ${blob.sha256} is corrupt: its sha256 is ${f.got}`, false);
    case 'cut':
      // request() words it: the method, the URL and why (a stall names the idle time).
      throw new Error(f.cause);
  }
}

export const CREDENTIALS_HINT = 'credentials: IMGMAKE_REMOTE_AUTH, or IMGMAKE_REMOTE_USER and IMGMAKE_REMOTE_PASSWORD; for a registry also docker login (~/.docker/config.json)';

export function expectOk(res: Response, what: string): void {
  if (!res.ok) {
    const hint = res.status === 401 || res.status === 403 ? ` (${CREDENTIALS_HINT})` : '';
    throw new RemoteError(`${what}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${hint}`, hint !== '');
  }
}

/** A small body as text; more than `limit` bytes is an error, not a reason to fill memory. */
export async function readText(res: Response, arm: () => void, limit = 16 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    arm();
    n += chunk.length;
    if (n > limit) throw new RemoteError(`${res.url}: the answer is longer than ${limit} bytes`, false);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
