/**
 * Registry credentials where docker, podman, skopeo and BuildKit keep them, for an `oci://`
 * remote when the environment gives none (IMGMAKE_REMOTE_AUTH and IMGMAKE_REMOTE_USER win):
 *
 *     $DOCKER_CONFIG/config.json, else ~/.docker/config.json
 *       credHelpers: { "HOST[:PORT]": "NAME" }   this registry's helper: docker-credential-NAME
 *       credsStore: "NAME"                        every other registry's helper
 *       auths: { "HOST[:PORT]": { auth: base64("user:password") } }   (or username + password)
 *
 * A helper is run as docker runs it: `docker-credential-NAME get`, the registry's host on stdin,
 * `{"Username": …, "Secret": …}` on stdout. An identity token (`identitytoken`, or a helper's
 * `<token>` user) is an OAuth refresh token, which imgmake's token flow does not speak: such an
 * entry is skipped, and said. Keys of `auths` are matched on their host (`https://HOST/v1/` is
 * HOST) and port, exactly: a registry known under several names needs a key for the one the
 * remote URL uses.
 *
 * This module reads; it never writes the config or runs `docker login`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface DockerCredentials {
  /** The Authorization header value (`Basic …`). */
  authorization: string;
  /** Where it came from, for messages: `auths in /root/.docker/config.json`. */
  from: string;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** Runs `docker-credential-NAME get` with `host` on stdin; its stdout (a seam for tests of the parsing). */
export type HelperRunner = (helper: string, host: string, env: NodeJS.ProcessEnv) => string;

// child_process is required when a helper runs: the CLI imports this module on every build,
// most of which never run one (issue 18, docs/bench.md "Start-up").
const runHelper: HelperRunner = (helper, host, env) =>
  (createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process')).execFileSync(`docker-credential-${helper}`, ['get'], { input: host, env, timeout: 20_000, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

function hostOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

function sameRegistry(key: string, host: string): boolean {
  const k = hostOfKey(key);
  const h = host.toLowerCase();
  return k === h;
}

export function dockerConfigFile(env: NodeJS.ProcessEnv): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json');
}

/**
 * The credentials docker would use for `host` (`HOST[:PORT]`); undefined when it has none.
 * `say` gets one line for a config or helper that could not be used (the remote is then used
 * without credentials, as docker would fail to log in).
 */
export function dockerCredentials(host: string, env: NodeJS.ProcessEnv, say: (line: string) => void, run: HelperRunner = runHelper): DockerCredentials | undefined {
  const file = dockerConfigFile(env);
  if (!existsSync(file)) return undefined;
  let config: DockerConfig;
  try {
    config = JSON.parse(readFileSync(file, 'utf8')) as DockerConfig;
  } catch (e) {
    say(`imgmake: ${file} is not readable JSON (${(e as Error).message}): its registry credentials are not used`);
    return undefined;
  }
  const helperKey = Object.keys(config.credHelpers ?? {}).find((k) => sameRegistry(k, host));
  const helper = helperKey !== undefined ? config.credHelpers![helperKey] : config.credsStore;
  if (helper) {
    let out: string;
    try {
      out = run(helper, host, env);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer; stdout?: Buffer };
      const why = err.code === 'ENOENT' ? `docker-credential-${helper} is not on PATH` : (err.stdout?.toString() || err.stderr?.toString() || err.message).trim();
      // "credentials not found" is a helper's answer for a registry it has nothing for.
      if (!/not found/i.test(why)) say(`imgmake: the credential helper of ${file} (${helper}) failed for ${host}: ${why}`);
      return undefined;
    }
    const got = JSON.parse(out) as { Username?: string; Secret?: string };
    if (!got.Secret) return undefined;
    if (got.Username === '<token>') {
      say(`imgmake: docker-credential-${helper} holds an identity token for ${host}, which imgmake cannot use: set IMGMAKE_REMOTE_USER and IMGMAKE_REMOTE_PASSWORD`);
      return undefined;
    }
    return { authorization: basic(got.Username ?? '', got.Secret), from: `docker-credential-${helper} (${file})` };
  }
  const key = Object.keys(config.auths ?? {}).find((k) => sameRegistry(k, host));
  if (key === undefined) return undefined;
  const entry = config.auths![key]!;
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    if (text.includes(':')) return { authorization: `Basic ${entry.auth.trim()}`, from: `auths in ${file}` };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { authorization: basic(entry.username, entry.password), from: `auths in ${file}` };
  if (entry.identitytoken) say(`imgmake: ${file} holds an identity token for ${host}, which imgmake cannot use: set IMGMAKE_REMOTE_USER and IMGMAKE_REMOTE_PASSWORD`);
  return undefined;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
