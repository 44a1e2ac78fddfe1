/**
 * An `oci://` remote reads the credentials `docker login` stored, as docker, skopeo and BuildKit
 * do, when the environment gives none: a real config.json (DOCKER_CONFIG), its `auths` entry or
 * a real credential helper program on PATH, against the real registry with the token flow
 * (test/helpers/registry.ts). The environment still wins.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { imgmake } from './helpers/cli.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { build, events, runners } from './helpers/runners.js';
import { dockerCredentials } from '../src/remote/docker-config.js';

const T = { timeout: 240_000 };
const REPO = 'imgmake/creds';
const root = mkdtempSync(join(tmpdir(), 'imgmake-docker-config-'));
const { runner, cleanup } = runners(root);
let registry: Registry;
let host = '';
let at = '';

before(async () => {
  registry = await startRegistry(join(root, 'registry'), { token: { user: 'ci', password: 's3cret' } });
  host = `127.0.0.1:${registry.port}`;
  at = `oci://${host}/${REPO}`;
});
after(async () => {
  await registry?.stop();
  await cleanup();
});

/** A DOCKER_CONFIG folder holding `config`. */
function dockerConfig(name: string, config: unknown): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('auths in $DOCKER_CONFIG/config.json: the build authenticates to the token service as that user and pushes', T, async () => {
  const dir = dockerConfig('auths', { auths: { [`http://${host}`]: { auth: b64('ci:s3cret') }, 'other.example:5000': { auth: b64('no:no') } } });
  registry.tokenRequests.length = 0;
  const r = await build(await runner(), ['--remote', at], { DOCKER_CONFIG: dir, NODE_EXTRA_CA_CERTS: registry.ca! });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(events(r, 'warning'), []);
  assert.equal(events(r, 'upload').length, 9);
  assert.ok(registry.tokenRequests.length >= 1);
  for (const t of registry.tokenRequests) assert.equal(t.user, 'ci');
});

test('a credential helper (credHelpers, then credsStore) is run as docker runs it; the environment wins over both', T, async () => {
  const bin = join(root, 'bin');
  mkdirSync(bin, { recursive: true });
  const asked = join(root, 'helper-asked');
  // A real helper program: `get`, the host on stdin, the credentials as JSON on stdout.
  writeFileSync(
    join(bin, 'docker-credential-imgmaketest'),
    `#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r host\necho "$host" >> ${asked}\nif [ "$host" = "${host}" ]; then echo '{"ServerURL":"'$host'","Username":"ci","Secret":"s3cret"}'; else echo "credentials not found in native keychain"; exit 1; fi\n`,
  );
  chmodSync(join(bin, 'docker-credential-imgmaketest'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: registry.ca! };
  const a = await runner();
  for (const config of [{ credHelpers: { [host]: 'imgmaketest' }, auths: { [host]: { auth: b64('wrong:wrong') } } }, { credsStore: 'imgmaketest' }]) {
    const dir = dockerConfig(`helper-${Object.keys(config)[0]}`, config);
    registry.tokenRequests.length = 0;
    const r = await build(a, ['--remote', at, '--remote-read-only'], { ...env, DOCKER_CONFIG: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(events(r, 'warning'), [], JSON.stringify(config));
    assert.equal(events(r, 'download').length + events(r, 'stage').filter((e) => e.status === 'cached').length > 0, true);
    assert.ok(registry.tokenRequests.length >= 1);
    for (const t of registry.tokenRequests) assert.equal(t.user, 'ci', JSON.stringify(config));
  }
  // IMGMAKE_REMOTE_USER wins: the token service is asked as that user (and refuses it).
  registry.tokenRequests.length = 0;
  const dir = dockerConfig('helper-env', { credsStore: 'imgmaketest' });
  const r = await imgmake(['-f', a.file, '--cache', a.cache, '--remote', at, 'plan', 'hello'], { env: { ...env, DOCKER_CONFIG: dir, IMGMAKE_REMOTE_USER: 'someone', IMGMAKE_REMOTE_PASSWORD: 'x' } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(registry.tokenRequests.length >= 1);
  for (const t of registry.tokenRequests) assert.equal(t.user, 'someone');
});

test('what cannot be used is said, and the remote is used without credentials', () => {
  const lines: string[] = [];
  const say = (l: string): void => void lines.push(l);
  const env = (dir: string) => ({ DOCKER_CONFIG: dir, PATH: '/nonexistent' });
  assert.equal(dockerCredentials('r.example', env(dockerConfig('token', { auths: { 'https://r.example/v1/': { identitytoken: 'xyz' } } })), say), undefined);
  assert.match(lines.pop()!, /identity token for r\.example.*IMGMAKE_REMOTE_USER/);
  assert.equal(dockerCredentials('r.example', env(dockerConfig('missing-helper', { credsStore: 'nosuch' })), say), undefined);
  assert.match(lines.pop()!, /docker-credential-nosuch is not on PATH/);
  const keyed = env(dockerConfig('url-key', { auths: { 'https://127.0.0.1:5000/v1/': { auth: b64('me:pw') } } }));
  assert.equal(dockerCredentials('127.0.0.1:5000', keyed, say)?.authorization, `Basic ${b64('me:pw')}`, 'a URL key is matched on its host and port');
  assert.equal(dockerCredentials('127.0.0.1:5001', keyed, say), undefined, 'another port is another registry');
  assert.equal(dockerCredentials('r.example', env(join(root, 'no-config-here')), say), undefined);
  assert.deepEqual(lines, []);
});
