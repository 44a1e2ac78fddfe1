/**
 * examples/rpm-minimal, end to end, the way its README says: `imgmake build` in its packages/
 * project makes an rpm-md repository (four RPMs wrapping Debian's kernel and busybox, built by
 * rpmbuild in the RPM buildroot); nginx serves it on loopback; `imgmake build qcow2` in the
 * example locks `imgmin-init` against it, installs the locked RPMs with rpm.install and
 * assembles the disk; `imgmake boot qcow2` boots it under software emulation until the image's
 * own /sbin/init (from an RPM) prints its marker. Then a no-op rebuild of both projects runs
 * nothing: the rpm stage is found by the lock's digest, also when the repository is given at
 * another URL (its URLs are not in the stage's key).
 *
 * Cost: every tree is built in the RPM tests' shared cache (test/helpers/rpm-buildroot.ts: its
 * RPM buildroot is the same stages, so it is found there), and the example's Debian locks are
 * kept beside that cache between runs so the Debian kernel and the disk tools are installed once
 * per machine, not per run (cold: about 15 minutes on a loaded 2-core machine; warm: the RPM
 * repository, found cached, one install of four RPMs or none, the disk, one BIOS boot).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, ran, summary, tempProject } from './helpers/cli.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const shared = process.env['IMGMAKE_RPM_TEST_CACHE'] ?? '/var/tmp/imgmake-rpm-test';
/** Where this test keeps the example's locks between runs (the Debian stages' only). */
const keep = join(shared, 'rpm-minimal');

let nginx: Nginx | undefined;
after(async () => nginx?.stop());

/** A lock file without its rpm entries: the repository is rebuilt per cache, so its packages are locked afresh. */
function debianLocks(file: string): string {
  const lock = JSON.parse(readFileSync(file, 'utf8')) as { locks: { format: string }[] };
  return `${JSON.stringify({ ...lock, locks: lock.locks.filter((l) => l.format !== 'rpm') }, null, 2)}\n`;
}

/** Seeds `project`'s imgmake.lock from the kept one, else from the shared RPM buildroot's. */
function seedLock(project: string, kept: string): void {
  const from = [join(keep, kept), join(shared, 'imgmake.lock')].find((f) => existsSync(f));
  if (from) writeFileSync(join(project, 'imgmake.lock'), debianLocks(from));
}

const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

test('examples/rpm-minimal: its RPM repository is built, the image installs from it, boots to its init, and a rebuild runs nothing', { timeout: 3_600_000 }, async (t) => {
  const started = performance.now();
  const p = await tempProject('rpm-minimal');
  t.after(p.cleanup);
  const packages = join(p.dir, 'packages');
  seedLock(packages, 'packages.lock');
  seedLock(p.dir, 'image.lock');
  const cache = ['--cache', join(shared, 'cache')];

  let t0 = performance.now();
  const repo = await imgmake(['--json', ...cache, '-f', join(packages, 'imgmake.yaml'), 'build', 'repo']);
  assert.equal(repo.code, 0, repo.stderr + repo.stdout.slice(-3000));
  t.diagnostic(`packages/: build repo (ran ${ran(repo).join(', ') || 'nothing'}): ${seconds(t0)}`);
  const names = readFileSync(join(packages, 'out', 'repo', 'repodata', 'repomd.xml'), 'utf8');
  assert.match(names, /<data type="primary">/);

  // The README's "serve that folder": here a private nginx on loopback.
  const web = mkdtempSync(join(tmpdir(), 'imgmake-rpm-minimal-web-'));
  t.after(() => rmSync(web, { recursive: true, force: true }));
  nginx = await startNginx(web);
  execFileSync('cp', ['-r', join(packages, 'out', 'repo'), join(nginx.www, 'repo')]);
  execFileSync('chmod', ['-R', 'a+rX', nginx.www]);
  const baseurl = ['--var', `rpm_minimal_baseurl=http://127.0.0.1:${nginx.port}/repo/`];

  t0 = performance.now();
  const built = await imgmake(['--json', ...cache, ...baseurl, '-f', p.file, 'build', 'qcow2']);
  assert.equal(built.code, 0, built.stderr + built.stdout.slice(-3000));
  assert.match(built.stderr, /imgmake: locking os\.packages: rpm-minimal x86_64 \+ imgmin-init/);
  t.diagnostic(`build qcow2 (ran ${ran(built).join(', ') || 'nothing'}): ${seconds(t0)}`);
  const lock = JSON.parse(readFileSync(join(p.dir, 'imgmake.lock'), 'utf8')) as { locks: { format: string; packages: { name: string; repo?: string }[] }[] };
  const rpms = lock.locks.find((l) => l.format === 'rpm')!;
  assert.deepEqual(rpms.packages.map((x) => x.name).sort(), ['imgmin-busybox', 'imgmin-filesystem', 'imgmin-init', 'imgmin-kernel'], 'imgmin-init and its Requires, through the virtual kernel');
  assert.ok(!readFileSync(join(p.dir, 'imgmake.lock'), 'utf8').includes('127.0.0.1'), 'the lock holds no URL');

  t0 = performance.now();
  const boot = await imgmake(['-f', p.file, 'boot', 'qcow2', '--bios', '--accel', 'tcg', '--memory', '512']);
  assert.equal(boot.code, 0, boot.stderr + boot.stdout.slice(-3000));
  // The marker comes from imgmin-init's /sbin/init, run by the kernel from imgmin-kernel after
  // its initramfs mounted the ext4 root read-only; the rpm database is in the tree.
  assert.match(boot.stdout, /IMGMAKE-RPM-BOOTED os=imgmin kernel=\S+-amd64 root=ext4,ro rpmdb=present/);
  t.diagnostic(`boot (BIOS, tcg): ${seconds(t0)}`);

  // Nothing changed: nothing runs, in either project (the rpm stage by its lock's digest).
  t0 = performance.now();
  const again = await imgmake(['--json', ...cache, ...baseurl, '-f', p.file, 'build', 'qcow2', '--locked']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(summary(again).ran, 0);
  const repoAgain = await imgmake(['--json', ...cache, '-f', join(packages, 'imgmake.yaml'), 'build', 'repo', '--locked']);
  assert.equal(repoAgain.code, 0, repoAgain.stderr);
  assert.equal(summary(repoAgain).ran, 0);
  t.diagnostic(`no-op rebuilds of both projects: ${seconds(t0)}`);

  // The same repository at another URL (a mirror): the URL is not in the rpm stage's key, so
  // the cached tree is the image's (the lock names no URL either).
  execFileSync('ln', ['-s', 'repo', join(nginx.www, 'mirror')]);
  const mirrored = await imgmake(['--json', ...cache, '--var', `rpm_minimal_baseurl=http://127.0.0.1:${nginx.port}/mirror/`, '-f', p.file, 'build', 'qcow2', '--locked']);
  assert.equal(mirrored.code, 0, mirrored.stderr);
  assert.equal(summary(mirrored).ran, 0, 'another mirror: nothing runs');

  mkdirSync(keep, { recursive: true });
  copyFileSync(join(packages, 'imgmake.lock'), join(keep, 'packages.lock'));
  copyFileSync(join(p.dir, 'imgmake.lock'), join(keep, 'image.lock'));
  t.diagnostic(`examples/rpm-minimal test: ${seconds(started)}`);
});
