/**
 * Which remote cache a build has: `remoteConfig` reads `--remote`/`IMGMAKE_REMOTE`,
 * `--remote-read-only`/`IMGMAKE_REMOTE_READ_ONLY` and the credentials (environment only:
 * `IMGMAKE_REMOTE_AUTH`, a whole Authorization header value, or `IMGMAKE_REMOTE_USER` +
 * `IMGMAKE_REMOTE_PASSWORD`). A module apart from the remote itself (index.ts, its transports
 * and blobs), which a build without a remote never loads (docs/bench.md, "Start-up").
 */
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import { dockerCredentials } from './docker-config.js';
import { parseRemoteUrl, type RemoteUrl } from './url.js';

export interface RemoteConfig extends RemoteUrl {
  readOnly: boolean;
  /** The Authorization header value, from the environment. */
  authorization?: string;
}

/**
 * The remote of this build: `--remote`, else `IMGMAKE_REMOTE` (an empty one means none), else the
 * definition's `cache: { remote: … }`, which load has checked; undefined for none.
 */
export function remoteConfig(o: { remote?: string; remoteReadOnly?: boolean }, env: NodeJS.ProcessEnv, fromDefinition?: RemoteUrl): Result<RemoteConfig | undefined, Diagnostic> {
  const given = (o.remote ?? env.IMGMAKE_REMOTE)?.trim();
  const parsed = given === undefined ? fromDefinition : given === '' ? undefined : parseRemoteUrl(given);
  if (!parsed) return ok(undefined);
  if ('message' in parsed) {
    const what = o.remote !== undefined ? `--remote ${parsed.shown}` : `IMGMAKE_REMOTE=${parsed.shown}`;
    return fail(diagnostic('usage', `${what}: ${parsed.message}`, undefined, parsed.hint));
  }
  const user = env.IMGMAKE_REMOTE_USER;
  const fromEnv = env.IMGMAKE_REMOTE_AUTH || (user ? `Basic ${Buffer.from(`${user}:${env.IMGMAKE_REMOTE_PASSWORD ?? ''}`).toString('base64')}` : undefined);
  // A registry: then what `docker login` stored, as docker, skopeo and BuildKit read it.
  const authorization = fromEnv ?? (parsed.oci ? dockerCredentials(new URL(parsed.oci.base).host, env, (l) => process.stderr.write(`${l}\n`))?.authorization : undefined);
  const readOnly = o.remoteReadOnly === true || /^(1|true|yes)$/i.test(env.IMGMAKE_REMOTE_READ_ONLY ?? '');
  return ok({ ...parsed, readOnly, ...(authorization ? { authorization } : {}) });
}
