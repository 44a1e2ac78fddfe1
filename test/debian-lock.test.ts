/**
 * lock.ts: the imgmake.lock format (pure), the parsing of apt's output (pure, made-up hosts),
 * and a real resolution through the sandbox against this machine's Debian mirror (read from its
 * apt sources at run time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  aptConfig,
  installArgs,
  joinAptOutput,
  lockFileText,
  lockRequestOf,
  parseLockFile,
  parsePrintUris,
  parseSimulate,
  resolvePackages,
  type LockRequest,
  type LockedPackage,
} from '../src/packages/apt/lock.js';
import { fetchArtifacts } from '../src/packages/fetch.js';
import { apt, packageUrl } from '../src/packages/apt/index.js';
import { hostDebianMirror } from '../src/packages/apt/sources.js';
import { bwrapSandbox } from '../src/sandbox/run.js';

const MIRROR = { archive: 'http://mirror.invalid/debian', security: 'http://mirror.invalid/debian-security' };
const REQ: LockRequest = { mirror: MIRROR, suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'essential', packages: ['hello'] };
const sha = (c: string) => c.repeat(64);

const PKGS: LockedPackage[] = [
  { name: 'hello', version: '2.10-3', architecture: 'amd64', priority: 'optional', section: 'devel', source: 'archive', path: 'pool/main/h/hello/hello_2.10-3_amd64.deb', size: 56000, sha256: sha('a') },
  { name: 'base-files', version: '12.4+deb12u1', architecture: 'amd64', priority: 'required', section: 'admin', source: 'archive', path: 'pool/main/b/base-files/base-files_12.4+deb12u1_amd64.deb', size: 70936, sha256: sha('b') },
  { name: 'libc6', version: '2.36-9+deb12u14', architecture: 'amd64', priority: 'optional', section: 'libs', source: 'security', path: 'pool/updates/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb', size: 2759320, sha256: sha('c') },
  { name: 'dmsetup', version: '2:1.02.185-2', architecture: 'amd64', priority: 'optional', section: 'admin', source: 'archive', path: 'pool/main/l/lvm2/dmsetup_1.02.185-2_amd64.deb', size: 82000, sha256: sha('d') },
];

// ---------------------------------------------------------------------------------------------
// the lock file format

test('lock file: sorted, one package per line, stable key order, round trip', () => {
  const text = lockFileText(PKGS, lockRequestOf(REQ));
  const lines = text.split('\n');
  assert.equal(lines[0], '{');
  assert.equal(lines[1], '  "version": 1,');
  assert.equal(
    lines[2],
    '  "request": {"suite":"bookworm","components":["main"],"architecture":"amd64","variant":"essential","packages":["hello"],"sources":["archive","security"]},',
  );
  assert.deepEqual(
    lines.filter((l) => l.startsWith('    {')).map((l) => JSON.parse(l.replace(/,$/, '')).name),
    ['base-files', 'dmsetup', 'hello', 'libc6'],
  );
  assert.equal(
    lines[4],
    `    {"name":"base-files","version":"12.4+deb12u1","architecture":"amd64","priority":"required","section":"admin","source":"archive","path":"pool/main/b/base-files/base-files_12.4+deb12u1_amd64.deb","size":70936,"sha256":"${sha('b')}"},`,
  );
  assert.ok(text.endsWith('  ]\n}\n'));
  assert.doesNotMatch(text, /mirror\.invalid/, 'the lock holds no mirror URL');

  const parsed = parseLockFile(text);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
  assert.deepEqual(parsed.value.request, lockRequestOf(REQ));
  assert.equal(lockFileText(parsed.value.packages, parsed.value.request), text, 'text → parse → text is the identity');
  // Key order in the input does not matter; the written order is fixed.
  const shuffled = PKGS.map((p) => Object.fromEntries(Object.entries(p).reverse()) as unknown as LockedPackage);
  assert.equal(lockFileText(shuffled, lockRequestOf(REQ)), text);
});

test('lock file: the request is canonical (packages sorted, deduplicated; default variant; sources)', () => {
  const meta = lockRequestOf({ mirror: { archive: 'http://mirror.invalid/debian' }, suite: 'bookworm', components: ['main'], architecture: 'amd64', packages: ['zsh', 'hello', 'zsh'] });
  assert.deepEqual(meta, { suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'important', packages: ['hello', 'zsh'], sources: ['archive'] });
  const empty = lockFileText([], meta);
  assert.match(empty, /"packages": \[\]\n\}\n$/);
  assert.ok(parseLockFile(empty).ok);
});

test('lock file: bad input is rejected with a message that says where', () => {
  const good = JSON.parse(lockFileText(PKGS, lockRequestOf(REQ))) as { version: number; request: Record<string, unknown>; packages: Record<string, unknown>[] };
  const variant = (f: (v: typeof good) => void): string => {
    const v = structuredClone(good);
    f(v);
    return JSON.stringify(v);
  };
  const cases: [string, string, string][] = [
    ['{"version": 1, "request": ', 'lock-syntax', 'imgmake.lock is not valid JSON: '],
    ['[]', 'lock-invalid', 'imgmake.lock: expected a JSON object at the top'],
    [variant((v) => (v.version = 2)), 'lock-version', 'imgmake.lock has version 2; this imgmake reads version 1: upgrade imgmake or lock again'],
    [variant((v) => delete (v as Partial<typeof v>).version), 'lock-version', 'imgmake.lock: "version" must be 1, got undefined'],
    [variant((v) => ((v as unknown as Record<string, unknown>).mirror = 'x')), 'lock-invalid', 'imgmake.lock: unknown field "mirror"'],
    [variant((v) => (v.request.variant = 'minbase')), 'lock-invalid', 'imgmake.lock: request.variant: expected one of essential, required, important, standard, custom, got "minbase"'],
    [variant((v) => (v.request.components = [])), 'lock-invalid', 'imgmake.lock: request.components: expected a non-empty list of component names, got []'],
    [variant((v) => (v.request.sources = ['security'])), 'lock-invalid', 'imgmake.lock: request.sources: expected ["archive"] or ["archive", "security"], got ["security"]'],
    [variant((v) => (v.packages[2]!.sha256 = 'abc')), 'lock-invalid', 'imgmake.lock: packages[2] (hello): sha256: expected 64 lowercase hex digits, got "abc"'],
    [variant((v) => (v.packages[0]!.size = 0)), 'lock-invalid', 'imgmake.lock: packages[0] (base-files): size: expected a positive integer, got 0'],
    [variant((v) => (v.packages[0]!.size = '70936')), 'lock-invalid', 'imgmake.lock: packages[0] (base-files): size: expected a positive integer, got "70936"'],
    [variant((v) => (v.packages[1]!.path = 'pool/../../etc/passwd.deb')), 'lock-invalid', 'imgmake.lock: packages[1] (dmsetup): path: expected a relative pool/…/.deb path, got "pool/../../etc/passwd.deb"'],
    [variant((v) => (v.packages[1]!.path = 'http://mirror.invalid/debian/pool/main/x.deb')), 'lock-invalid', 'imgmake.lock: packages[1] (dmsetup): path: expected a relative pool/…/.deb path, got "http://mirror.invalid/debian/pool/main/x.deb"'],
    [variant((v) => (v.packages[3]!.source = 'debian-security')), 'lock-invalid', 'imgmake.lock: packages[3] (libc6): source: expected one of "archive", "security" (request.sources), got "debian-security"'],
    [variant((v) => (v.request.sources = ['archive'])), 'lock-invalid', 'imgmake.lock: packages[3] (libc6): source: expected one of "archive" (request.sources), got "security"'],
    [variant((v) => delete v.packages[2]!.version), 'lock-invalid', 'imgmake.lock: packages[2] (hello): version: expected a Debian version, got undefined'],
    [variant((v) => (v.packages[2]!.url = 'x')), 'lock-invalid', 'imgmake.lock: packages[2] (hello): unknown field "url"'],
    [variant((v) => v.packages.reverse()), 'lock-invalid', 'imgmake.lock: packages[1] (hello): packages must be sorted by name without duplicates (after libc6)'],
    [variant((v) => v.packages.splice(1, 0, v.packages[0]!)), 'lock-invalid', 'imgmake.lock: packages[1] (base-files): packages must be sorted by name without duplicates (after base-files)'],
    [variant((v) => (v.packages[0] = 7 as never)), 'lock-invalid', 'imgmake.lock: packages[0]: expected an object'],
  ];
  for (const [text, reason, message] of cases) {
    const r = parseLockFile(text);
    assert.equal(r.ok, false, `accepted: ${text.slice(0, 80)}`);
    if (r.ok) continue;
    assert.equal(r.error.reason, reason, r.error.message);
    if (reason === 'lock-syntax') assert.ok(r.error.message.startsWith(message), r.error.message);
    else assert.equal(r.error.message, message);
  }
});

// ---------------------------------------------------------------------------------------------
// apt's input and output

test('the variant selects what mmdebstrap would: essential without apt, larger variants with it, custom alone', () => {
  const n = '?or(?archive(^bookworm$),?codename(^bookworm$)),?architecture(amd64)';
  assert.deepEqual(installArgs(REQ), [`?narrow(${n},?essential)`, 'hello']);
  assert.deepEqual(installArgs({ ...REQ, variant: 'important' }), [`?narrow(${n},?or(?essential,?priority(required),?priority(important)))`, 'apt', 'hello']);
  assert.deepEqual(installArgs({ ...REQ, variant: 'standard', packages: [] }), [
    `?narrow(${n},?or(?essential,?priority(required),?priority(important),?priority(standard)))`,
    'apt',
  ]);
  assert.deepEqual(installArgs({ ...REQ, variant: 'custom', packages: ['dpkg', 'hello'] }), ['dpkg', 'hello']);
  const conf = aptConfig('/w', 'amd64');
  assert.match(conf, /^pkgCacheGen::ForceEssential ",";$/m);
  assert.match(conf, /^Dir::State::status "\/w\/state\/status";$/m);
  assert.match(conf, /^Dir::Etc::Parts "\/w\/etc\/apt.conf.d\/";$/m, "the host's apt.conf.d is never read");
});

test("apt's output: arch from the bracket after the version, URL-encoded names, security vs archive, the mirror's priority", () => {
  const simulate = [
    'Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])',
    'Conf gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])',
    'Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []',
    'Inst libstdc++6 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []',
    'Inst dmsetup (2:1.02.185-2 Debian:12.15/oldstable [amd64]) []',
    'Inst tzdata (2025b-0+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [all])',
  ].join('\n');
  assert.deepEqual(parseSimulate(simulate)[4], { name: 'tzdata', version: '2025b-0+deb12u1', architecture: 'all' });
  assert.deepEqual(parseSimulate(simulate)[1], { name: 'libc6', version: '2.36-9+deb12u14', architecture: 'amd64' });
  const uris = [
    `'http://mirror.invalid/debian/pool/main/g/gcc-12/gcc-12-base_12.2.0-14%2bdeb12u1_amd64.deb' gcc-12-base_12.2.0-14+deb12u1_amd64.deb 37596 SHA256:${sha('1')}`,
    `'http://mirror.invalid/debian-security/pool/updates/main/g/glibc/libc6_2.36-9%2bdeb12u14_amd64.deb' libc6_2.36-9+deb12u14_amd64.deb 2759320 SHA256:${sha('2')}`,
    `'http://mirror.invalid/debian/pool/main/g/gcc-12/libstdc%2b%2b6_12.2.0-14%2bdeb12u1_amd64.deb' libstdc++6_12.2.0-14+deb12u1_amd64.deb 613000 SHA256:${sha('3')}`,
    `'http://mirror.invalid/debian/pool/main/l/lvm2/dmsetup_1.02.185-2_amd64.deb' dmsetup_2%3a1.02.185-2_amd64.deb 82000 SHA256:${sha('4')}`,
    `'http://mirror.invalid/debian-security/pool/updates/main/t/tzdata/tzdata_2025b-0%2bdeb12u1_all.deb' tzdata_2025b-0+deb12u1_all.deb 255000 SHA256:${sha('5')}`,
  ].join('\n');
  const rec = (name: string, version: string, priority: string, section: string, hash: string) =>
    `Package: ${name}\nVersion: ${version}\nPriority: ${priority}\nSection: ${section}\nDescription: x\n long text\n .\n more\nSHA256: ${hash}\n`;
  const show = [
    rec('gcc-12-base', '12.2.0-14+deb12u1', 'required', 'libs', sha('1')),
    // the same version from two suites; the one whose sha256 apt chose wins
    rec('libc6', '2.36-9+deb12u14', 'optional', 'oldlibs', sha('9')),
    rec('libc6', '2.36-9+deb12u14', 'required', 'libs', sha('2')),
    rec('libstdc++6', '12.2.0-14+deb12u1', 'important', 'libs', sha('3')),
    rec('dmsetup', '2:1.02.185-2', 'optional', 'admin', sha('4')),
    rec('tzdata', '2025b-0+deb12u1', 'required', 'localization', sha('5')),
  ].join('\n');
  const got = joinAptOutput({ simulate, uris, show }, MIRROR);
  assert.deepEqual(
    got.map((p) => [p.name, p.version, p.architecture, p.priority, p.section, p.source, p.path, p.size]),
    [
      ['dmsetup', '2:1.02.185-2', 'amd64', 'optional', 'admin', 'archive', 'pool/main/l/lvm2/dmsetup_1.02.185-2_amd64.deb', 82000],
      ['gcc-12-base', '12.2.0-14+deb12u1', 'amd64', 'required', 'libs', 'archive', 'pool/main/g/gcc-12/gcc-12-base_12.2.0-14+deb12u1_amd64.deb', 37596],
      ['libc6', '2.36-9+deb12u14', 'amd64', 'required', 'libs', 'security', 'pool/updates/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb', 2759320],
      ['libstdc++6', '12.2.0-14+deb12u1', 'amd64', 'important', 'libs', 'archive', 'pool/main/g/gcc-12/libstdc++6_12.2.0-14+deb12u1_amd64.deb', 613000],
      ['tzdata', '2025b-0+deb12u1', 'all', 'required', 'localization', 'security', 'pool/updates/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb', 255000],
    ],
  );
  assert.throws(
    () => parsePrintUris(`'http://mirror.invalid/debian/pool/main/h/hello/hello_2.10-3_amd64.deb' hello_2.10-3_amd64.deb 56000 MD5Sum:0123456789abcdef0123456789abcdef`),
    /apt printed MD5Sum:0123456789abcdef0123456789abcdef for .*hello_2.10-3_amd64.deb, not a SHA256/,
  );
  assert.throws(() => joinAptOutput({ simulate: 'Inst hello (2.10-3 Debian:12/stable [amd64])', uris: '', show: '' }, MIRROR), /apt would install hello 2.10-3 but printed no URI/);
});

// ---------------------------------------------------------------------------------------------
// for real, against the host's mirror

test('resolvePackages: variant essential + hello against the real mirror, twice, equal', { timeout: 90_000 }, async (t) => {
  const mirror = await hostDebianMirror();
  assert.ok(mirror, "no Debian mirror in this machine's apt sources");
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-lock-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const req: LockRequest = { mirror, suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'essential', packages: ['hello'] };
  const lock = async (n: number) => {
    const t0 = performance.now();
    const pkgs = await resolvePackages(req, { sandbox: bwrapSandbox, workDir: join(dir, `w${n}`), logFile: join(dir, `lock${n}.log`) });
    t.diagnostic(`lock ${n}: ${pkgs.length} packages, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return pkgs;
  };
  const [a, b] = [await lock(1), await lock(2)];
  assert.deepEqual(a, b, 'two resolutions from fresh states agree');

  const names = a.map((p) => p.name);
  assert.deepEqual(names, [...names].sort(), 'sorted by name');
  assert.equal(new Set(names).size, names.length);
  for (const n of ['hello', 'dpkg', 'base-files', 'libc6', 'coreutils']) assert.ok(names.includes(n), `${n} is in the lock`);
  assert.ok(!names.includes('apt'), 'the essential variant does not pull apt (ForceEssential ",")');
  assert.ok(a.length > 30 && a.length < 150, `${a.length} packages`);
  for (const p of a) {
    assert.match(p.sha256, /^[0-9a-f]{64}$/, p.name);
    assert.ok(p.size > 0, p.name);
    assert.ok(p.path.startsWith('pool/') && p.path.endsWith('.deb'), p.path);
    assert.ok(['amd64', 'all'].includes(p.architecture), `${p.name}: ${p.architecture}`);
    assert.ok(['archive', 'security'].includes(p.source));
    assert.match(p.priority, /^(required|important|standard|optional|extra)$/, p.name);
    assert.ok(p.section.length > 0);
  }
  const hello = a.find((p) => p.name === 'hello')!;
  assert.equal(hello.priority, 'optional');
  assert.ok(hello.path.startsWith('pool/main/h/hello/hello_'), hello.path);
  assert.equal(a.find((p) => p.name === 'dpkg')!.priority, 'required');

  // The lock text round-trips and names no mirror.
  const text = lockFileText(a, lockRequestOf(req));
  assert.equal(text.includes(new URL(mirror.archive).host), false);
  const back = parseLockFile(text);
  assert.ok(back.ok);
  assert.deepEqual(back.value.packages, a);

  // The lock's paths fetch from the real mirror: a small package, one with '+' in its file name,
  // and one from the security archive when the solution has one.
  const few = [a.find((p) => p.name === 'hello')!, a.find((p) => p.path.includes('+') && p.size < 500_000) ?? a[0]!];
  const sec = a.filter((p) => p.source === 'security').sort((x, y) => x.size - y.size)[0];
  if (sec) few.push(sec);
  const paths = await fetchArtifacts(few.map(apt.artifact), { locate: (a) => packageUrl(mirror, few.find((p) => p.sha256 === a.sha256)!), cacheDir: join(dir, 'cache') });
  for (const p of few) assert.equal(createHash('sha256').update(readFileSync(paths.get(p.sha256)!)).digest('hex'), p.sha256, p.path);
});

test('resolvePackages: an unknown package fails with apt\'s message and the log path; bad input fails before running', { timeout: 60_000 }, async (t) => {
  const mirror = await hostDebianMirror();
  assert.ok(mirror);
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-lock-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logFile = join(dir, 'lock.log');
  await assert.rejects(
    resolvePackages({ mirror, suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'custom', packages: ['no-such-package-imgmake'] }, { sandbox: bwrapSandbox, workDir: join(dir, 'w'), logFile }),
    (e: Error) => {
      assert.match(e.message, /^apt could not resolve bookworm \(custom \+ no-such-package-imgmake\): exit 100\n {2}E: Unable to locate package no-such-package-imgmake\n/);
      assert.ok(e.message.endsWith(`(full log: ${logFile})`));
      return true;
    },
  );
  const never = { run: () => Promise.reject(new Error('must not run')) };
  await assert.rejects(
    resolvePackages({ ...REQ, packages: ['hello; rm -rf /', 'Bad'], components: [] }, { sandbox: never, workDir: join(dir, 'w2'), logFile }),
    { message: 'cannot lock: no components; "hello; rm -rf /" is not a package name (or name=version); "Bad" is not a package name (or name=version)' },
  );
  await assert.rejects(resolvePackages({ ...REQ, mirror: { archive: 'ftp://mirror.invalid/debian' } }, { sandbox: never, workDir: join(dir, 'w3'), logFile }), /mirror.archive "ftp:\/\/mirror.invalid\/debian" is not an http\(s\) URL/);
});
