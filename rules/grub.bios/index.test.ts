/**
 * grub.bios through the real sandbox, on a small partitioned disk: the MBR and the BIOS boot
 * partition hold exactly boot.img and a core.img made on the host with the expected prefix,
 * patched as grub-bios-setup patches them; the partition table and the other partitions are
 * untouched; partitions that must not get core.img are refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { ESP_OFFSET, makeDisk, sfdiskJson, sha256File, T } from '../../test/helpers/disk-fixtures.js';
import { GRUB_MODULES } from '../_lib/disk.js';

const PC = '/usr/lib/grub/i386-pc';
const TG = { ...T, skip: !existsSync(join(PC, 'moddep.lst')) && `no ${PC} (grub-pc-bin)` };

let work: { dir: string; cleanup: () => void };
let root: string;
before(() => {
  work = tempDir('imgmake-grub-bios-');
  root = join(work.dir, 'root');
  if (!existsSync(PC)) return;
  mkdirSync(join(root, 'usr/lib/grub'), { recursive: true });
  execFileSync('cp', ['-a', PC, join(root, 'usr/lib/grub/')]);
});
after(() => work.cleanup());

function read(path: string, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, length, offset);
  closeSync(fd);
  return b;
}

function le64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** The core.img grub-mkimage makes on the host for this prefix. */
function referenceCore(prefix: string, extra: string[] = []): Buffer {
  const out = join(work.dir, 'core.img');
  execFileSync('grub-mkimage', ['-O', 'i386-pc', '-d', PC, '-p', prefix, '-o', out, 'biosdisk', ...GRUB_MODULES, ...extra]);
  return readFileSync(out);
}

const disk = (t: string) => makeDisk(join(t, 'disk.raw'));

test('boot.img in the MBR and core.img in the BIOS boot partition, patched like grub-bios-setup; grub.cfg from the ESP', TG, async () => {
  await withRule('grub.bios', {}, { tree: disk, inputs: { tree: { kind: 'tree', path: root } } }, (r) => {
    assertOk(r);
    const p = join(r.tree, 'disk.raw');
    const boot = readFileSync(join(PC, 'boot.img'));
    const mbr = read(p, 0, 512);
    const expected = Buffer.from(boot.subarray(0, 440));
    le64(2048).copy(expected, 0x5c);
    expected[0x66] = 0x90;
    expected[0x67] = 0x90;
    assert.ok(mbr.subarray(0, 440).equals(expected), 'boot.img code with the core.img sector and the drive-check NOPs');
    assert.equal(mbr.readUInt16LE(510), 0xaa55);
    assert.equal(mbr[450], 0xee, 'the protective MBR entry is kept');
    const t = sfdiskJson(p);
    assert.equal(t.partitions.length, 3);
    assert.equal(t.id, '4F3C1E2A-0B1D-4C5E-9A7B-1D2E3F405162');
    const core = Buffer.from(referenceCore('(,gpt2)/EFI/BOOT'));
    le64(2049).copy(core, 500);
    assert.ok(read(p, 2048 * 512, core.length).equals(core), 'core.img (prefix (,gpt2)/EFI/BOOT) with its second sector patched');
    assert.ok(read(p, 2048 * 512 + core.length, 1024 * 1024 - core.length).every((b) => b === 0), 'the rest of the partition is zeros');
    assert.ok(read(p, ESP_OFFSET, 1024 * 1024).every((b) => b === 0), 'the ESP is untouched');
    assert.match(r.log, /disk\.raw: core\.img \(\d+ sectors\) in partition 1 \(bios\), grub\.cfg from \(,gpt2\)\/EFI\/BOOT, modules from \/run\/imgmake\/inputs\/tree\/usr\/lib\/grub\/i386-pc/);
  });
});

test('named partitions, another config directory, the buildroot\'s modules; the same options give the same bytes', TG, async () => {
  const digests: string[] = [];
  for (let i = 0; i < 2; i++) {
    await withRule('grub.bios', { partition: 'bios', config_partition: 3, config_directory: '/boot/grub' }, { tree: disk }, (r) => {
      assertOk(r);
      const p = join(r.tree, 'disk.raw');
      const core = Buffer.from(referenceCore('(,gpt3)/boot/grub'));
      le64(2049).copy(core, 500);
      assert.ok(read(p, 2048 * 512, core.length).equals(core));
      digests.push(sha256File(p));
    });
  }
  assert.equal(digests[0], digests[1]);
});

test('a partition that is not BIOS boot, a disk without one, or without an ESP, is refused', TG, async () => {
  await withRule('grub.bios', { partition: 'root' }, { tree: disk }, (r) => {
    assertFails(r, 'disk.raw: partition 3 (root) is not a BIOS boot partition', 'core.img would overwrite it');
    assert.equal(read(join(r.tree, 'disk.raw'), 0, 440).every((b) => b === 0), true, 'the MBR code is untouched');
  });
  const espOnly = (t: string) => {
    execFileSync('truncate', ['-s', '64M', join(t, 'disk.raw')]);
    execFileSync('sfdisk', ['--quiet', join(t, 'disk.raw')], { input: 'label: gpt\nstart=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"\n' });
  };
  await withRule('grub.bios', {}, { tree: espOnly }, (r) => {
    assertFails(r, `disk.raw: no partition with type 21686148-6449-6e6f-744e-656564454649; the disk has (number:name) 1:esp`);
  });
  const biosOnly = (t: string) => {
    execFileSync('truncate', ['-s', '64M', join(t, 'disk.raw')]);
    execFileSync('sfdisk', ['--quiet', join(t, 'disk.raw')], { input: 'label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="bios"\n' });
  };
  await withRule('grub.bios', {}, { tree: biosOnly }, (r) => {
    assertFails(r, 'disk.raw: no partition with type c12a7328-f81f-11d2-ba4b-00a0c93ec93b; the disk has (number:name) 1:bios');
  });
  await withRule('grub.bios', {}, { tree: (t: string) => writeFileSync(join(t, 'disk.raw'), Buffer.alloc(1 << 20)) }, (r) => {
    assertFails(r, 'disk.raw: no partition table');
  });
});

test('the schema takes partitions by number or name', async () => {
  assert.deepEqual(await schemaErrors('grub.bios', {}), []);
  assert.deepEqual(await schemaErrors('grub.bios', { partition: 1, config_partition: 'EFI System' }), []);
  for (const bad of [{ partition: 0 }, { config_directory: 'EFI' }, { modules: ['a b'] }, { partition: 'x$' }]) {
    assert.notDeepEqual(await schemaErrors('grub.bios', bad), [], JSON.stringify(bad));
  }
});
