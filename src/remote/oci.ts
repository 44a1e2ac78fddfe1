/**
 * The OCI registry remote: trees travel as registry blobs, the way container layers do, so any
 * registry a CI already has (distribution's `registry`, Harbor, Zot, GitLab's or a cloud's)
 * can hold the cache. The OCI distribution API, as used here:
 *
 *     oci://HOST[:PORT]/REPOSITORY      e.g. oci://127.0.0.1:5000/team/imgmake-cache
 *
 *     HEAD /v2/<repo>/blobs/sha256:<hex>         is the blob there (with this size)?
 *     GET  /v2/<repo>/blobs/sha256:<hex>         a layer blob, hashed and counted as it streams
 *     POST /v2/<repo>/blobs/uploads/             start an upload → 202, Location
 *     PUT  <Location>&digest=sha256:<hex>        the whole blob in one request → 201
 *     GET  /v2/<repo>/manifests/<key>            a node's manifest, tagged with its cache key
 *     PUT  /v2/<repo>/manifests/<key>            write it
 *
 * A node's entry (types.ts) is an OCI image manifest tagged with the node's key. Its config
 * is the entry's JSON (`application/vnd.imgmake.entry.v1+json`) and its layers are the
 * tree's layer blobs (`application/vnd.imgmake.layer.v1.tar+zstd`), so the registry knows
 * which blobs a tagged tree needs (its garbage collector keeps them) and `artifactType`
 * says this is no container image. Looking an entry up is two requests: the manifest, then
 * its config blob, whose digest is checked like every other blob's.
 *
 * Plain HTTP for a loopback host (as docker does for localhost registries) or with
 * `oci+http://`; HTTPS otherwise. Credentials, from the environment (index.ts), go to the
 * registry as they are; when it answers 401 with a `Bearer` challenge (the registry token
 * flow), they go to the challenge's realm instead, for a token scoped to this repository
 * (`pull,push`, or `pull` read-only), which is then sent and renewed when refused. The
 * challenge is the registry's word, and a realm can be any URL: the credentials go there only
 * over https or to the registry's own origin (scheme, host and port). A realm elsewhere over
 * plain http is asked without them (anonymous pull works on public registries), and every
 * refusal that follows says the credentials were withheld and why.
 */
import { sha256 } from '../hash.js';
import type { CacheKey } from '../ids.js';
import type { BlobDigest } from './blob.js';
import { CREDENTIALS_HINT, download, IDLE_TIMEOUT_MS, readText, request, type Send } from './request.js';
import { isEntryFor, RemoteError, type RemoteEntry, type RemoteStore } from './types.js';

export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const ARTIFACT_TYPE = 'application/vnd.imgmake.tree.v1';
export const ENTRY_TYPE = 'application/vnd.imgmake.entry.v1+json';
export const LAYER_TYPE = 'application/vnd.imgmake.layer.v1.tar+zstd';

/** A repository name as the distribution spec allows it: lowercase path components. */
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export interface OciLocation {
  /** `http(s)://host[:port]`: where /v2/ is. */
  base: string;
  repository: string;
}

/** Where `oci://HOST[:PORT]/REPOSITORY` (or `oci+http://…`) points; a message when it cannot. */
export function parseOciUrl(url: URL): OciLocation | string {
  const repository = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  if (!url.host) return 'names no registry host';
  if (!repository) return 'names no repository: write oci://HOST[:PORT]/REPOSITORY';
  if (repository.length > 255 || !REPOSITORY.test(repository)) {
    return `"${repository}" is not a repository name (lowercase letters, digits and . _ - between them, components joined by /)`;
  }
  if (url.search || url.hash) return 'a registry URL has no ?query or #fragment';
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i.test(url.hostname);
  const scheme = url.protocol === 'oci+http:' || loopback ? 'http' : 'https';
  return { base: `${scheme}://${url.host}`, repository };
}

