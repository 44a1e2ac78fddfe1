/**
 * src/packages/rpm/resolve.ts: the pure parts (request canonical form, libsolv's problem rules
 * turned into a chain or a conflict), then real resolutions by dnf in the buildroot sandbox
 * against the local signed repository of the RPM test world.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { nameOf, problemOf, requestOf, resolve } from '../src/packages/rpm/resolve.js';
import type { RpmRequest } from '../src/packages/rpm/types.js';
import { bwrapSandbox } from '../src/sandbox/run.js';
import { rpmWorld } from './helpers/rpm-repo.js';
import { rpmBuildroot } from './helpers/rpm-buildroot.js';

after(async () => (await rpmWorld()).nginx.stop());

test('requestOf: defaults spelled out (gpgcheck on, repo_gpgcheck off, x86_64), packages sorted and unique', () => {
  const r = requestOf({ repos: [{ id: 'os', baseurl: 'http://repo.invalid/os/', gpgkey: ['http://repo.invalid/key'] }], packages: ['b', 'a', 'b'] });
  assert.deepEqual(r, {
    repos: [{ id: 'os', baseurl: 'http://repo.invalid/os/', gpgkey: ['http://repo.invalid/key'], gpgcheck: true, repo_gpgcheck: false }],
    packages: ['a', 'b'],
    arch: 'x86_64',
    releasever: '',
  });
});

test('nameOf: the name of a NEVRA, epoch or not', () => {
  assert.equal(nameOf('imgtest-logger-a-1:2.0-3.noarch'), 'imgtest-logger-a');
  assert.equal(nameOf('imgtest-broken-app-1.0-1.noarch'), 'imgtest-broken-app');
  assert.equal(nameOf('bare'), 'bare');
});

test('problemOf: a chain through a virtual capability; a conflict names both packages', () => {
  const chain = problemOf(
    ['package top-1-1.noarch requires virt, but none of the providers can be installed', 'package mid-2-1.x86_64 requires low >= 2, but none of the providers can be installed', 'nothing provides gone needed by low-1:2-1.noarch'],
    { virt: ['mid'], low: ['low'] },
    ['top'],
  );
  assert.ok(!chain.ok && chain.error.reason === 'rpm-unresolvable');
  assert.deepEqual(chain.error.reason === 'rpm-unresolvable' && chain.error.chain, ['top', 'mid', 'low', 'gone']);
  const c = problemOf(['package a-1-1.noarch conflicts with b provided by b-1:2-3.noarch', 'conflicting requests'], {}, ['a', 'b']);
  assert.ok(!c.ok && c.error.reason === 'rpm-conflict' && c.error.package === 'a' && c.error.with === 'b');
});

test('resolve: dnf in the buildroot locks a Requires chain through a virtual provide, with epochs, sha256 and locations', { timeout: 600_000 }, async (t) => {
  const [w, br] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const work = mkdtempSync(join(tmpdir(), 'imgmake-rpm-resolve-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const req = (packages: string[], more: Partial<RpmRequest['repos'][0]> = {}): RpmRequest =>
    requestOf({ repos: [{ id: 'test', baseurl: w.baseurl, gpgkey: [w.keyUrl], gpgcheck: true, repo_gpgcheck: true, ...more }], packages });
  const opts = { sandbox: bwrapSandbox, buildroot: { kind: 'dir' as const, path: br.dir }, workDir: join(work, 'w'), logFile: join(work, 'log') };
  writeFileSync(opts.logFile, '');

  const r = await resolve(req(['imgtest-app', 'imgtest-svc']), opts);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error) + readFileSync(opts.logFile, 'utf8'));
  assert.deepEqual(
    r.value.map((p) => `${p.name} ${p.epoch} ${p.version} ${p.release} ${p.arch} ${p.repo}`),
    [
      'imgtest-app 0 3.1 2 noarch test',
      'imgtest-filesystem 0 1.0 1 noarch test',
      'imgtest-lib 0 1.2 1 noarch test',
      'imgtest-logger-a 1 2.0 3 noarch test', // the one provider of the virtual imgtest-logger
      'imgtest-shell 0 1.35 1 x86_64 test',
      'imgtest-svc 0 1.0 1 noarch test',
    ],
  );
  for (const p of r.value) {
    const bytes = readFileSync(w.file(p.name));
    assert.equal(p.location, basename(w.file(p.name)));
    assert.equal(p.sha256, createHash('sha256').update(bytes).digest('hex'), p.name);
    assert.equal(p.size, bytes.length, p.name);
  }

  const broken = await resolve(req(['imgtest-broken-app']), opts);
  assert.ok(!broken.ok && broken.error.reason === 'rpm-unresolvable', JSON.stringify(broken));
  assert.deepEqual(broken.error.chain, ['imgtest-broken-app', 'imgtest-broken', 'imgtest-missing']);
  assert.match(broken.error.message, /^imgtest-broken-app → imgtest-broken → imgtest-missing: nothing provides imgtest-missing/);

  const conflict = await resolve(req(['imgtest-app', 'imgtest-conflicting']), opts);
  assert.ok(!conflict.ok && conflict.error.reason === 'rpm-conflict', JSON.stringify(conflict));
  assert.equal(conflict.error.package, 'imgtest-conflicting');
  assert.equal(conflict.error.with, 'imgtest-logger-a');

  const unknown = await resolve(req(['imgtest-app', 'no-such-thing']), opts);
  assert.ok(!unknown.ok && unknown.error.reason === 'rpm-no-such-package' && unknown.error.spec === 'no-such-thing', JSON.stringify(unknown));

  // repo_gpgcheck: repomd.xml's signature is checked against gpgkey; another key (served
  // beside the real one) fails the repository.
  const gnupg = join(work, 'gnupg');
  execFileSync('mkdir', ['-m', '700', gnupg]);
  execFileSync('gpg', ['--batch', '--homedir', gnupg, '--passphrase', '', '--quick-gen-key', 'another <other@invalid>', 'rsa2048', 'sign', 'never'], { stdio: 'ignore' });
  writeFileSync(join(w.nginx.www, 'other-key.asc'), execFileSync('gpg', ['--batch', '--homedir', gnupg, '--armor', '--export'], { encoding: 'utf8' }));
  execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']);
  const otherUrl = w.keyUrl.replace(/[^/]*$/, 'other-key.asc');
  const badRepo = await resolve(req(['imgtest-app'], { gpgkey: [otherUrl] }), { ...opts, workDir: join(work, 'w2') });
  assert.ok(!badRepo.ok && badRepo.error.reason === 'rpm-repo-failed', JSON.stringify(badRepo));
  // The same key with repo_gpgcheck off: the metadata is read (package signatures are verify's).
  const off = await resolve(req(['imgtest-app'], { gpgkey: [otherUrl], repo_gpgcheck: false }), { ...opts, workDir: join(work, 'w3') });
  assert.ok(off.ok, JSON.stringify(off));

  const bad = await resolve(req(['imgtest-app'], { gpgkey: [] }), opts);
  assert.ok(!bad.ok && bad.error.reason === 'rpm-bad-request' && /gpgcheck on but no gpgkey/.test(bad.error.message));
});
