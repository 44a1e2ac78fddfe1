/**
 * `imgmake push`: the `oci` image type's archive sent to a REAL registry (Debian's
 * docker-registry on loopback, as test/remote-oci.test.ts runs it) with the remote cache's
 * registry code, then read back by skopeo the way a puller would: the same manifest digest,
 * labels and layer. A second push uploads nothing; a bad reference is exit 2, a broken archive
 * exit 1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, projectWith } from './helpers/cli.js';
import { startRegistry, type Registry } from './helpers/registry.js';

let registry: Registry;
const root = mkdtempSync(join(tmpdir(), 'imgmake-push-test-'));
before(async () => {
  registry = await startRegistry(join(root, 'registry'));
});
after(async () => {
  await registry?.stop();
  rmSync(root, { recursive: true, force: true });
});

const PROJECT = `version: 1
pipelines:
  os:
    stages:
      - rule: files.write
        options: { files: [{ path: /etc/os-release, content: "ID=tiny\\n" }] }
  oci:
    stages:
      - rule: archive.oci
        inputs: { tree: { pipeline: os } }
        options: { tag: v1, labels: { org.opencontainers.image.title: tiny } }
targets:
  oci: { pipeline: oci, export: [image.oci.tar] }
`;

const skopeo = (...args: string[]): Record<string, any> => JSON.parse(execFileSync('skopeo', args, { encoding: 'utf8' })) as Record<string, any>;

test('imgmake push: the oci archive lands in a registry under its tag, skopeo reads the same image; again uploads nothing', { timeout: 120_000 }, async (t) => {
  const p = await projectWith(PROJECT);
  t.after(p.cleanup);
  const b = await imgmake(['-f', p.file, 'build', 'oci']);
  assert.equal(b.code, 0, b.stderr);
  const archive = join(p.dir, 'out', 'oci', 'image.oci.tar');
  const local = skopeo('inspect', `oci-archive:${archive}`);
  const host = `127.0.0.1:${registry.port}`;

  const pushed = await imgmake(['push', archive, `oci://${host}/team/tiny`]);
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.equal(pushed.stdout, `pushed ${host}/team/tiny:v1@${local['Digest']} (2 blobs uploaded, 0 already there)\n`, 'the tag from the archive\'s index');
  const remote = skopeo('inspect', '--tls-verify=false', `docker://${host}/team/tiny:v1`);
  assert.equal(remote['Digest'], local['Digest'], 'the registry holds the same manifest bytes');
  assert.deepEqual(remote['Labels'], { 'org.opencontainers.image.title': 'tiny' });
  assert.deepEqual(remote['Layers'], local['Layers']);

  const again = await imgmake(['push', archive, `oci://${host}/team/tiny:latest`]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /:latest@sha256:[0-9a-f]{64} \(0 blobs uploaded, 2 already there\)\n$/);
  assert.equal(skopeo('inspect', '--tls-verify=false', `docker://${host}/team/tiny:latest`)['Digest'], local['Digest']);
});

test('imgmake push: a bad reference is exit 2; a broken archive exit 1 with the cause', { timeout: 60_000 }, async () => {
  const bad = await imgmake(['push', 'x.tar', 'docker://example/x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a registry reference: write oci:\/\/HOST\[:PORT\]\/REPOSITORY\[:TAG\]/);
  const upper = await imgmake(['push', 'x.tar', `oci://127.0.0.1:${registry.port}/Tiny`]);
  assert.equal(upper.code, 2);
  const junk = join(root, 'junk.tar');
  writeFileSync(junk, 'not a tar');
  const broken = await imgmake(['push', junk, `oci://127.0.0.1:${registry.port}/tiny`]);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /junk\.tar: not a readable tar/);
  assert.ok(readFileSync(junk, 'utf8') === 'not a tar');
});
