/**
 * disk.convert through the real sandbox: what qemu-img info and compare say about the result, from
 * an input tree or from this tree, compressed or not, and byte-identical runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, runRule, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { makeDisk, sha256File, T } from '../../test/helpers/disk-fixtures.js';

interface Info {
  format: string;
  'virtual-size': number;
  'format-specific': { data: { compat: string; 'compression-type': string } };
  'cluster-size': number;
}

function info(path: string): Info {
  return JSON.parse(execFileSync('qemu-img', ['info', '--output=json', path], { encoding: 'utf8' })) as Info;
}

/** The test disk with some data: 2 MiB of a pattern in the root partition, a few bytes at the end. */
function makeData(path: string): void {
  makeDisk(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from(Array.from({ length: 2 << 20 }, (_, i) => (i * 31) % 256)), 0, 2 << 20, 50 << 20);
  writeSync(fd, Buffer.from('end of the disk'), 0, 15, (143 << 20) - 4096);
  closeSync(fd);
}

async function withInput(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-qcow2-input-');
  try {
    makeData(join(t.dir, 'disk.raw'));
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

function same(raw: string, qcow2: string): void {
  const r = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, qcow2], { encoding: 'utf8' });
  assert.equal(r.status, 0, `qemu-img compare: ${r.stdout}${r.stderr}`);
}

test('the input tree\'s disk.raw becomes disk.qcow2: qcow2 1.1, the same virtual size and contents, holes left out', T, async () => {
  await withInput(async (dir) => {
    await withRule('disk.convert', {}, { inputs: { tree: { kind: 'tree', path: dir } } }, (r) => {
      assertOk(r);
      assert.deepEqual(readdirSync(r.tree), ['disk.qcow2']);
      const p = join(r.tree, 'disk.qcow2');
      const i = info(p);
      assert.equal(i.format, 'qcow2');
      assert.equal(i['virtual-size'], 144 * 1024 * 1024);
      assert.equal(i['cluster-size'], 65536);
      assert.equal(i['format-specific'].data.compat, '1.1');
      assert.equal(i['format-specific'].data['compression-type'], 'zlib', "qemu-img's default type; nothing compressed");
      same(join(dir, 'disk.raw'), p);
      const st = lstatSync(p);
      assert.ok(st.size < 4 << 20, `${st.size} bytes: the holes are left out`);
      assert.equal(perms(st.mode), 0o644);
      assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
      assert.match(r.log, /disk\.qcow2: \d+ bytes of qcow2 from 150994944 raw \(compression none\)/);
    });
  });
});

test('zstd and zlib compress; each is byte-identical across runs', T, async () => {
  await withInput(async (dir) => {
    const sizes: Record<string, number> = {};
    for (const compression of ['none', 'zstd', 'zlib']) {
      const digests: string[] = [];
      for (let i = 0; i < 2; i++) {
        await withRule('disk.convert', { compression }, { inputs: { tree: { kind: 'tree', path: dir } } }, (r) => {
          assertOk(r);
          const p = join(r.tree, 'disk.qcow2');
          if (compression !== 'none') assert.equal(info(p)['format-specific'].data['compression-type'], compression);
          same(join(dir, 'disk.raw'), p);
          sizes[compression] = lstatSync(p).size;
          digests.push(sha256File(p));
        });
      }
      assert.equal(digests[0], digests[1], compression);
    }
    assert.ok(sizes['zstd']! < sizes['none']!, JSON.stringify(sizes));
  });
});

test('with no input, the raw image of this tree is converted and kept', T, async () => {
  await withRule('disk.convert', { source: 'disk.raw', filename: 'vm.qcow2' }, { tree: (t: string) => makeData(join(t, 'disk.raw')) }, (r) => {
    assertOk(r);
    assert.deepEqual(readdirSync(r.tree).sort(), ['disk.raw', 'vm.qcow2']);
    same(join(r.tree, 'disk.raw'), join(r.tree, 'vm.qcow2'));
  });
});

test('a missing raw image fails; converting a file onto itself is refused before running', T, async () => {
  await withRule('disk.convert', {}, {}, (r) => {
    assertFails(r, 'the tree has no disk.raw (a raw disk image, made by disk.partition)');
  });
  const t = tempDir('imgmake-qcow2-empty-');
  try {
    await withRule('disk.convert', { source: 'other.raw' }, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => {
      assertFails(r, 'the tree input has no other.raw');
    });
  } finally {
    t.cleanup();
  }
  await assert.rejects(runRule('disk.convert', { source: 'x.img', filename: 'x.img' }), /both "x\.img"/);
  assert.notDeepEqual(await schemaErrors('disk.convert', { compression: 'xz' }), []);
  assert.notDeepEqual(await schemaErrors('disk.convert', { filename: 'out/disk.qcow2' }), []);
  assert.notDeepEqual(await schemaErrors('disk.convert', { format: 'vmdk' }), []);
});
