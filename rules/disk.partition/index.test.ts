/**
 * disk.partition through the real sandbox: the GPT sfdisk reads back, sparseness, replacement of
 * an old image, reproducibility, and the layouts it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOk, perms, runRule, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { allocated, DISK, LABEL_ID, ROOT_PARTUUID, sfdiskJson, sha256File, T } from '../../test/helpers/disk-fixtures.js';
import { layout } from './index.js';

test('a sparse disk image with exactly the GPT the options give', T, async () => {
  await withRule('disk.partition', DISK, {}, (r) => {
    assertOk(r);
    assert.deepEqual(readdirSync(r.tree), ['disk.raw']);
    const p = join(r.tree, 'disk.raw');
    const st = lstatSync(p);
    assert.equal(st.size, 144 * 1024 * 1024);
    assert.ok(allocated(p) < 256 * 1024, `sparse: ${allocated(p)} bytes allocated`);
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
    const t = sfdiskJson(p);
    assert.equal(t.label, 'gpt');
    assert.equal(t.id, LABEL_ID);
    assert.equal(t.sectorsize, 512);
    assert.equal(t.firstlba, 2048);
    assert.deepEqual(
      t.partitions.map(({ start, size, type, uuid, name }) => ({ start, size, type, uuid, name })),
      [
        { start: 2048, size: 2048, type: '21686148-6449-6E6F-744E-656564454649', uuid: '6A1B2C3D-0000-4000-8000-000000000003', name: 'bios' },
        { start: 4096, size: 81920, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: '6A1B2C3D-0000-4000-8000-000000000001', name: 'esp' },
        // rest: from 42 MiB to the last 1 MiB boundary before the backup GPT (143 MiB).
        { start: 86016, size: 206848, type: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', uuid: ROOT_PARTUUID, name: 'root' },
      ],
    );
    assert.match(r.log, /label-id: 4F3C1E2A/, 'the table is printed to the log');
  });
});

test('type names and GUIDs, explicit starts, lower-case GUIDs, a name with spaces', T, async () => {
  const options = {
    filename: 'other.img',
    size: '64M',
    label_id: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
    partitions: [
      { name: 'EFI System', type: 'esp', size: '8M', uuid: '11111111-2222-4333-8444-555555555555', start: '4M' },
      { name: 'swap', type: 'swap', size: '8M', uuid: '11111111-2222-4333-8444-555555555556' },
      { name: 'data', type: '0fc63daf-8483-4772-8e79-3d69d8477de4', size: '1000K', uuid: '11111111-2222-4333-8444-555555555557' },
      { name: 'home', type: 'home', size: 'rest', uuid: '11111111-2222-4333-8444-555555555558' },
    ],
  };
  await withRule('disk.partition', options, {}, (r) => {
    assertOk(r);
    const t = sfdiskJson(join(r.tree, 'other.img'));
    assert.equal(t.id, 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE');
    assert.deepEqual(
      t.partitions.map(({ start, size, type, name }) => [start, size, type, name]),
      [
        [8192, 16384, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'EFI System'],
        [24576, 16384, '0657FD6D-A4AB-4C6F-8450-1E3E0A0F7A6B', 'swap'],
        [40960, 2000, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'data'],
        [43008, 86016, '933AC7E1-2EB4-4F13-B844-0E14E2AEF915', 'home'],
      ],
    );
  });
});

test('an existing image is replaced, not partitioned again; the same options give the same bytes', T, async () => {
  const digests: string[] = [];
  for (const old of [false, true]) {
    const setup = (tree: string) => {
      if (old) writeFileSync(join(tree, 'disk.raw'), Buffer.alloc(1024 * 1024, 0xff));
    };
    await withRule('disk.partition', DISK, { tree: setup }, (r) => {
      assertOk(r);
      const p = join(r.tree, 'disk.raw');
      assert.equal(lstatSync(p).size, 144 * 1024 * 1024);
      digests.push(sha256File(p));
    });
  }
  assert.equal(digests[0], digests[1]);
});

test('layouts that do not fit make invoke throw, naming the partition', T, async () => {
  const base = { size: '64M', label_id: LABEL_ID };
  const p = (name: string, size: string, start?: string) => ({ name, type: 'linux', size, uuid: ROOT_PARTUUID, ...(start ? { start } : {}) });
  assert.throws(() => layout({ ...base, partitions: [p('a', '64M')] }), /partitions\[0\] \(a\): ends at sector 133119, past the last usable sector 131038/);
  assert.throws(() => layout({ ...base, partitions: [p('a', 'rest'), p('b', '1M')] }), /partitions\[0\] \(a\): only the last partition/);
  assert.throws(() => layout({ ...base, partitions: [p('a', '8M'), p('b', '1M', '4M')] }), /partitions\[1\] \(b\): start 4M overlaps/);
  assert.throws(() => layout({ ...base, partitions: [p('a', '1M', '512K')] }), /overlaps the GPT/);
  assert.throws(() => layout({ ...base, partitions: [p('a', '1000')] }), /size 1000 is not a multiple of 512/);
  assert.throws(() => layout({ ...base, partitions: [p('a', '1M'), p('a', '1M')] }), /another partition has the name "a"/);
  assert.throws(() => layout({ ...base, size: '1M', partitions: [p('a', 'rest')] }), /leaves no room/);
  await assert.rejects(runRule('disk.partition', { ...base, partitions: [p('a', '1G')] }), /partitions\[0\] \(a\)/);
});

test('the schema wants GUIDs, sizes with units and simple names', T, async () => {
  const ok = { size: '64M', label_id: LABEL_ID, partitions: [{ name: 'root', type: 'linux', size: 'rest', uuid: ROOT_PARTUUID }] };
  assert.deepEqual(await schemaErrors('disk.partition', ok), []);
  const bad: unknown[] = [
    { ...ok, label_id: 'random' },
    { ...ok, size: '4GB' },
    { ...ok, size: '0' },
    { ...ok, partitions: [] },
    { ...ok, filename: 'a/b.raw' },
    { ...ok, partitions: [{ ...ok.partitions[0], type: 'ntfs' }] },
    { ...ok, partitions: [{ ...ok.partitions[0], name: 'a"b' }] },
    { ...ok, partitions: [{ ...ok.partitions[0], uuid: undefined }] },
    { size: '64M', partitions: ok.partitions },
  ];
  for (const b of bad) assert.notDeepEqual(await schemaErrors('disk.partition', b), [], JSON.stringify(b));
});
