/**
 * `imgmake boot`: QEMU's command line (pure), the accelerator probe on the real firmware, and a
 * real boot of an exported disk: a boot sector built by a stage that prints a marker on the
 * serial console, then triple-faults, which `-no-reboot` turns into QEMU exiting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { diskProject } from './helpers/boot-disk.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OVMF_CODE, probeAccel, qemuArgs } from '../src/boot.js';
import { findImage } from '../src/cli/boot.js';
import { imgmake, tempProject } from './helpers/cli.js';

const after = (a: string[], flag: string): string[] => a.flatMap((x, i) => (x === flag ? [a[i + 1]!] : []));

test('qemuArgs: UEFI has the firmware read-only and a writable variable store; BIOS has neither', () => {
  const uefi = qemuArgs({ disk: '/t/d.qcow2', firmware: 'uefi', accel: 'tcg', memoryMiB: 1024, cpus: 2, varsFile: '/t/vars.fd', interactive: false });
  assert.deepEqual(after(uefi, '-drive'), [
    `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
    'if=pflash,format=raw,unit=1,file=/t/vars.fd',
    'if=virtio,format=qcow2,file=/t/d.qcow2',
  ]);
  assert.deepEqual(after(uefi, '-machine'), ['q35,accel=tcg']);
  assert.deepEqual(after(uefi, '-cpu'), ['max']);
  assert.deepEqual(after(uefi, '-serial'), ['stdio']);
  assert.deepEqual(after(uefi, '-nic'), ['none'], 'no network unless asked');
  assert.ok(uefi.includes('-no-reboot') && uefi.includes('-nographic'));
  const bios = qemuArgs({ disk: '/t/d.qcow2', firmware: 'bios', accel: 'kvm', memoryMiB: 512, cpus: 1, sshPort: 2222, interactive: true });
  assert.deepEqual(after(bios, '-drive'), ['if=virtio,format=qcow2,file=/t/d.qcow2']);
  assert.deepEqual(after(bios, '-cpu'), ['host']);
  assert.deepEqual(after(bios, '-serial'), ['mon:stdio']);
  assert.deepEqual(after(bios, '-nic'), ['user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22']);
  assert.deepEqual(after(bios, '-m'), ['512']);
  assert.throws(() => qemuArgs({ firmware: 'uefi', accel: 'tcg', memoryMiB: 1, cpus: 1, interactive: false }), /variable store/);
});

test('the accelerator probe: the UEFI firmware starts under software emulation', { timeout: 300_000 }, async () => {
  // Generous: OVMF takes ~5 s under TCG on an idle machine, several times that under load.
  const tcg = await probeAccel('tcg', 240_000);
  assert.deepEqual(tcg, { ok: true, why: 'the UEFI firmware runs under tcg' });
  // KVM may or may not run guests on a machine; the probe must answer either way, with a reason.
  const kvm = await probeAccel('kvm');
  assert.equal(typeof kvm.ok, 'boolean');
  assert.match(kvm.why, /kvm/);
});

test('findImage: the .qcow2 of the target, a named file, or a message that says what to do', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-boot-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const missing = await findImage(join(dir, 'nope'), 'qcow2');
  assert.ok(!missing.ok);
  assert.match(missing.error.message, /target qcow2 has not been built/);
  assert.equal(missing.error.hint, 'run imgmake build qcow2 first');
  await writeFile(join(dir, 'disk.raw'), '');
  await writeFile(join(dir, 'disk.qcow2'), '');
  await writeFile(join(dir, 'notes.txt'), '');
  assert.deepEqual(await findImage(dir, 'x'), { ok: true, value: { path: join(dir, 'disk.qcow2'), format: 'qcow2' } });
  assert.deepEqual(await findImage(dir, 'x', 'disk.raw'), { ok: true, value: { path: join(dir, 'disk.raw'), format: 'raw' } });
  const wrong = await findImage(dir, 'x', 'other.img');
  assert.ok(!wrong.ok);
  assert.match(wrong.error.hint!, /disk\.qcow2, disk\.raw/);
  // The image formats the catalog exports: QEMU's format names, a fixed VHD's told (no header).
  const other = await mkdtemp(join(tmpdir(), 'imgmake-boot-'));
  t.after(() => rm(other, { recursive: true, force: true }));
  await writeFile(join(other, 'disk.vmdk'), '');
  assert.deepEqual(await findImage(other, 'vmdk'), { ok: true, value: { path: join(other, 'disk.vmdk'), format: 'vmdk' } });
  await writeFile(join(other, 'disk.vhd'), '');
  assert.deepEqual(await findImage(other, 'vhd', 'disk.vhd'), { ok: true, value: { path: join(other, 'disk.vhd'), format: 'vpc' } });
  // A live ISO is booted as it is, from a CD-ROM drive.
  const iso = join(dir, 'iso');
  await mkdir(iso);
  await writeFile(join(iso, 'live.iso'), '');
  assert.deepEqual(await findImage(iso, 'iso'), { ok: true, value: { path: join(iso, 'live.iso'), format: 'iso' } });
});

test('qemuArgs: an ISO goes into a read-only CD-ROM drive, with no disk', () => {
  const a = qemuArgs({ cdrom: '/t/live.iso', firmware: 'bios', accel: 'tcg', memoryMiB: 1024, cpus: 2, interactive: false });
  assert.ok(a.join(' ').includes('-drive media=cdrom,readonly=on,format=raw,file=/t/live.iso'));
  assert.ok(!a.join(' ').includes('if=virtio'), a.join(' '));
});


test('imgmake boot: boots the exported disk with SeaBIOS, its serial console on stdout; the image is not written', { timeout: 120_000 }, async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  await writeFile(p.file, diskProject('IMGMAKE-BOOTED'));
  const notBuilt = await imgmake(['-f', p.file, 'boot', 'disk', '--bios', '--accel', 'tcg']);
  assert.equal(notBuilt.code, 2);
  assert.match(notBuilt.stderr, /target disk has not been built/);
  const built = await imgmake(['-f', p.file, 'build', 'disk']);
  assert.equal(built.code, 0, built.stdout + built.stderr);
  const image = join(p.dir, 'out', 'disk', 'disk.raw');
  const { createHash } = await import('node:crypto');
  const { readFile } = await import('node:fs/promises');
  const before = createHash('sha256').update(await readFile(image)).digest('hex');
  const booted = await imgmake(['-f', p.file, 'boot', 'disk', '--bios', '--accel', 'tcg', '--memory', '64']);
  assert.equal(booted.code, 0, booted.stderr);
  assert.match(booted.stdout, /IMGMAKE-BOOTED/);
  assert.match(booted.stderr, /booting .*disk\.raw \(bios, tcg: as asked\)/);
  assert.equal(createHash('sha256').update(await readFile(image)).digest('hex'), before, 'the exported image is untouched');
});

test('imgmake boot: a target without a disk image, and bad flags, are usage errors', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  assert.equal((await imgmake(['-f', p.file, 'build', 'hello'])).code, 0);
  const noDisk = await imgmake(['-f', p.file, 'boot', 'hello']);
  assert.equal(noDisk.code, 2);
  assert.match(noDisk.stderr, /no disk image \(\.qcow2, \.raw, \.img, \.vmdk, \.vhd\)/);
  const badAccel = await imgmake(['-f', p.file, 'boot', 'hello', '--accel', 'xen']);
  assert.equal(badAccel.code, 2);
  assert.match(badAccel.stderr, /--accel xen: not auto, kvm or tcg/);
  const unknown = await imgmake(['-f', p.file, 'boot', 'nosuch']);
  assert.equal(unknown.code, 2);
});
