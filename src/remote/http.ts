/**
 * The HTTP remote: Bazel's remote-cache layout on any server that takes PUT (nginx with its
 * DAV module, bazel-remote, a cloud bucket behind a proxy).
 *
 *     HEAD {URL}/cas/<sha256>     is the blob there (with this Content-Length)?
 *     GET  {URL}/cas/<sha256>     a layer blob, hashed and counted while it streams to a file
 *     PUT  {URL}/cas/<sha256>     upload a blob (streamed from its file)
 *     GET  {URL}/ac/<key>         a node's entry (JSON), 404 when it has none
 *     PUT  {URL}/ac/<key>         write it
 *
 * Every request has an idle timeout (default 5 s: no connection, no response or no bytes for
 * that long aborts it); a request that never got an answer, or got 401/403, throws an
 * `unusable` RemoteError. Credentials come in as an Authorization header value (index.ts reads them from
 * the environment).
 *
 * This module moves bytes; it does not decide what to upload or download.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { describe } from '../debian/fetch.js';
import type { CacheKey } from '../ids.js';
import type { BlobDigest } from './blob.js';
import { isEntryFor, RemoteError, type RemoteEntry, type RemoteStore } from './types.js';

export interface HttpRemoteOptions {
  /** `http(s)://host[:port][/prefix]`, without credentials. */
  url: string;
  /** The whole Authorization header value (`Basic …`, `Bearer …`). */
  authorization?: string;
  /** Abort a request that makes no progress for this long (default 5000). */
  idleTimeoutMs?: number;
}

export class HttpRemote implements RemoteStore {
  readonly url: string;
  private readonly idleMs: number;

  constructor(private readonly o: HttpRemoteOptions) {
    this.url = o.url.replace(/\/+$/, '');
    this.idleMs = o.idleTimeoutMs ?? 5000;
  }

  async getEntry(key: CacheKey): Promise<RemoteEntry | undefined> {
    return this.request('GET', `ac/${key}`, async (res, arm) => {
      if (res.status === 404) return undefined;
      expectOk(res, `GET ac/${key}`);
      const text = await readText(res, arm);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new RemoteError(`ac/${key} is not JSON`, false);
      }
      if (!isEntryFor(parsed, key)) throw new RemoteError(`ac/${key} is not an imgmake entry for that key`, false);
      return parsed;
    });
  }

  async putEntry(entry: RemoteEntry): Promise<void> {
    const body = Buffer.from(JSON.stringify(entry));
    await this.request('PUT', `ac/${entry.record.key}`, async (res) => expectOk(res, `PUT ac/${entry.record.key}`), {
      body,
      headers: { 'content-type': 'application/json' },
    });
  }

  async hasBlob(blob: BlobDigest): Promise<boolean> {
    return this.request('HEAD', `cas/${blob.sha256}`, async (res) => {
      if (res.status === 404) return false;
      expectOk(res, `HEAD cas/${blob.sha256}`);
      return Number(res.headers.get('content-length')) === blob.size;
    });
  }

  async getBlob(blob: BlobDigest, file: string): Promise<void> {
    await this.request('GET', `cas/${blob.sha256}`, async (res, arm) => {
      expectOk(res, `GET cas/${blob.sha256}`);
      const hash = createHash('sha256');
      const sink = createWriteStream(file);
      let n = 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          arm();
          n += chunk.length;
          // More than the entry says: stop reading, the size check below fails.
          if (n > blob.size) break;
          hash.update(chunk);
          if (!sink.write(chunk)) await once(sink, 'drain');
        }
      } finally {
        sink.end();
        await once(sink, 'close').catch(() => undefined);
      }
      if (n !== blob.size) throw new RemoteError(`blob ${blob.sha256} is ${n > blob.size ? 'longer' : `truncated: ${n} of`} ${blob.size} bytes`, false);
      const got = hash.digest('hex');
      if (got !== blob.sha256) throw new RemoteError(`blob ${blob.sha256} is corrupt: its sha256 is ${got}`, false);
    });
  }

  async putBlob(blob: BlobDigest, file: string): Promise<void> {
    await this.request('PUT', `cas/${blob.sha256}`, async (res) => expectOk(res, `PUT cas/${blob.sha256}`), {
      body: file,
      headers: { 'content-length': String(blob.size), 'content-type': 'application/octet-stream' },
    });
  }

  /**
   * One request with an idle timeout, re-armed by `arm()` whenever bytes move; `handle` reads
   * the response. A body given as a string is a file to stream.
   */
  private async request<T>(
    method: string,
    path: string,
    handle: (res: Response, arm: () => void) => Promise<T>,
    send?: { body: Buffer | string; headers: Record<string, string> },
  ): Promise<T> {
    const ctl = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    let answered = false;
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(new Error(`no progress for ${this.idleMs / 1000} s`)), this.idleMs);
    };
    const url = `${this.url}/${path}`;
    try {
      arm();
      let body: RequestInit['body'];
      if (typeof send?.body === 'string') {
        const file = createReadStream(send.body);
        file.on('data', arm);
        body = Readable.toWeb(file) as unknown as RequestInit['body'];
      } else body = send?.body;
      const init: RequestInit & { duplex?: 'half' } = {
        method,
        signal: ctl.signal,
        headers: { ...(send?.headers ?? {}), ...(this.o.authorization ? { authorization: this.o.authorization } : {}) },
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
      if (e instanceof RemoteError) throw e;
      // No answer at all (refused, reset, timed out before the response): the remote is down.
      throw new RemoteError(`${method} ${url}: ${describe(e, ctl.signal)}`, !answered);
    } finally {
      clearTimeout(idle);
    }
  }
}

function expectOk(res: Response, what: string): void {
  if (!res.ok) {
    const hint = res.status === 401 || res.status === 403 ? ' (credentials: IMGMAKE_REMOTE_AUTH, or IMGMAKE_REMOTE_USER and IMGMAKE_REMOTE_PASSWORD)' : '';
    throw new RemoteError(`${what}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${hint}`, hint !== '');
  }
}

async function readText(res: Response, arm: () => void): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    arm();
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
