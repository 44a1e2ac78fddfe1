/**
 * The mission's first use, end to end: `imgmake build qcow2` of examples/debian-12 from a clean
 * cache (locking against this host's Debian mirror), then `imgmake boot qcow2` in QEMU until the
 * image's own unit reports, on the serial console, that systemd reached multi-user with the
 * configured hostname. Then the incremental promises: a second build runs nothing; a hostname
 * edit reruns only what follows it and the disk assembly; a new package reruns the package stage.
 * Slow (minutes): it builds and boots a real Debian.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { imgmake, ran, startImgmake, summary, tempProject } from './helpers/cli.js';
import { events } from './helpers/events.js';
import { once } from 'node:events';

/** The image's own settings: everything after the hostname. */
const OS = ['os.hostname', 'os.timezone', 'os.admin', 'os.sudoers', 'os.fstab', 'os.esp-mountpoint'];
/** What starts from the distro's packages: the environment, the workload, then the image's settings. */
const AFTER_PACKAGES = ['distro.locale', 'distro.machine-id', 'vm.cmdline', 'vm.network', 'vm.units', 'workload.boot-check', ...OS];

test('examples/debian-12: builds, boots to multi-user with its hostname, and rebuilds only what changed', { timeout: 3_600_000 }, async (t) => {
  const p = await tempProject('debian-12');
  t.after(p.cleanup);

  const cold = await imgmake(['--json', '-f', p.file, 'build', 'qcow2']);
  assert.equal(cold.code, 0, cold.stderr + cold.stdout.slice(-3000));
  assert.ok(ran(cold).includes('distro.packages') && ran(cold).includes('qcow2.0'));
  const image = join(p.dir, 'out', 'qcow2', 'disk.qcow2');

  const boot = await imgmake(['-f', p.file, 'boot', 'qcow2', '--memory', '1024']);
  assert.equal(boot.code, 0, boot.stderr + boot.stdout.slice(-3000));
  // The workload's unit, ordered after multi-user.target: the target active, the hostname, sshd
  // running (its host keys made at first boot), and the admin user in its groups.
  assert.match(boot.stdout, /IMGMAKE-BOOTED multi-user=active hostname=debian-vm ssh=active admin=admin,sudo/);

  const again = await imgmake(['--json', '-f', p.file, 'build', 'qcow2', '--locked']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(summary(again).ran, 0);

  // A new hostname, saved under `imgmake watch`: the package stage is reused; the stages after
  // the hostname, the ESP (GRUB reads the root tree) and the disk assembly run, and a new qcow2
  // lands in out/.
  const watch = startImgmake(['--json', '-f', p.file, 'watch', 'qcow2', '--locked']);
  t.after(() => watch.kill('SIGKILL'));
  const ev = events(watch);
  assert.deepEqual((await ev.next((e) => e.type === 'rebuild', 'the first (no-op) build under watch')).at(-1)!.ran, []);
  await ev.next((e) => e.type === 'watch' && e.state === 'idle', 'idle');
  const before = (await stat(image)).ino;
  const original = await readFile(p.file, 'utf8');
  assert.ok(original.includes('  hostname: debian-vm\n'));
  const saved = Date.now();
  await writeFile(p.file, original.replace('  hostname: debian-vm\n', '  hostname: edited\n'));
  const edit = (await ev.next((e) => e.type === 'rebuild', 'the rebuild after the hostname edit', 300_000)).at(-1)!;
  t.diagnostic(`hostname saved → new qcow2 in out/: ${Date.now() - saved} ms`);
  assert.equal(edit.result, 'built', ev.stderr);
  assert.deepEqual(edit.ran, [...OS, 'esp.grub', 'disk.root', 'disk.esp', 'disk.bios', 'qcow2.0'].sort());
  assert.notEqual((await stat(image)).ino, before, 'a new image was exported');
  watch.kill('SIGINT');
  assert.equal((await once(watch, 'exit'))[0], 130);
  await writeFile(p.file, original);
  const editedBack = await imgmake(['--json', '-f', p.file, '--var', 'hostname=edited', 'build', 'qcow2', '--locked']);
  assert.equal(summary(editedBack).ran, 0, 'the --var build of the same definition is the cached one');
  // This time through the BIOS path (GRUB's core.img in the BIOS boot partition), not UEFI.
  const booted = await imgmake(['-f', p.file, 'boot', 'qcow2', '--bios']);
  assert.equal(booted.code, 0, booted.stderr);
  assert.match(booted.stdout, /IMGMAKE-BOOTED multi-user=active hostname=edited /);
  assert.ok((await stat(image)).size > 0);

  // One more package: locked now (the build says so), and the package stage runs again.
  const distro = join(p.dir, 'distro', 'bookworm.yaml');
  const yaml = await readFile(distro, 'utf8');
  assert.ok(yaml.includes('            - sudo\n'));
  await writeFile(distro, yaml.replace('            - sudo\n', '            - sudo\n            - hello\n'));
  const more = await imgmake(['--json', '-f', p.file, 'build', 'tar']);
  assert.equal(more.code, 0, more.stderr);
  assert.match(more.stderr, /locking distro\.packages: bookworm important \+ .*hello/);
  assert.deepEqual(ran(more), ['distro.packages', ...AFTER_PACKAGES, 'rootfs-tar.0'].sort());
  const listing = execFileSync('tar', ['--zstd', '-tvf', join(p.dir, 'out', 'tar', 'rootfs.tar.zst')], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.match(listing, /\.\/usr\/bin\/hello\n/);
  assert.match(listing, /\.\/etc\/hostname\n/);

  // The other workload is a one-line change of the include list: only what follows it runs.
  const root = await readFile(p.file, 'utf8');
  await writeFile(p.file, root.replace('workload/boot-check.yaml', 'workload/login.yaml'));
  const login = await imgmake(['--json', '-f', p.file, 'build', 'qcow2']);
  assert.equal(login.code, 0, login.stderr + login.stdout.slice(-3000));
  assert.deepEqual(ran(login), ['workload.motd', ...OS, 'esp.grub', 'disk.root', 'disk.esp', 'disk.bios', 'qcow2.0'].sort());
});
