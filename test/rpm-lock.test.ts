/**
 * src/packages/rpm/lock.ts and the rpm format's pure face (index.ts): the lock entry's JSON
 * round trip and its validation messages, the key digest (NEVRA and sha256, not where a
 * package came from), artifacts, URLs, and reading gpgkey URLs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { artifactOf, fetchKeys, lockJson, lockRequestOf, packagesDigest, packageUrl, parseLockEntry, requestOf, rpmFormat, type LockedRpm } from '../src/packages/rpm/index.js';

const A: LockedRpm = { name: 'bash', epoch: 0, version: '5.2.26', release: '3.fc40', arch: 'x86_64', repo: 'fedora', location: 'Packages/b/bash-5.2.26-3.fc40.x86_64.rpm', size: 1800000, sha256: 'a'.repeat(64) };
const B: LockedRpm = { name: 'shadow-utils', epoch: 2, version: '4.15.1', release: '2.fc40', arch: 'x86_64', repo: 'updates', location: 'Packages/s/shadow-utils-4.15.1-2.fc40.x86_64.rpm', size: 1300000, sha256: 'b'.repeat(64) };
const REQ = requestOf({
  repos: [
    { id: 'fedora', baseurl: 'https://mirror.invalid/fedora/releases/$releasever/Everything/$basearch/os/', gpgkey: ['https://mirror.invalid/key'] },
    { id: 'updates', metalink: 'https://mirror.invalid/metalink?repo=updates-released-f$releasever&arch=$basearch', gpgkey: ['https://mirror.invalid/key'], repo_gpgcheck: true },
  ],
  packages: ['shadow-utils', 'bash'],
  releasever: '40',
});

test('lock: the request is kept without URLs; the entry round-trips through JSON in a fixed order', () => {
  const lr = lockRequestOf(REQ);
  assert.deepEqual(lr, { repos: [{ id: 'fedora', gpgcheck: true, repo_gpgcheck: false }, { id: 'updates', gpgcheck: true, repo_gpgcheck: true }], packages: ['bash', 'shadow-utils'], arch: 'x86_64', releasever: '40' });
  assert.doesNotMatch(JSON.stringify(lockJson(lr, [B, A])), /mirror\.invalid/);
  const j = JSON.parse(JSON.stringify(lockJson(lr, [B, A])));
  assert.deepEqual(j.packages.map((p: LockedRpm) => p.name), ['bash', 'shadow-utils']);
  assert.deepEqual(Object.keys(j.packages[1]), ['name', 'epoch', 'version', 'release', 'arch', 'repo', 'location', 'size', 'sha256']);
  const back = parseLockEntry(j.request, j.packages);
  assert.ok(back.ok, !back.ok ? back.error : '');
  assert.deepEqual(back.value, { request: lr, packages: [A, B] });
});

test('lock: a bad entry is refused, saying where', () => {
  const lr = lockJson(lockRequestOf(REQ), [A, B]);
  const bad = (change: Partial<Record<keyof LockedRpm, unknown>>, i = 1) => {
    const ps = structuredClone(lr.packages) as Record<string, unknown>[];
    Object.assign(ps[i]!, change);
    const r = parseLockEntry(lr.request, ps);
    return r.ok ? 'accepted' : r.error;
  };
  assert.equal(bad({ repo: 'elsewhere' }), 'packages[1] (shadow-utils): repo: expected one of the request\'s repository ids (fedora, updates), got "elsewhere"');
  assert.equal(bad({ location: '../../etc/passwd.rpm' }), 'packages[1] (shadow-utils): location: expected a relative path to an .rpm, got "../../etc/passwd.rpm"');
  assert.equal(bad({ location: 'https://x.invalid/a.rpm' }), 'packages[1] (shadow-utils): location: expected a relative path to an .rpm, got "https://x.invalid/a.rpm"');
  assert.equal(bad({ sha256: 'x' }), 'packages[1] (shadow-utils): sha256: expected 64 lowercase hex digits, got "x"');
  assert.equal(bad({ epoch: -1 }), 'packages[1] (shadow-utils): epoch: expected a non-negative integer, got -1');
  assert.equal(bad({ name: 'aaa' }), 'packages[1] (aaa): packages must be sorted by name and arch without duplicates (after bash.x86_64)');
  assert.match(String((parseLockEntry({ ...lr.request, extra: 1 }, lr.packages) as { error: string }).error), /^request: unknown field "extra"$/);
});

test('digest: changes with a NEVRA or sha256, not with where a package came from', () => {
  const d = packagesDigest([A, B]);
  assert.match(d, /^sha256:[0-9a-f]{64}$/);
  assert.equal(packagesDigest([B, A]), d);
  assert.equal(packagesDigest([{ ...A, repo: 'other', location: 'x/bash.rpm', size: 1 }, B]), d);
  assert.notEqual(packagesDigest([{ ...A, release: '4.fc40' }, B]), d);
  assert.notEqual(packagesDigest([A, { ...B, epoch: 3 }]), d);
  assert.notEqual(packagesDigest([{ ...A, sha256: 'c'.repeat(64) }, B]), d);
});

test('artifact and URL: file named as rpmbuild names it; base URL with $releasever/$basearch, segments encoded', () => {
  assert.deepEqual(artifactOf(B), { name: 'shadow-utils', version: '2:4.15.1-2.fc40', sha256: B.sha256, size: B.size, file: 'shadow-utils-4.15.1-2.fc40.x86_64.rpm', where: 'updates:Packages/s/shadow-utils-4.15.1-2.fc40.x86_64.rpm', metadata: { arch: 'x86_64', repo: 'updates' } });
  const located = rpmFormat.locate({}, REQ);
  assert.ok(located.ok);
  const url = (e: LockedRpm) => located.value(artifactOf(e), e);
  assert.equal(url(A), 'https://mirror.invalid/fedora/releases/40/Everything/x86_64/os/Packages/b/bash-5.2.26-3.fc40.x86_64.rpm');
  assert.equal(packageUrl(REQ.repos, { ...A, location: 'P/c++ lib.rpm' }, REQ), 'https://mirror.invalid/fedora/releases/40/Everything/x86_64/os/P/c%2B%2B%20lib.rpm');
  assert.throws(() => url(B), /repository updates has no baseurl \(only a metalink or mirrorlist\)/);
  assert.equal(rpmFormat.describe(REQ), 'fedora,updates x86_64 + bash shadow-utils');
});

test('fetchKeys: armored keys from file:// URLs; a missing or non-key URL fails naming the repository', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'imgmake-rpm-keys-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ==\n-----END PGP PUBLIC KEY BLOCK-----\n';
  writeFileSync(join(d, 'key.asc'), key);
  writeFileSync(join(d, 'junk'), 'hello');
  const req = (url: string) => requestOf({ repos: [{ id: 'r', baseurl: 'file:///repo', gpgkey: [url] }, { id: 'off', baseurl: 'file:///o', gpgcheck: false }], packages: ['a'] });
  assert.deepEqual(await fetchKeys(req(pathToFileURL(join(d, 'key.asc')).href)), { ok: true, value: { r: [key] } });
  const junk = await fetchKeys(req(pathToFileURL(join(d, 'junk')).href));
  assert.ok(!junk.ok && /^repository r: gpgkey file:.*junk is not an armored OpenPGP public key$/.test(junk.error));
  const gone = await fetchKeys(req(pathToFileURL(join(d, 'nope')).href));
  assert.ok(!gone.ok && /^repository r: gpgkey file:.*nope: ENOENT/.test(gone.error));
});

test('resolve and verify refuse to run without a buildroot tree (never the host\'s dnf)', async () => {
  const r = await rpmFormat.resolve(REQ, { sandbox: { run: () => Promise.reject(new Error('must not run')) }, workDir: '/nonexistent', logFile: '/nonexistent', buildroot: { kind: 'host' } });
  assert.ok(!r.ok && typeof r.error === 'string' && /never on the host/.test(r.error));
});
