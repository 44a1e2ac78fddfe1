/**
 * disk.vhd through the real sandbox: qemu-img reads a fixed VPC of the aligned size with the raw
 * disk's contents; the footer is valid (checksum), fixed (type 2), dated SOURCE_DATE_EPOCH and
 * carries the given ID; holes stay holes; two runs give the same bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readSync, readdirSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { makeDisk, sha256File, T } from '../../test/helpers/disk-fixtures.js';
import { VHD_EPOCH } from './index.js';

const UUID = '5a0e1f2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const MiB = 1024 * 1024;

function footer(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, lstatSync(path).size - 512);
    return b;
  } finally {
    closeSync(fd);
  }
}

async function withInput(size: number, fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-vhd-input-');
  try {
    const raw = join(t.dir, 'disk.raw');
    makeDisk(raw);
    const fd = openSync(raw, 'r+');
    writeSync(fd, Buffer.alloc(1 << 20, 0x5a), 0, 1 << 20, 50 << 20);
    closeSync(fd);
    truncateSync(raw, size);
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

for (const [what, size, aligned] of [['a MiB-aligned disk', 144 * MiB, 144 * MiB], ['a disk 1000 bytes past a MiB, rounded up', 144 * MiB + 1000, 145 * MiB]] as const) {
  test(`${what}: a fixed VHD that qemu-img reads as vpc of ${aligned} bytes, deterministic footer`, T, async () => {
    await withInput(size, async (dir) => {
      const digests: string[] = [];
      for (let i = 0; i < 2; i++) {
        await withRule('disk.vhd', { uuid: UUID }, { inputs: { tree: { kind: 'tree', path: dir } } }, (r) => {
          assertOk(r);
          assert.deepEqual(readdirSync(r.tree), ['disk.vhd']);
          const p = join(r.tree, 'disk.vhd');
          // A fixed VHD has no header, so qemu-img is told the format, as Azure's tools are.
          const info = JSON.parse(execFileSync('qemu-img', ['info', '-f', 'vpc', '--output=json', p], { encoding: 'utf8' }));
          assert.equal(info.format, 'vpc');
          assert.equal(info['virtual-size'], aligned);
          assert.equal(info['virtual-size'] % MiB, 0, 'Azure: a whole number of MiB');
          const st = lstatSync(p);
          assert.equal(st.size, aligned + 512, 'the disk, then the footer');
          assert.ok(st.blocks * 512 < 8 * MiB, `${st.blocks * 512} bytes allocated: the holes stay holes`);
          assert.equal(perms(st.mode), 0o644);
          assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
          const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', join(dir, 'disk.raw'), p], { encoding: 'utf8' });
          assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
          const f = footer(p);
          assert.equal(f.subarray(0, 8).toString('latin1'), 'conectix');
          assert.equal(f.readUInt32BE(60), 2, 'disk type: fixed');
          assert.equal(f.readBigUInt64BE(48), BigInt(aligned), 'current size');
          assert.equal(f.readUInt32BE(24), Math.max(0, Number(SOURCE_DATE_EPOCH) - VHD_EPOCH), 'timestamp: SOURCE_DATE_EPOCH, not now');
          assert.equal(f.subarray(68, 84).toString('hex'), UUID.replaceAll('-', ''));
          const zeroed = Buffer.from(f);
          zeroed.writeUInt32BE(0, 64);
          const sum = zeroed.reduce((a, b) => a + b, 0);
          assert.equal(f.readUInt32BE(64), ~sum >>> 0, 'checksum');
          assert.match(r.log, new RegExp(`disk\\.vhd: fixed VHD, virtual size ${aligned} bytes \\(the raw's ${size} rounded up to a MiB\\)`));
          digests.push(sha256File(p));
        });
      }
      assert.equal(digests[0], digests[1], 'two runs give the same bytes');
    });
  });
}

test('a missing raw image fails; the schema wants a UUID', T, async () => {
  const t = tempDir('imgmake-vhd-empty-');
  try {
    await withRule('disk.vhd', { uuid: UUID }, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => {
      assertFails(r, 'the tree input has no disk.raw');
    });
  } finally {
    t.cleanup();
  }
  assert.notDeepEqual(await schemaErrors('disk.vhd', {}), []);
  assert.notDeepEqual(await schemaErrors('disk.vhd', { uuid: 'not-a-uuid' }), []);
});
