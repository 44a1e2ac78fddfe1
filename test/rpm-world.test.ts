/**
 * The RPM test world itself (test/helpers/rpm-repo.ts): every spec built, every package but
 * imgtest-unsigned signed by the throw-away key, the repository indexed and served. Checked with
 * the host's rpm, which only the fixtures use.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpmWorld, UNSIGNED } from './helpers/rpm-repo.js';

after(async () => (await rpmWorld()).nginx.stop());

test('the RPM test world: packages built, signed but one, indexed, served', async () => {
  const w = await rpmWorld();
  assert.deepEqual(w.names, [
    'imgtest-app', 'imgtest-broken', 'imgtest-broken-app', 'imgtest-conflicting', 'imgtest-filesystem',
    'imgtest-lib', 'imgtest-logger-a', 'imgtest-shell', 'imgtest-svc', 'imgtest-unsigned',
  ]);
  const kr = mkdtempSync(join(tmpdir(), 'imgmake-rpm-keyring-'));
  try {
    execFileSync('rpmkeys', ['--dbpath', kr, '--import', w.keyFile]);
    const check = (name: string) =>
      spawnSync('rpmkeys', ['--dbpath', kr, '--define', '_pkgverify_level signature', '--checksig', w.file(name)], { encoding: 'utf8' });
    for (const name of w.names.filter((n) => n !== UNSIGNED)) assert.equal(check(name).status, 0, `${name}: ${check(name).stdout}`);
    assert.notEqual(check(UNSIGNED).status, 0);
  } finally {
    rmSync(kr, { recursive: true, force: true });
  }
  const repomd = await fetch(`${w.baseurl}repodata/repomd.xml`);
  assert.equal(repomd.status, 200);
  assert.match(await repomd.text(), /primary\.xml/);
  assert.equal((await fetch(`${w.baseurl}repodata/repomd.xml.asc`)).status, 200);
  assert.match(await (await fetch(w.keyUrl)).text(), /BEGIN PGP PUBLIC KEY BLOCK/);
  const virt = execFileSync('rpm', ['-qp', '--provides', w.file('imgtest-logger-a')], { encoding: 'utf8' });
  assert.match(virt, /^imgtest-logger = 2\.0$/m);
});
