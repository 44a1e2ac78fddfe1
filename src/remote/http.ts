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
import type { CacheKey } from '../ids.js';
import type { BlobDigest } from './blob.js';
import { download, expectOk, IDLE_TIMEOUT_MS, readText, request } from './request.js';
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
    this.idleMs = o.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
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
      await download(res, arm, blob, file);
    });
  }

  async putBlob(blob: BlobDigest, file: string): Promise<void> {
    await this.request('PUT', `cas/${blob.sha256}`, async (res) => expectOk(res, `PUT cas/${blob.sha256}`), {
      body: file,
      headers: { 'content-length': String(blob.size), 'content-type': 'application/octet-stream' },
    });
  }

  private request<T>(method: string, path: string, handle: (res: Response, arm: () => void) => Promise<T>, send?: { body: Buffer | string; headers: Record<string, string> }): Promise<T> {
    const headers = { ...(send?.headers ?? {}), ...(this.o.authorization ? { authorization: this.o.authorization } : {}) };
    return request(method, `${this.url}/${path}`, handle, { ...(send ? { body: send.body } : {}), headers, idleMs: this.idleMs });
  }
}
