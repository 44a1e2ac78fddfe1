/**
 * Package stages end to end on a real Debian mirror (the one this host's apt uses): `build`
 * locks what imgmake.lock lacks, fetches the .debs once by sha256, installs them offline in the
 * sandbox; `--locked` refuses to add to the lock; a build from a complete lock and the cached
 * .debs needs no network at all. Plus imgmake.lock's format (pure).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lockTable, packageFormats } from '../src/packages/formats.js';

const LOCK_TABLE = lockTable(await packageFormats());
import { locksText, readLocks, type Lock } from '../src/packages/index.js';
import { imgmake, ran, summary, tempProject } from './helpers/cli.js';

const pkg = (name: string, sha: string) => ({
  name,
  version: '1.0-1',
  architecture: 'amd64',
  priority: 'optional',
  section: 'misc',
  source: 'archive' as const,
  path: `pool/main/${name[0]}/${name}/${name}_1.0-1_amd64.deb`,
  size: 1000,
  sha256: sha.repeat(64),
});

test('imgmake.lock: several locks, one package per line, read back as written; a broken file says where', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const locks: Lock[] = [
    { format: 'apt', request: { suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'essential', packages: [], sources: ['archive'] }, packages: [pkg('aa', 'a'), pkg('bb', 'b')] },
    { format: 'apt', request: { suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'important', packages: ['hello'], sources: ['archive', 'security'] }, packages: [pkg('cc', 'c')] },
  ];
  const text = locksText(locks, LOCK_TABLE.formats);
  const lines = text.split('\n');
  assert.equal(lines.filter((l) => l.includes('"sha256"')).length, 3, 'one line per package');
  assert.equal(lines.filter((l) => l === '      "format": "apt",').length, 2, 'each lock names its format');
  const file = join(p.dir, 'imgmake.lock');
  await writeFile(file, text);
  const back = await readLocks(file, LOCK_TABLE);
  assert.ok(back.ok);
  assert.deepEqual(back.value, locks);
  await writeFile(file, text.replace('"bb"', '"Bad Name"'));
  const bad = await readLocks(file, LOCK_TABLE);
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /locks\[0\]: packages\[1\]/);
  assert.match(bad.error.hint!, /imgmake lock/);
  await writeFile(file, text.replace('"format": "apt"', '"format": "pacman"'));
  const unknown = await readLocks(file, LOCK_TABLE);
  assert.ok(!unknown.ok);
  assert.match(unknown.error.message, /locks\[0\]: "format" must be one of "apt"/);
});

test('imgmake.lock: a version 1 file (before formats were named) reads as apt locks; writing makes it version 2', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const locks: Lock[] = [{ format: 'apt', request: { suite: 'bookworm', components: ['main'], architecture: 'amd64', variant: 'essential', packages: [], sources: ['archive'] }, packages: [pkg('aa', 'a')] }];
  // The layout imgmake wrote before this change, verbatim.
  const v1 = `{
  "version": 1,
  "locks": [
    {
      "request": {"suite":"bookworm","components":["main"],"architecture":"amd64","variant":"essential","packages":[],"sources":["archive"]},
      "packages": [
        ${JSON.stringify(pkg('aa', 'a'))}
      ]
    }
  ]
}
`;
  const file = join(p.dir, 'imgmake.lock');
  await writeFile(file, v1);
  const back = await readLocks(file, LOCK_TABLE);
  assert.ok(back.ok, back.ok ? '' : back.error.message);
  assert.deepEqual(back.value, locks);
  const v2 = locksText(back.value, LOCK_TABLE.formats);
  assert.equal(v2, v1.replace('"version": 1', '"version": 2').replace('    {\n      "request"', '    {\n      "format": "apt",\n      "request"'), 'only the version and one line per lock change');
  // A newer file is refused with what to do.
  await writeFile(file, v1.replace('"version": 1', '"version": 3'));
  const newer = await readLocks(file, LOCK_TABLE);
  assert.ok(!newer.ok);
  assert.match(newer.error.message, /version 3; this imgmake reads versions 1 and 2: upgrade imgmake/);
});

const DEFINITION = (packages: string, hostname: string) => `version: 1
pipelines:
  os:
    stages:
      - name: packages
        rule: apt.install
        options:
          variant: essential
          packages: [${packages}]
      - name: hostname
        rule: system.hostname
        options: { hostname: ${hostname} }
  tarball:
    stages:
      - rule: archive.tar
        inputs: { tree: { pipeline: os } }
        options: { filename: os.tar }
targets:
  tar: { pipeline: tarball, export: [os.tar] }
`;

test('a package stage: locked, fetched once, installed offline; reused until the package set changes', { timeout: 900_000 }, async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  await writeFile(p.file, DEFINITION('hello', 'tiny'));
  const tar = join(p.dir, 'out', 'tar', 'os.tar');

  const first = await imgmake(['--json', '-f', p.file, 'build', 'tar']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.deepEqual(ran(first), ['os.hostname', 'os.packages', 'tarball.0']);
  assert.match(first.stderr, /locking os\.packages: bookworm essential \+ hello/);
  const lock = await readLocks(join(p.dir, 'imgmake.lock'), LOCK_TABLE);
  assert.ok(lock.ok);
  assert.equal(lock.value.length, 1);
  const names = lock.value[0]!.packages.map((x) => (x as { name: string }).name);
  assert.ok(names.includes('hello') && names.includes('dpkg') && names.includes('base-files'), names.join(' '));
  // The tree holds exactly the locked set, installed (maintainer scripts ran), and our hostname.
  const status = execFileSync('tar', ['-xOf', tar, './var/lib/dpkg/status'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const installed = status
    .split('\n\n')
    .filter((para) => /^Status: install ok installed$/m.test(para))
    .map((para) => /^Package: (.+)$/m.exec(para)![1]!)
    .sort();
  assert.deepEqual(installed, [...names].sort());
  assert.equal(execFileSync('tar', ['-xOf', tar, './etc/hostname'], { encoding: 'utf8' }), 'tiny\n');
  assert.match(execFileSync('tar', ['-tvf', tar], { encoding: 'utf8', maxBuffer: 1 << 26 }), /\.\/usr\/bin\/hello\n/);

  // Nothing changed: nothing runs, the lock is not touched, nothing is fetched.
  const lockText = await readFile(join(p.dir, 'imgmake.lock'), 'utf8');
  const again = await imgmake(['--json', '-f', p.file, 'build', 'tar', '--locked']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(summary(again).ran, 0);
  assert.equal(await readFile(join(p.dir, 'imgmake.lock'), 'utf8'), lockText);

  // The hostname changes: the package stage is reused.
  await writeFile(p.file, DEFINITION('hello', 'tiny2'));
  const edit = await imgmake(['--json', '-f', p.file, 'build', 'tar', '--locked']);
  assert.equal(edit.code, 0, edit.stderr);
  assert.deepEqual(ran(edit), ['os.hostname', 'tarball.0']);

  // A package the lock lacks: --locked refuses (exit 2, the lock untouched), a plain build locks it.
  await writeFile(p.file, DEFINITION('hello, cowsay', 'tiny2'));
  const refused = await imgmake(['-f', p.file, 'build', 'tar', '--locked']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /imgmake\.lock has no lock for os\.packages \(bookworm essential \+ cowsay hello\)/);
  assert.equal(await readFile(join(p.dir, 'imgmake.lock'), 'utf8'), lockText);

  // Offline: the trees are gone from the cache and the image from out/ (a current out/tar would
  // be enough on its own: its stage delivered it there), the mirror is unreachable; the lock and
  // the cached .debs are enough.
  await writeFile(p.file, DEFINITION('hello', 'tiny2'));
  await rm(join(p.dir, 'cache', 'layers'), { recursive: true });
  await rm(join(p.dir, 'out'), { recursive: true });
  const offline = await imgmake(['--json', '-f', p.file, 'build', 'tar', '--locked'], { env: { IMGMAKE_VAR_debian_mirror: 'http://127.0.0.1:9/debian', IMGMAKE_VAR_debian_security_mirror: 'http://127.0.0.1:9/debian-security' } });
  assert.equal(offline.code, 0, offline.stderr + offline.stdout);
  assert.deepEqual(ran(offline), ['os.hostname', 'os.packages', 'tarball.0']);
  assert.equal(offline.stdout.includes('fetched'), false, 'nothing was downloaded');

  // A lock naming a .deb the mirror no longer serves (superseded), on an empty cache: the build
  // fails naming it, and says how to move on.
  const stale = lockText.replace(/\/hello_[^/"_]+_amd64\.deb/, '/hello_0.0-0_amd64.deb');
  assert.notEqual(stale, lockText);
  await writeFile(join(p.dir, 'imgmake.lock'), stale);
  // (--out elsewhere too: the lock's paths are not in the keys, so out/tar, delivered by the
  // build above for the same keys, would be current and nothing would run.)
  const gone = await imgmake(['-f', p.file, '--cache', join(p.dir, 'cache2'), '--out', join(p.dir, 'out2'), 'build', 'tar', '--locked']);
  assert.equal(gone.code, 1, gone.stderr);
  assert.match(gone.stdout, /hello .*hello_0\.0-0_amd64\.deb\): HTTP 404/);
  assert.match(gone.stdout, /imgmake lock --update/);
});
