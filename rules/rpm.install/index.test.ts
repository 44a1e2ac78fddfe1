/**
 * rpm.install on an empty tree, run with the RPM buildroot (a Debian tree with rpm) as the
 * sandbox's root, from an input of exactly the locked .rpm files of the RPM test world:
 * scriptlets ran inside the tree (%pre's user, %post's unit symlink), the rpm database is in the
 * tree and lists the locked set, nothing of dnf or the install is left, mtimes are clamped. A
 * set missing a dependency fails with rpm's own words.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir } from '../../test/helpers/rule-harness.js';
import { runRule } from '../../test/helpers/rule-harness.js';
import { rpmWorld } from '../../test/helpers/rpm-repo.js';
import { rpmBuildroot } from '../../test/helpers/rpm-buildroot.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';

after(async () => (await rpmWorld()).nginx.stop());

/** What resolving imgtest-app and imgtest-svc locks (test/rpm-resolve.test.ts shows it). */
const LOCKED = ['imgtest-app', 'imgtest-filesystem', 'imgtest-lib', 'imgtest-logger-a', 'imgtest-shell', 'imgtest-svc'];

async function inputOf(names: string[]): Promise<{ dir: string; cleanup: () => void }> {
  const w = await rpmWorld();
  const d = tempDir('imgmake-rpm-input-');
  for (const n of names) copyFileSync(w.file(n), join(d.dir, basename(w.file(n))));
  return d;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory() && !e.isSymbolicLink()) walk(p, out);
  }
  return out;
}

test('rpm.install: the locked set installed with its scriptlets run in the tree, its database in the tree, mtimes clamped', { timeout: 600_000 }, async (t) => {
  const [w, br] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const input = await inputOf(LOCKED);
  t.after(input.cleanup);
  const options = { repos: [{ id: 'test', baseurl: w.baseurl, gpgkey: [w.keyUrl] }], packages: ['imgtest-app', 'imgtest-svc'] };
  const r = await runRule('rpm.install', options, { buildroot: br.dir, inputs: { rpms: { kind: 'dir', path: input.dir } } });
  t.after(r.cleanup);
  assertOk(r);
  assert.doesNotMatch(r.log, /use Alien/, "Debian rpm's alien advice is filtered out");

  // %pre ran in the tree (busybox's sh, from imgtest-shell, ordered first by Requires(pre)).
  assert.match(readFileSync(join(r.tree, 'etc/passwd'), 'utf8'), /^imgsvc:x:990:990:imgmake test service:\/var\/lib\/imgsvc:\/sbin\/nologin$/m);
  assert.match(readFileSync(join(r.tree, 'etc/group'), 'utf8'), /^imgsvc:x:990:$/m);
  // %post enabled the unit.
  assert.equal(readlinkSync(join(r.tree, 'etc/systemd/system/multi-user.target.wants/imgtest.service')), '/usr/lib/systemd/system/imgtest.service');
  assert.equal(readFileSync(join(r.tree, 'usr/lib/imgtest-logger'), 'utf8'), 'logger-a\n');

  // Every mtime clamped (checked before anything below reads the database).
  // The database without its empty write-ahead log and shared-memory index (nondeterministic bytes).
  assert.deepEqual(readdirSync(join(r.tree, 'var/lib/rpm')).sort(), ['.rpm.lock', 'rpmdb.sqlite']);
  const late = walk(r.tree).filter((p) => lstatSync(p).mtimeMs / 1000 > Number(SOURCE_DATE_EPOCH) && !/\/(dev|proc)(\/|$)/.test(p.slice(r.tree.length)));
  assert.deepEqual(late, []);

  // The database is the tree's: rpm --root TREE -qa lists exactly the locked set.
  const qa = execFileSync('rpm', ['--root', r.tree, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}\n'], { encoding: 'utf8' });
  assert.deepEqual(qa.trim().split('\n').sort(), LOCKED);
  assert.ok(existsSync(join(r.tree, 'var/lib/rpm/rpmdb.sqlite')));

  // Nothing of dnf, no caches or logs, no scratch files.
  for (const p of ['var/cache/dnf', 'var/lib/dnf', 'var/log/dnf.log', 'var/log/dnf.rpm.log', 'var/cache/yum']) assert.ok(!existsSync(join(r.tree, p)), p);
  assert.deepEqual(readdirSync(join(r.tree, 'tmp')), []);
});

test('rpm.install: a set missing a dependency fails with rpm saying which', { timeout: 600_000 }, async (t) => {
  const [w, br] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const input = await inputOf(['imgtest-filesystem', 'imgtest-app']);
  t.after(input.cleanup);
  const r = await runRule('rpm.install', { repos: [{ id: 'test', baseurl: w.baseurl, gpgkey: [w.keyUrl] }], packages: ['imgtest-app'] }, { buildroot: br.dir, inputs: { rpms: { kind: 'dir', path: input.dir } } });
  t.after(r.cleanup);
  assertFails(r, 'libimgtest >= 1.0 is needed by imgtest-app-3.1-2.noarch', 'rpm.install: rpm failed');
});

test('rpm.install: schema: a repository needs a URL; an unknown option is refused', async () => {
  assert.deepEqual(await schemaErrors('rpm.install', { repos: [{ id: 'x', baseurl: 'http://127.0.0.1:8080/' }], packages: ['a'] }), []);
  assert.notDeepEqual(await schemaErrors('rpm.install', { repos: [{ id: 'x' }], packages: ['a'] }), []);
  assert.notDeepEqual(await schemaErrors('rpm.install', { repos: [{ id: 'x', baseurl: 'http://127.0.0.1:8080/' }], packages: ['a'], weak: true }), []);
});
