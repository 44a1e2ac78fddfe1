/**
 * `build --with-sbom` and `--with-manifest` on a real Debian tree, without a second cold Debian
 * build: the RPM tests' Debian buildroot (test/helpers/rpm-buildroot.ts: an apt.install stage
 * of 180-odd packages, built once in a cache shared by every test run of this machine) is the
 * "os" here, and a small `image` pipeline takes it as an input, as a disk pipeline takes its
 * root tree. The pipeline is word for word the fixture's, so its stages have the shared
 * cache's keys and nothing of Debian runs again.
 *
 * Shows: the SBOM validates against the official SPDX 2.3 schema, names exactly the packages
 * `dpkg-query --admindir` lists as installed in that tree (name, architecture, version), each
 * with the lock's sha256 of its .deb; a second build gives the same bytes; and the manifest
 * with its lock, alone in another folder, plans every stage cached with the same keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, repoRoot } from './helpers/cli.js';
import { rpmBuildroot } from './helpers/rpm-buildroot.js';
import { spdxConsistency, spdxValidator } from './helpers/spdx.js';

const SHARED = process.env['IMGMAKE_RPM_TEST_CACHE'] ?? '/var/tmp/imgmake-rpm-test';

const IMAGE = `
  image:
    stages:
      - name: disk
        rule: shell.run
        inputs:
          root: { pipeline: rpm-buildroot }
        options:
          script: ls "$INPUTS/root/usr/bin" | wc -l > image.txt

targets:
  image: { pipeline: image, export: [image.txt] }
`;

test('build --with-sbom on a Debian tree: SPDX 2.3 valid, the packages dpkg-query lists, the same bytes twice; its manifest plans all cached', { timeout: 900_000 }, async (t) => {
  const br = await rpmBuildroot();
  const fixture = await readFile(join(repoRoot, 'test', 'fixtures', 'rpm', 'buildroot.yaml'), 'utf8');
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-sbom-debian-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'imgmake.yaml'), fixture.slice(0, fixture.indexOf('\ntargets:')) + IMAGE);
  await cp(join(SHARED, 'imgmake.lock'), join(dir, 'imgmake.lock'));
  const cache = join(SHARED, 'cache');

  const started = Date.now();
  const a = await imgmake(['--json', '-f', join(dir, 'imgmake.yaml'), '--cache', cache, 'build', 'image', '--locked', '--with-sbom', '--with-manifest']);
  assert.equal(a.code, 0, a.stderr + a.stdout.slice(-3000));
  t.diagnostic(`build with SBOM and manifest: ${Date.now() - started} ms`);
  assert.ok(!a.events.some((e) => e.type === 'stage' && e.status === 'ran' && String(e.node).startsWith('rpm-buildroot.')), 'the Debian stages came from the shared cache');
  const text = await readFile(join(dir, 'out', 'image.spdx.json'), 'utf8');
  const doc = JSON.parse(text);
  assert.deepEqual(spdxValidator()(doc), []);
  assert.deepEqual(spdxConsistency(doc), []);
  assert.match(doc.creationInfo.comment, /pipeline rpm-buildroot,/);

  // What dpkg-query (the host's, reading the exported tree's database: it only reads) lists as installed.
  const listed = execFileSync('dpkg-query', [`--admindir=${join(br.dir, 'var', 'lib', 'dpkg')}`, '-W', '-f', '${db:Status-Status} ${Package} ${Architecture} ${Version}\n'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('installed '))
    .map((l) => l.slice('installed '.length))
    .sort();
  assert.ok(listed.length > 100, `${listed.length} packages`);
  const pkgs = doc.packages.slice(1);
  const named = pkgs.map((p: any) => `${p.name} ${/[?&]arch=([^&]+)/.exec(p.externalRefs[0].referenceLocator)![1]} ${p.versionInfo}`).sort();
  assert.deepEqual(named, listed);
  for (const p of pkgs) {
    assert.match(p.checksums?.[0]?.checksumValue ?? '', /^[0-9a-f]{64}$/, `${p.name}: the .deb's sha256 from the lock`);
    assert.match(p.externalRefs[0].referenceLocator, /^pkg:deb\/debian\/[^@]+@[^?]+\?arch=(amd64|all)&distro=debian-12$/);
  }
  assert.ok(pkgs.filter((p: any) => p.licenseDeclared !== 'NOASSERTION').length > pkgs.length / 2, 'most Debian packages declare their licenses machine-readably');

  const b = await imgmake(['--json', '-f', join(dir, 'imgmake.yaml'), '--cache', cache, '--out', join(dir, 'out2'), 'build', 'image', '--locked', '--with-sbom']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await readFile(join(dir, 'out2', 'image.spdx.json'), 'utf8'), text, 'the same image gives the same bytes');

  // The manifest and its lock, alone elsewhere: the same keys, every stage cached, the same image.
  const elsewhere = join(dir, 'elsewhere');
  await cp(join(dir, 'out', 'image.manifest'), elsewhere, { recursive: true });
  assert.deepEqual((await readdir(elsewhere)).sort(), ['imgmake.lock', 'imgmake.yaml']);
  const plan = async (file: string) => {
    const r = await imgmake(['--json', '-f', file, '--cache', cache, 'plan', 'image']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return r.events.filter((e) => e.type === 'plan-stage').map((e) => `${e.node} ${e.key} ${e.status}`);
  };
  const original = await plan(join(dir, 'imgmake.yaml'));
  assert.deepEqual(await plan(join(elsewhere, 'imgmake.yaml')), original);
  assert.ok(original.every((l) => l.endsWith(' cached')), original.join('\n'));
  const c = await imgmake(['--json', '-f', join(elsewhere, 'imgmake.yaml'), '--cache', cache, 'build', '--locked']);
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(await readFile(join(elsewhere, 'out', 'image', 'image.txt')), await readFile(join(dir, 'out', 'image', 'image.txt')));
});
