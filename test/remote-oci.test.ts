/**
 * The OCI registry remote against a REAL registry (Debian's docker-registry, distribution 2.8),
 * started on 127.0.0.1 with its own config and storage. Runners are cache directories, as in
 * remote-http.test.ts: runner A builds examples/hello and pushes; runner B, with an empty cache,
 * downloads instead of building, then changes one option. Then a corrupt blob, a registry that
 * is down, read-only mode, the registry token flow, and bad URLs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, ran, summary } from './helpers/cli.js';
import { assertCorruptRejected, build, events, flipByte, runners, sha256 } from './helpers/runners.js';
import { freePort } from './helpers/nginx.js';
import { startRegistry, type Registry } from './helpers/registry.js';

const T = { timeout: 180_000 };
const REPO = 'imgmake/hello-cache';
const root = mkdtempSync(join(tmpdir(), 'imgmake-oci-test-'));
let registry: Registry;
let url = '';
const { runner, cleanup } = runners(root);

before(async () => {
  registry = await startRegistry(join(root, 'registry'));
  url = `oci://127.0.0.1:${registry.port}/${REPO}`;
});

after(async () => {
  await registry?.stop();
  await cleanup();
});


/** The entry a tag points at, read straight from the registry's API. */
async function entryOf(reg: Registry, key: string): Promise<{ layers: { sha256: string; size: number }[] }> {
  const base = `http://127.0.0.1:${reg.port}/v2/${REPO}`;
  const manifest = (await (await fetch(`${base}/manifests/${key}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as {
    artifactType: string;
    config: { mediaType: string; digest: string };
    layers: { mediaType: string; digest: string }[];
  };
  assert.equal(manifest.artifactType, 'application/vnd.imgmake.tree.v1');
  assert.equal(manifest.config.mediaType, 'application/vnd.imgmake.entry.v1+json');
  const entry = (await (await fetch(`${base}/blobs/${manifest.config.digest}`)).json()) as { layers: { sha256: string; size: number }[] };
  assert.deepEqual(
    manifest.layers.map((l) => l.digest),
    [...new Set(entry.layers.map((l) => `sha256:${l.sha256}`))],
    'the manifest lists the blobs its entry needs, so the registry keeps them',
  );
  return entry;
}

let a: Awaited<ReturnType<typeof runner>>;
let finalKey = '';

test('runner A builds and pushes to the registry; runner B with an empty cache runs no stage and exports the same bytes; then only downstream stages run', T, async () => {
  a = await runner();
  const ra = await build(a, ['--remote', url]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(ran(ra).length, 9, 'A runs every stage');
  assert.deepEqual(events(ra, 'warning'), []);
  assert.equal(events(ra, 'upload').length, 9, 'each committed node is uploaded before the build ends');
  assert.equal(events(ra, 'upload').reduce((n, u) => n + u.blobs, 0), 9, 'one blob per layer, each sent once');
  const keys = ra.events.filter((e) => e.type === 'stage').map((e) => e.key as string);
  assert.deepEqual(registry.tags(REPO), [...keys].sort(), 'one manifest per node, tagged with its key');
  finalKey = ra.events.find((e) => e.type === 'stage' && e.node === 'tarball.tar')!.key;
  assert.equal((await entryOf(registry, finalKey)).layers.length, 1, 'the tarball pipeline: one layer');
  const rootfs = ra.events.filter((e) => e.type === 'stage' && String(e.node).startsWith('rootfs.'));
  const last = ra.events.find((e) => e.type === 'stage' && e.node === 'rootfs.manifest')!.key;
  assert.equal((await entryOf(registry, last)).layers.length, rootfs.length, 'the last rootfs stage: one layer per rootfs stage');

  const c = await runner();
  const pt = await imgmake(['-f', c.file, '--cache', c.cache, 'plan', 'hello'], { env: { IMGMAKE_REMOTE: url } });
  assert.equal(pt.code, 0, pt.stderr);
  assert.match(pt.stdout, /^remote +tarball\.tar /m);
  assert.match(pt.stdout, /nothing will run, 1 from the remote cache/);

  const b = await runner();
  const t0 = Date.now();
  const rb = await build(b, ['--remote', url]);
  const ms = Date.now() - t0;
  assert.equal(rb.code, 0, rb.stderr);
  assert.deepEqual(ran(rb), [], 'B runs no stage');
  assert.deepEqual(events(rb, 'download').map((e) => e.node), ['tarball.tar']);
  assert.equal(summary(rb).ok, true);
  assert.equal(sha256(join(b.dir, 'out', 'hello', 'hello.tar')), sha256(join(a.dir, 'out', 'hello', 'hello.tar')), 'byte-identical export');
  process.stderr.write(`# runner B from the registry: ${ms} ms; ${JSON.stringify(events(rb, 'download')[0])}\n`);

  const rb2 = await build(b, ['--remote', url, '--var', 'timezone=Europe/Paris']);
  assert.equal(rb2.code, 0, rb2.stderr);
  assert.deepEqual(ran(rb2), ['rootfs.greeting', 'rootfs.link', 'rootfs.locale', 'rootfs.manifest', 'rootfs.timezone', 'tarball.tar']);
  assert.deepEqual(events(rb2, 'download').map((e) => e.node), ['rootfs.hostname']);
  assert.equal(events(rb2, 'upload').length, 6, 'B pushes what it built');
  assert.equal(registry.tags(REPO).length, 15);
});

test('a corrupt blob in the registry is detected, not used: the node is built instead, and its upload points the tag at a whole blob', T, async () => {
  const before = await entryOf(registry, finalKey);
  const blob = registry.blobFile(before.layers[0]!.sha256);
  flipByte(blob);
  const d = await runner();
  assertCorruptRejected(await build(d, ['--remote', url]), d, a);
  // A registry never overwrites a blob it has, so the layer went up under a new digest.
  const after = await entryOf(registry, finalKey);
  assert.notEqual(after.layers[0]!.sha256, before.layers[0]!.sha256);
  for (const l of after.layers) assert.equal(sha256(registry.blobFile(l.sha256)), l.sha256, 'every blob the entry names is whole');
  const e = await runner();
  const re = await build(e, ['--remote', url]);
  assert.equal(re.code, 0, re.stderr);
  assert.deepEqual(ran(re), [], 'the next runner uses it again');
  assert.deepEqual(events(re, 'warning'), []);
  assert.equal(sha256(join(e.dir, 'out', 'hello', 'hello.tar')), sha256(join(a.dir, 'out', 'hello', 'hello.tar')));
});

test('a registry that is down costs a warning, not the build', T, async () => {
  const r = await build(await runner(), ['--remote', `oci://127.0.0.1:${await freePort()}/${REPO}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ran(r).length, 9);
  assert.deepEqual(events(r, 'warning').map((e) => e.reason), ['remote-unusable']);
  assert.match(events(r, 'warning')[0]!.message, /ECONNREFUSED/);
});

test('read-only mode reads the registry and writes nothing to it', T, async () => {
  const empty = await startRegistry(join(root, 'readonly'));
  try {
    const res = await build(await runner(), ['--remote', `oci://127.0.0.1:${empty.port}/${REPO}`, '--remote-read-only']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(ran(res).length, 9);
    assert.deepEqual(events(res, 'upload'), []);
    assert.deepEqual(events(res, 'warning'), []);
    const blobs = join(empty.data, 'docker', 'registry', 'v2', 'blobs');
    assert.ok(!existsSync(blobs) || readdirSync(blobs).length === 0, 'no blob was uploaded');
    assert.deepEqual(empty.tags(REPO), []);
  } finally {
    await empty.stop();
  }
});

test('the registry token flow: credentials from the environment go to the https token service, which grants pull,push (pull when read-only); without them, one warning', T, async () => {
  const guarded = await startRegistry(join(root, 'token'), { token: { user: 'ci', password: 's3cret' } });
  const at = `oci://127.0.0.1:${guarded.port}/${REPO}`;
  const trust = { NODE_EXTRA_CA_CERTS: guarded.ca! };
  try {
    const none = await build(await runner(), ['--remote', at], trust);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(events(none, 'warning').map((e) => e.reason), ['remote-unusable'], 'one warning, then the registry is left alone');
    assert.match(events(none, 'warning')[0]!.message, /token service .* HTTP 401.*IMGMAKE_REMOTE_USER/);
    assert.deepEqual(guarded.tags(REPO), []);

    const creds = { ...trust, IMGMAKE_REMOTE_USER: 'ci', IMGMAKE_REMOTE_PASSWORD: 's3cret' };
    guarded.tokenRequests.length = 0;
    const push = await build(await runner(), ['--remote', at], creds);
    assert.equal(push.code, 0, push.stderr);
    assert.deepEqual(events(push, 'warning'), []);
    assert.equal(events(push, 'upload').length, 9);
    assert.equal(guarded.tags(REPO).length, 9);
    assert.ok(guarded.tokenRequests.length >= 1 && guarded.tokenRequests.length <= 3, `a token is fetched once and reused (${guarded.tokenRequests.length} requests)`);
    for (const t of guarded.tokenRequests) {
      assert.deepEqual(t, { scope: [`repository:${REPO}:pull,push`], service: 'imgmake-test-registry', user: 'ci' });
    }

    guarded.tokenRequests.length = 0;
    const pull = await build(await runner(), ['--remote', at, '--remote-read-only'], creds);
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(ran(pull), []);
    assert.equal(events(pull, 'download').length, 1);
    assert.deepEqual(guarded.tokenRequests.map((t) => t.scope), [[`repository:${REPO}:pull`]]);
  } finally {
    await guarded.stop();
  }
});

test('a token realm over plain http on another origin than the registry never gets the credentials: the request goes anonymous, and the warning says why', T, async () => {
  const guarded = await startRegistry(join(root, 'token-http'), { token: { user: 'ci', password: 's3cret', plainHttp: true } });
  const at = `oci://127.0.0.1:${guarded.port}/${REPO}`;
  try {
    const res = await build(await runner(), ['--remote', at], { IMGMAKE_REMOTE_USER: 'ci', IMGMAKE_REMOTE_PASSWORD: 's3cret' });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(guarded.tokenRequests.length >= 1, 'the token service was asked');
    assert.deepEqual(
      guarded.tokenRequests.map((t) => t.user),
      guarded.tokenRequests.map(() => null),
      'no request to the plain-http realm carried the credentials',
    );
    const warnings = events(res, 'warning');
    assert.deepEqual(warnings.map((e) => e.reason), ['remote-unusable']);
    assert.match(warnings[0]!.message, /credentials were not sent to the token service http:\/\/127\.0\.0\.1:\d+/);
    assert.deepEqual(guarded.tags(REPO), [], 'nothing was pushed');
  } finally {
    await guarded.stop();
  }
});

test('a registry URL without a repository, or with one a registry refuses, is a usage error', T, async () => {
  const r = await runner();
  for (const [remote, why] of [
    ['oci://127.0.0.1:5000', /names no repository/],
    ['oci://127.0.0.1:5000/Team/Cache', /"Team\/Cache" is not a repository name/],
  ] as const) {
    const res = await imgmake(['-f', r.file, '--cache', r.cache, '--remote', remote, 'build', 'hello']);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, why);
    assert.match(res.stderr, /oci:\/\/HOST\[:PORT\]\/REPOSITORY/);
  }
  assert.deepEqual(readdirSync(r.cache), [], 'the cache is untouched');
});
