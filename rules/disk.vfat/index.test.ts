/**
 * disk.vfat through the real sandbox, on a small partitioned disk: what mtools reads back (files,
 * bytes, volume ID, label, FAT type), the bytes around the partition, byte-identical images from
 * differently made copies of a tree, and what FAT cannot hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { ESP_OFFSET, makeDisk, ROOT_OFFSET, sha256File, T, tmpfsDir, touchAll } from '../../test/helpers/disk-fixtures.js';

const EFI = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 7919) % 251));
const ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

function makeEspTree(dir: string, { reverse = false, time }: { reverse?: boolean; time?: Date } = {}): void {
  const file = (rel: string, content: string | Buffer) => () => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  };
  const steps = [
    file('EFI/BOOT/BOOTX64.EFI', EFI),
    file('EFI/BOOT/grub.cfg', 'set timeout=1\n'),
    file('EFI/debian/grubx64.efi', 'x'),
    file('loader/entries/a-rather-long-entry-name.conf', 'title Linux\n'),
    file('loader/entries/a-rather-long-entry-name-2.conf', 'title Linux 2\n'),
    () => mkdirSync(join(dir, 'empty'), { recursive: true }),
  ];
  mkdirSync(dir, { recursive: true });
  for (const step of reverse ? [...steps].reverse() : steps) step();
  if (time) touchAll(dir, time);
}

function mtools(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: ENV });
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-vfat-input-');
  try {
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

const bind = (dir: string) => ({ inputs: { tree: { kind: 'tree' as const, path: dir } }, tree: (t: string) => makeDisk(join(t, 'disk.raw')) });

function readRange(path: string, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, length, offset);
  closeSync(fd);
  return b;
}

test('the tree lands in the ESP: files, bytes, directories, volume ID and label; FAT32 with 512-byte clusters; fsck.fat clean', T, async () => {
  await withDir(async (dir) => {
    makeEspTree(join(dir, 'esp'));
    await withRule('disk.vfat', { partition: 'esp', volume_id: '1234abcd', label: 'ESP' }, bind(join(dir, 'esp')), (r) => {
      assertOk(r);
      const disk = join(r.tree, 'disk.raw');
      const img = `${disk}@@${ESP_OFFSET}`;
      assert.deepEqual(mtools('mdir', '-i', img, '-/', '-b', '::/').trim().split('\n').sort(), [
        '::/EFI/',
        '::/EFI/BOOT/',
        '::/EFI/BOOT/BOOTX64.EFI',
        '::/EFI/BOOT/grub.cfg',
        '::/EFI/debian/',
        '::/EFI/debian/grubx64.efi',
        '::/empty/',
        '::/loader/',
        '::/loader/entries/',
        '::/loader/entries/a-rather-long-entry-name-2.conf',
        '::/loader/entries/a-rather-long-entry-name.conf',
      ]);
      const listing = mtools('mdir', '-i', img, '::/EFI/BOOT');
      assert.match(listing, /Volume in drive : is ESP/);
      assert.match(listing, /Volume Serial Number is 1234-ABCD/);
      assert.match(listing, /1980-01-01 +0:00/, 'SOURCE_DATE_EPOCH');
      assert.equal(mtools('mtype', '-i', img, '::/EFI/BOOT/grub.cfg'), 'set timeout=1\n');
      const out = join(dir, 'BOOTX64.EFI');
      mtools('mcopy', '-i', img, '::/EFI/BOOT/BOOTX64.EFI', out);
      assert.ok(readFileSync(out).equals(EFI), 'the EFI binary comes back byte for byte');
      assert.match(mtools('minfo', '-i', img), /cluster size: 1 sectors[\s\S]*hidden sectors: 4096/);
      // The partition alone, for file(1) and fsck.fat.
      const part = join(dir, 'esp.img');
      writeFileSync(part, readRange(disk, ESP_OFFSET, 40 * 1024 * 1024));
      assert.match(execFileSync('file', ['-b', part], { encoding: 'utf8' }), /FAT \(32 bit\).*serial number 0x1234abcd, label: "ESP        "/);
      const fsck = spawnSync('fsck.vfat', ['-n', part], { encoding: 'utf8' });
      assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
      assert.ok(readRange(disk, ROOT_OFFSET, 4 * 1024 * 1024).every((b) => b === 0), 'the root partition is untouched');
      assert.match(r.log, /disk\.raw: partition 2 \(esp\): FAT32, volume ID 1234ABCD, 6 directories and 5 files/);
    });
  });
});

test('copies of a tree made in another order, with other host times, give byte-identical disks', T, async () => {
  await withDir(async (dir) => {
    const shm = tmpfsDir('imgmake-vfat-');
    try {
      makeEspTree(join(dir, 'one'), { time: new Date('2024-05-01T12:34:56Z') });
      makeEspTree(join(shm.dir, 'two'), { reverse: true, time: new Date('2011-01-01T00:00:01Z') });
      const digests: string[] = [];
      for (const input of [join(dir, 'one'), join(shm.dir, 'two')]) {
        await withRule('disk.vfat', { partition: 2, volume_id: '1234ABCD' }, bind(input), (r) => {
          assertOk(r);
          digests.push(sha256File(join(r.tree, 'disk.raw')));
        });
      }
      assert.equal(digests[0], digests[1]);
    } finally {
      shm.cleanup();
    }
  });
});

test('fat_size 16; FAT32 on a 1 MiB partition fails, saying what to do', T, async () => {
  await withDir(async (dir) => {
    makeEspTree(join(dir, 'esp'));
    await withRule('disk.vfat', { partition: 'esp', volume_id: '0000BEEF', fat_size: 16 }, bind(join(dir, 'esp')), (r) => {
      assertOk(r);
      const part = join(dir, 'esp.img');
      writeFileSync(part, readRange(join(r.tree, 'disk.raw'), ESP_OFFSET, 40 * 1024 * 1024));
      assert.match(execFileSync('file', ['-b', part], { encoding: 'utf8' }), /serial number 0xbeef, unlabeled, FAT \(16 bit\)/);
    });
    await withRule('disk.vfat', { partition: 'bios', volume_id: '0000BEEF' }, bind(join(dir, 'esp')), (r) => {
      assertFails(r, 'disk.raw: partition 1 (bios): 1 MiB is too small for FAT32 (at least 33 MiB); use fat_size 16');
    });
  });
});

test('a symlink, a name FAT cannot hold and names differing in case fail before anything is written', T, async () => {
  const cases: [string, (d: string) => void, string][] = [
    ['symlink', (d) => symlinkSync('BOOT', join(d, 'EFI/link')), 'not the symlink or special file /EFI/link'],
    ['name', (d) => writeFileSync(join(d, 'EFI/a:b'), ''), 'FAT cannot hold the name /EFI/a:b'],
    ['case', (d) => writeFileSync(join(d, 'EFI/boot'), ''), 'FAT names ignore case; the tree has two names for /EFI/BOOT'],
  ];
  for (const [what, spoil, message] of cases) {
    await withDir(async (dir) => {
      makeEspTree(join(dir, 'esp'));
      spoil(join(dir, 'esp'));
      await withRule('disk.vfat', { partition: 'esp', volume_id: '1234ABCD' }, bind(join(dir, 'esp')), (r) => {
        assertFails(r, message);
        assert.ok(readRange(join(r.tree, 'disk.raw'), ESP_OFFSET, 1024 * 1024).every((b) => b === 0), `${what}: nothing written`);
      });
    });
  }
});

test('the schema wants a partition and an 8-digit volume ID', T, async () => {
  assert.deepEqual(await schemaErrors('disk.vfat', { partition: 'esp', volume_id: '1234ABCD' }), []);
  for (const bad of [
    { partition: 'esp' },
    { partition: 'esp', volume_id: '1234-ABCD' },
    { partition: 'esp', volume_id: '1234ABCD', label: 'lower' },
    { partition: 'esp', volume_id: '1234ABCD', fat_size: 64 },
  ]) {
    assert.notDeepEqual(await schemaErrors('disk.vfat', bad), [], JSON.stringify(bad));
  }
});
