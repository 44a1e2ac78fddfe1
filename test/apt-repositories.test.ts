/**
 * The apt format's extra repositories (a blueprint's `install_from`), the pure parts: what the
 * lock keeps of them (ids, suites, components, key digests; never a URL), the sources apt
 * resolves with, which repository a package came from, where it is fetched again, and that the
 * stage's key sees the locked set, not the option. Resolving against a real signed repository
 * is test/catalog-repositories.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { apt, packageUrl } from '../src/packages/apt/index.js';
import { joinAptOutput, keyFiles, lockFileText, lockJson, lockRequestOf, parseLockEntry, sourcesList, type ExtraRepository, type LockedPackage } from '../src/packages/apt/lock.js';

const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n\r\nmDMEZ…\r\n-----END PGP PUBLIC KEY BLOCK-----\r\n';
const extra: ExtraRepository = { id: 'extra', uri: 'http://127.0.0.1:8080/repo/', suite: 'stable', components: ['main'], keys: [KEY] };
const flat: ExtraRepository = { id: 'flat', uri: 'https://flat.example.invalid/debs', suite: './', trusted: true };
const mirror = { archive: 'http://mirror.example.invalid/debian', security: 'http://mirror.example.invalid/debian-security' };
const base = { mirror, suite: 'bookworm', components: ['main'], architecture: 'amd64' as const, variant: 'important' as const, packages: ['imgmake-extra-hello', 'hello'] };

test('the lock request keeps each repository\'s id, suite, components and key digests, never its URL; without repositories it is what it was', () => {
  const m = lockRequestOf({ ...base, repositories: [extra, flat] });
  const digest = createHash('sha256').update('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ…\n-----END PGP PUBLIC KEY BLOCK-----\n').digest('hex');
  assert.deepEqual(m.repositories, [
    { id: 'extra', suite: 'stable', components: ['main'], keys: [digest] },
    { id: 'flat', suite: './', components: [], keys: [], trusted: true },
  ]);
  assert.ok(!JSON.stringify(m).includes('127.0.0.1'));
  // A lock made before repositories existed matches a request without them, byte for byte.
  const plain = lockRequestOf(base);
  assert.equal('repositories' in plain, false);
  assert.equal(JSON.stringify(lockJson([], plain).request), '{"suite":"bookworm","components":["main"],"architecture":"amd64","variant":"important","packages":["hello","imgmake-extra-hello"],"sources":["archive","security"]}');
  assert.equal(JSON.stringify(lockRequestOf({ ...base, repositories: [] })), JSON.stringify(plain));
});

test('sources: the mirror\'s lines, then one per repository, signed-by its own key files or trusted', () => {
  assert.equal(
    sourcesList({ ...base, repositories: [extra, flat] }, '/usr/share/keyrings/debian-archive-keyring.gpg', '/w/etc/keys'),
    [
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.invalid/debian bookworm main',
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.invalid/debian bookworm-updates main',
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.invalid/debian-security bookworm-security main',
      'deb [signed-by=/w/etc/keys/extra-1.asc] http://127.0.0.1:8080/repo stable main',
      'deb [trusted=yes] https://flat.example.invalid/debs ./',
      '',
    ].join('\n'),
  );
  assert.deepEqual(keyFiles([extra, flat], '/w/etc/keys'), { '/w/etc/keys/extra-1.asc': '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ…\n-----END PGP PUBLIC KEY BLOCK-----\n' });
});

const sha = (c: string) => c.repeat(64);
const apt_out = {
  simulate: 'Inst hello (2.10-3 Debian:12/stable [amd64])\nInst imgmake-extra-hello (1.0 stable [all])\n',
  uris: [
    `'http://mirror.example.invalid/debian/pool/main/h/hello/hello_2.10-3_amd64.deb' hello_2.10-3_amd64.deb 53000 SHA256:${sha('a')}`,
    `'http://127.0.0.1:8080/repo/pool/main/i/imgmake-extra-hello/imgmake-extra-hello_1.0_all.deb' imgmake-extra-hello_1.0_all.deb 900 SHA256:${sha('b')}`,
  ].join('\n'),
  show: `Package: hello\nVersion: 2.10-3\nPriority: optional\nSection: devel\nSHA256: ${sha('a')}\n\nPackage: imgmake-extra-hello\nVersion: 1.0\nPriority: optional\nSection: misc\nSHA256: ${sha('b')}\n`,
};

test('a package apt chose from a repository names it as its source, with its path below the repository\'s URI; the lock file reads it back', () => {
  const packages = joinAptOutput(apt_out, mirror, [extra]);
  assert.deepEqual(
    packages.map((p) => [p.name, p.source, p.path]),
    [
      ['hello', 'archive', 'pool/main/h/hello/hello_2.10-3_amd64.deb'],
      ['imgmake-extra-hello', 'extra', 'pool/main/i/imgmake-extra-hello/imgmake-extra-hello_1.0_all.deb'],
    ],
  );
  const meta = lockRequestOf({ ...base, repositories: [extra] });
  const text = lockFileText(packages, meta);
  const j = JSON.parse(text) as { request: unknown; packages: unknown };
  const back = parseLockEntry(j.request, j.packages);
  assert.ok(back.ok, back.ok ? '' : back.error);
  assert.deepEqual(back.value, { request: meta, packages });

  // What the reader refuses: a source no repository names, a path leaving the repository, a URL in the request.
  const rows = j.packages as Record<string, unknown>[];
  const bad = (request: unknown, pkgs: unknown) => {
    const r = parseLockEntry(request, pkgs);
    return r.ok ? 'ok' : r.error;
  };
  assert.match(bad(j.request, rows.map((p) => (p['name'] === 'imgmake-extra-hello' ? { ...p, source: 'other' } : p))), /source: expected one of "archive", "security", "extra"/);
  assert.match(bad(j.request, rows.map((p) => (p['name'] === 'imgmake-extra-hello' ? { ...p, path: '../x.deb' } : p))), /path: expected a relative …\/\.deb path/);
  assert.match(bad({ ...(j.request as object), repositories: [{ ...meta.repositories![0], uri: 'http://x' }] }, rows), /request\.repositories\[0\]: unknown field "uri"/);
  assert.match(bad({ ...(j.request as object), repositories: [{ ...meta.repositories![0], id: 'security' }] }, rows), /request\.repositories\[0\]\.id/);
  assert.match(bad({ ...(j.request as object), repositories: [{ ...meta.repositories![0], keys: [] }] }, rows), /expected keys, or trusted without keys/);
});

test('the format: the request carries URIs for resolving and fetching, the lock does not; the stage\'s key leaves the option out', () => {
  const options = { suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'important', packages: ['imgmake-extra-hello'], repositories: [extra] };
  const vars = { debian_mirror: mirror.archive, debian_security_mirror: mirror.security };
  const req = apt.request(options, vars);
  assert.deepEqual(req.repositories, [extra]);
  assert.deepEqual(apt.lockRequest!(req), lockRequestOf({ ...base, packages: ['imgmake-extra-hello'], repositories: [extra] }));
  assert.match(apt.describe(req), /\(also from extra\)$/);
  const { repositories: _r, ...rest } = options;
  assert.deepEqual(apt.keyOptions!(options), rest, 'where packages come from is not part of the key');
  assert.deepEqual(apt.keyOptions!(rest), rest);

  // Fetching again: by the lock's source and path, from the stage's repository (or the mirror).
  const packages = joinAptOutput(apt_out, mirror, [extra]);
  const locate = apt.locate(vars, req);
  assert.ok(locate.ok);
  assert.deepEqual(
    packages.map((p) => locate.value(apt.artifact(p), p)),
    ['http://mirror.example.invalid/debian/pool/main/h/hello/hello_2.10-3_amd64.deb', 'http://127.0.0.1:8080/repo/pool/main/i/imgmake-extra-hello/imgmake-extra-hello_1.0_all.deb'],
  );
  const moved = apt.request({ ...options, repositories: [{ ...extra, uri: 'https://elsewhere.example.invalid/repo' }] }, vars);
  assert.deepEqual(apt.lockRequest!(moved), apt.lockRequest!(req), 'another URL of the same repository: the same lock');
  assert.throws(() => packageUrl(mirror, packages[1] as LockedPackage, []), /comes from repository "extra", which the stage's repositories do not name/);

  // The key digest of the set does not change with where a package came from.
  assert.equal(apt.digest(packages), apt.digest(packages.map((p) => ({ ...p, source: 'archive' }))));
});