export interface OciRemoteOptions extends OciLocation {
  /** The whole Authorization header value (`Basic …`, `Bearer …`). */
  authorization?: string;
  /** Ask the token service for pull access only. */
  readOnly?: boolean;
  /** Abort a request that makes no progress for this long (default 5000). */
  idleTimeoutMs?: number;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export class OciRemote implements RemoteStore {
  readonly url: string;
  private readonly v2: string;
  private readonly idleMs: number;
  /** The Authorization value sent now: a token from the realm once a challenge asked for one. */
  private auth: string | undefined;
  /** A token being fetched: requests refused meanwhile wait for it instead of asking again. */
  private renewing: Promise<void> | undefined;
  /** Why the credentials were not sent to the token realm, for the messages of what that makes fail. */
  private withheld = '';

  constructor(private readonly o: OciRemoteOptions) {
    this.url = `oci://${new URL(o.base).host}/${o.repository}`;
    this.v2 = `${o.base}/v2/${o.repository}`;
    this.idleMs = o.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.auth = o.authorization;
  }

  async getEntry(key: CacheKey): Promise<RemoteEntry | undefined> {
    const manifest = await this.call('GET', `${this.v2}/manifests/${key}`, async (res, arm) => {
      if (res.status === 404) return undefined;
      await expectRegistryOk(res, arm, `GET manifest ${key}`);
      return readText(res, arm, 4 << 20);
    }, { headers: { accept: MANIFEST_TYPE } });
    if (manifest === undefined) return undefined;
    const config = configOf(manifest);
    if (!config) throw new RemoteError(`the manifest tagged ${key} is not an imgmake entry`, false);
    const text = await this.call('GET', `${this.v2}/blobs/${config.digest}`, async (res, arm) => {
      await expectRegistryOk(res, arm, `GET blob ${config.digest}`);
      return readText(res, arm, config.size);
    });
    const got = `sha256:${sha256(text)}`;
    if (got !== config.digest) throw new RemoteError(`the entry of ${key} is corrupt: its digest is ${got}, not ${config.digest}`, false);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RemoteError(`the entry of ${key} is not JSON`, false);
    }
    if (!isEntryFor(parsed, key)) throw new RemoteError(`the entry of ${key} is not an imgmake entry for that key`, false);
    return parsed;
  }

  async putEntry(entry: RemoteEntry): Promise<void> {
    const json = Buffer.from(JSON.stringify(entry));
    const config = { sha256: sha256(json), size: json.length };
    if (!(await this.hasBlob(config))) await this.upload(config, json);
    const seen = new Set<string>();
    const layers: Descriptor[] = [];
    for (const l of entry.layers) {
      if (seen.has(l.sha256)) continue;
      seen.add(l.sha256);
      layers.push({ mediaType: LAYER_TYPE, digest: `sha256:${l.sha256}`, size: l.size });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      artifactType: ARTIFACT_TYPE,
      config: { mediaType: ENTRY_TYPE, digest: `sha256:${config.sha256}`, size: config.size },
      layers,
      annotations: { 'dev.imgmake.node': entry.record.node },
    };
    const key = entry.record.key;
    await this.call('PUT', `${this.v2}/manifests/${key}`, (res, arm) => expectRegistryOk(res, arm, `PUT manifest ${key}`), {
      body: Buffer.from(JSON.stringify(manifest)),
      headers: { 'content-type': MANIFEST_TYPE },
    });
  }

  async hasBlob(blob: BlobDigest): Promise<boolean> {
    return this.call('HEAD', `${this.v2}/blobs/sha256:${blob.sha256}`, async (res, arm) => {
      if (res.status === 404) return false;
      await expectRegistryOk(res, arm, `HEAD blob ${blob.sha256}`);
      return Number(res.headers.get('content-length')) === blob.size;
    });
  }

  async getBlob(blob: BlobDigest, file: string): Promise<void> {
    await this.call('GET', `${this.v2}/blobs/sha256:${blob.sha256}`, async (res, arm) => {
      await expectRegistryOk(res, arm, `GET blob ${blob.sha256}`);
      await download(res, arm, blob, file);
    });
  }

  putBlob(blob: BlobDigest, file: string): Promise<void> {
    return this.upload(blob, file);
  }

  /** Writes a manifest (any media type: `imgmake push` sends a container image's) under a tag. */
  async putManifest(reference: string, body: Buffer, mediaType: string): Promise<void> {
    await this.call('PUT', `${this.v2}/manifests/${reference}`, (res, arm) => expectRegistryOk(res, arm, `PUT manifest ${reference}`), {
      body,
      headers: { 'content-type': mediaType },
    });
  }

  /** A monolithic upload: open a session, then PUT every byte to it with the digest. */
  private async upload(blob: BlobDigest, body: Buffer | string): Promise<void> {
    const location = await this.call('POST', `${this.v2}/blobs/uploads/`, async (res, arm) => {
      await expectRegistryOk(res, arm, 'POST blob upload');
      const to = res.headers.get('location');
      if (!to) throw new RemoteError('the registry started an upload without saying where to send it (no Location)', false);
      return new URL(to, this.o.base);
    }, { headers: { 'content-length': '0' } });
    location.searchParams.set('digest', `sha256:${blob.sha256}`);
    await this.call('PUT', location.href, (res, arm) => expectRegistryOk(res, arm, `PUT blob ${blob.sha256}`), {
      body,
      headers: { 'content-length': String(blob.size), 'content-type': 'application/octet-stream' },
    });
  }

