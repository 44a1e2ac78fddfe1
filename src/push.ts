/**
 * push: an OCI image layout archive (what archive.oci writes, the `oci` image type) sent to a
 * registry with the registry code the OCI remote cache uses (src/remote/oci.ts: the same
 * uploads, credentials and token flow).
 *
 *     imgmake push out/oci/image.oci.tar oci://127.0.0.1:5000/debian:12
 *
 * Steps: unpack the archive into a private temp dir; read index.json (exactly one manifest);
 * check every blob it needs against its digest (a blob that does not match is never sent);
 * upload the config and layers the registry lacks (HEAD first), then PUT the manifest under the
 * tag (the reference's, else the index's `org.opencontainers.image.ref.name`, else `latest`).
 * It does not build anything or read the cache: push what `imgmake build oci` exported.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestOf } from './remote/blob.js';
import { OciRemote, parseOciUrl } from './remote/oci.js';
import { fail, ok, type Result } from './result.js';

const run = promisify(execFile);

/** Where `oci://HOST[:PORT]/REPOSITORY[:TAG]` points, or what is wrong with it. */
export function parsePushRef(text: string): Result<{ base: string; repository: string; tag?: string }, string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('not a reference: write oci://HOST[:PORT]/REPOSITORY[:TAG]');
  }
  if (url.protocol !== 'oci:' && url.protocol !== 'oci+http:') return fail('not a registry reference: write oci://HOST[:PORT]/REPOSITORY[:TAG] (oci+http:// for plain HTTP)');
  const m = /^(.*?)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?$/.exec(decodeURIComponent(url.pathname));
  const tag = m?.[2];
  url.pathname = m?.[1] ?? url.pathname;
  const loc = parseOciUrl(url);
  if (typeof loc === 'string') return fail(loc);
  return ok({ ...loc, ...(tag ? { tag } : {}) });
}

export interface PushOptions {
  archive: string;
  ref: string;
  authorization?: string;
  say: (line: string) => void;
}

export interface Pushed {
  /** `HOST/REPOSITORY:TAG` */
  reference: string;
  /** The manifest's digest, `sha256:…`: what a puller can pin. */
  digest: string;
  uploaded: number;
  skipped: number;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The failures of a push are the user's input (the archive) or the registry's answer: messages. */
export async function pushArchive(o: PushOptions): Promise<Result<Pushed, string>> {
  const ref = parsePushRef(o.ref);
  if (!ref.ok) return fail(`${o.ref}: ${ref.error}`);
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-push-'));
  try {
    try {
      await run('tar', ['-C', dir, '--no-same-owner', '-xf', o.archive]);
    } catch (e) {
      return fail(`${o.archive}: not a readable tar (${((e as { stderr?: string }).stderr ?? String(e)).trim()})`);
    }
    const json = async <T>(rel: string): Promise<T | undefined> => {
      try {
        return JSON.parse(await readFile(join(dir, rel), 'utf8')) as T;
      } catch {
        return undefined;
      }
    };
    const index = await json<{ manifests?: Descriptor[] }>('index.json');
    const manifests = index?.manifests ?? [];
    if (manifests.length !== 1) return fail(`${o.archive}: not an OCI image layout with one image (index.json lists ${manifests.length}); make it with imgmake build oci`);
    const blob = async (d: Descriptor): Promise<Result<string, string>> => {
      const m = /^sha256:([0-9a-f]{64})$/.exec(d.digest);
      if (!m) return fail(`${o.archive}: digest ${d.digest} is not sha256`);
      const file = join(dir, 'blobs', 'sha256', m[1]!);
      const got = await digestOf(file).catch(() => undefined);
      if (!got) return fail(`${o.archive}: blob ${d.digest} is missing`);
      if (got.sha256 !== m[1] || got.size !== d.size) return fail(`${o.archive}: blob ${d.digest} is corrupt (its bytes hash to sha256:${got.sha256}, ${got.size} bytes)`);
      return ok(file);
    };
    const top = manifests[0]!;
    const manifestFile = await blob(top);
    if (!manifestFile.ok) return manifestFile;
    const manifestBytes = await readFile(manifestFile.value);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
    if (!manifest.config || !Array.isArray(manifest.layers)) return fail(`${o.archive}: its manifest has no config or layers`);
    const remote = new OciRemote({ base: ref.value.base, repository: ref.value.repository, ...(o.authorization ? { authorization: o.authorization } : {}) });
    const tag = ref.value.tag ?? top.annotations?.['org.opencontainers.image.ref.name'] ?? 'latest';
    let uploaded = 0;
    let skipped = 0;
    for (const d of [manifest.config, ...manifest.layers]) {
      const file = await blob(d);
      if (!file.ok) return file;
      const digest = { sha256: d.digest.slice('sha256:'.length), size: d.size };
      if (await remote.hasBlob(digest)) {
        skipped++;
        continue;
      }
      o.say(`imgmake push: uploading ${d.digest} (${d.size} bytes)`);
      await remote.putBlob(digest, file.value);
      uploaded++;
    }
    await remote.putManifest(tag, manifestBytes, top.mediaType);
    return ok({ reference: `${new URL(ref.value.base).host}/${ref.value.repository}:${tag}`, digest: top.digest, uploaded, skipped });
  } catch (e) {
    return fail(`pushing to ${o.ref} failed: ${(e as Error).message}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