  /**
   * One request, authorized; a 401 with a Bearer challenge fetches a token (once for all the
   * requests refused at that moment) and tries again, once.
   */
  private async call<T>(method: string, url: string, handle: (res: Response, arm: () => void) => Promise<T>, send: Send = {}, retried = false): Promise<T> {
    const sent = this.auth;
    const headers = { ...(send.headers ?? {}), ...(sent ? { authorization: sent } : {}) };
    const r = await request(
      method,
      url,
      async (res, arm): Promise<{ challenge: string } | { value: T }> => {
        const challenge = res.headers.get('www-authenticate') ?? '';
        if (res.status === 401 && !retried && /^bearer\s/i.test(challenge)) return { challenge };
        return { value: await handle(res, arm) };
      },
      { ...send, headers, idleMs: this.idleMs },
    ).catch((e: unknown) => {
      // Refused with an anonymous token: say why it was anonymous.
      if (e instanceof RemoteError && e.unusable && this.withheld && !e.message.includes(this.withheld)) throw new RemoteError(`${e.message}${this.withheld}`, true);
      throw e;
    });
    if ('value' in r) return r.value;
    // Another request may have renewed the token meanwhile: use that one.
    if (this.auth === sent) {
      this.renewing ??= this.token(r.challenge).finally(() => (this.renewing = undefined));
      await this.renewing;
    }
    return this.call(method, url, handle, send, true);
  }

  /** Asks the challenge's realm for a token to this repository (the registry token flow). */
  private async token(challenge: string): Promise<void> {
    const params = new Map<string, string>();
    for (const m of challenge.replace(/^bearer\s+/i, '').matchAll(/(\w+)="([^"]*)"/g)) params.set(m[1]!.toLowerCase(), m[2]!);
    const realm = params.get('realm');
    if (!realm) throw new RemoteError(`the registry asked for a token but named no realm to get it from (${challenge})`, true);
    let q: URL;
    try {
      q = new URL(realm);
    } catch {
      throw new RemoteError(`the registry named a token realm that is not a URL (${realm})`, true);
    }
    // Credentials only where they are safe: over https, or back to the registry itself.
    const safe = q.protocol === 'https:' || q.origin === new URL(this.o.base).origin;
    this.withheld =
      this.o.authorization && !safe
        ? ` (the credentials were not sent to the token service ${q.origin}: it is plain http on another origin than the registry ${new URL(this.o.base).origin}; serve it over https)`
        : '';
    if (params.has('service')) q.searchParams.set('service', params.get('service')!);
    q.searchParams.append('scope', `repository:${this.o.repository}:${this.o.readOnly ? 'pull' : 'pull,push'}`);
    const text = await request(
      'GET',
      q.href,
      async (res, arm) => {
        if (!res.ok) throw new RemoteError(`the token service ${q.origin}${q.pathname} answered HTTP ${res.status}${this.withheld || ` (${CREDENTIALS_HINT})`}`, true);
        return readText(res, arm, 1 << 20);
      },
      { headers: this.o.authorization && safe ? { authorization: this.o.authorization } : {}, idleMs: this.idleMs },
    );
    let token: unknown;
    try {
      const body = JSON.parse(text) as { token?: unknown; access_token?: unknown };
      token = body.token ?? body.access_token;
    } catch {
      /* reported below */
    }
    if (typeof token !== 'string' || !token) throw new RemoteError(`the token service ${q.origin}${q.pathname} gave no token`, true);
    this.auth = `Bearer ${token}`;
  }
}

/** The config descriptor of an imgmake manifest, or undefined when it is not one. */
function configOf(text: string): Descriptor | undefined {
  try {
    const m = JSON.parse(text) as { config?: Partial<Descriptor>; artifactType?: unknown };
    const c = m.config;
    if (!c || c.mediaType !== ENTRY_TYPE || typeof c.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(c.digest)) return undefined;
    if (!Number.isSafeInteger(c.size) || c.size! < 0 || c.size! > 16 << 20) return undefined;
    return c as Descriptor;
  } catch {
    return undefined;
  }
}

/**
 * Throws for a status other than 2xx, with the registry's own words when it sent them
 * (`{"errors":[{"code":"BLOB_UNKNOWN","message":"…"}]}`); 401 and 403 make the remote unusable.
 */
async function expectRegistryOk(res: Response, arm: () => void, what: string): Promise<void> {
  if (res.ok) return;
  let detail = '';
  if (res.status !== 404 || /json/.test(res.headers.get('content-type') ?? '')) {
    try {
      const body = JSON.parse(await readText(res, arm, 64 << 10)) as { errors?: { code?: string; message?: string }[] };
      detail = (body.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      /* no JSON: the status says it all */
    }
  }
  const denied = res.status === 401 || res.status === 403;
  throw new RemoteError(`${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}${denied ? ` (${CREDENTIALS_HINT})` : ''}`, denied);
}
