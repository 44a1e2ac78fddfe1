/**
 * disk.compress through the real sandbox: xz and zstd files that decompress to the disk, made
 * in the multi-threaded mode (several xz blocks), equal to what the same tool gives with other
 * thread counts, and equal across runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, execSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, runRule, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { sha256File, T } from '../../test/helpers/disk-fixtures.js';
import { XZ_BLOCK_SIZE } from './index.js';

/** 40 MiB, sparse, with 3 MiB of data in three places (two xz blocks). */
function makeData(path: string): void {
  execFileSync('truncate', ['-s', '40M', path]);
  const fd = openSync(path, 'r+');
  for (const at of [1, 20, 35]) writeSync(fd, Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * at) % 253)), 0, 1 << 20, at << 20);
  closeSync(fd);
}

const sha = (cmd: string): string => execSync(`${cmd} | sha256sum`, { encoding: 'utf8', shell: '/bin/bash' }).split(' ')[0]!;

test('xz and zstd: decompress to the disk, multi-threaded, the same bytes whatever the thread count and run', { timeout: 120_000 }, async () => {
  const t = tempDir('imgmake-compress-input-');
  try {
    const raw = join(t.dir, 'disk.raw');
    makeData(raw);
    for (const [compression, file] of [['xz', 'disk.raw.xz'], ['zstd', 'disk.raw.zst']] as const) {
      const digests: string[] = [];
      for (let i = 0; i < 2; i++) {
        await withRule('disk.compress', { compression }, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => {
          assertOk(r);
          assert.deepEqual(readdirSync(r.tree), [file]);
          const p = join(r.tree, file);
          const st = lstatSync(p);
          assert.equal(perms(st.mode), 0o644);
          assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
          assert.ok(st.size < 1 << 20, `${st.size} bytes`);
          const tool = compression === 'xz' ? 'xz' : 'zstd';
          assert.equal(sha(`${tool} -dc ${p}`), sha256File(raw), 'decompresses to the disk');
          if (compression === 'xz') {
            const blocks = /^totals\s+\d+\s+(\d+)/m.exec(execFileSync('xz', ['--robot', '-lv', p], { encoding: 'utf8' }))?.[1];
            assert.equal(Number(blocks), 2, 'multi-threaded mode: 24 MiB blocks');
            for (const threads of ['2', '+1']) assert.equal(sha(`xz -6 -T${threads} --block-size=${XZ_BLOCK_SIZE} -c ${raw}`), sha256File(p), `xz -T${threads}`);
          } else {
            for (const threads of ['1', '2', '4']) assert.equal(sha(`zstd -10 -q -T${threads} -c ${raw}`), sha256File(p), `zstd -T${threads}`);
          }
          assert.match(r.log, new RegExp(`${file.replaceAll('.', '\\.')}: \\d+ bytes from 41943040 \\(${compression} -(6|10)\\)`));
          digests.push(sha256File(p));
        });
      }
      assert.equal(digests[0], digests[1], compression);
    }
    await withRule('disk.compress', { compression: 'zstd', level: 3, filename: 'img.zst' }, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => {
      assertOk(r);
      assert.deepEqual(readdirSync(r.tree), ['img.zst']);
    });
  } finally {
    t.cleanup();
  }
});

test('a missing file fails; xz above 9 fails; the schema wants a compression', T, async () => {
  const t = tempDir('imgmake-compress-empty-');
  try {
    await withRule('disk.compress', { compression: 'xz' }, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => assertFails(r, 'the tree input has no disk.raw'));
    await assert.rejects(runRule('disk.compress', { compression: 'xz', level: 12 }, { inputs: { tree: { kind: 'tree', path: t.dir } } }), /xz has levels 1 to 9, not 12/);
  } finally {
    t.cleanup();
  }
  assert.notDeepEqual(await schemaErrors('disk.compress', {}), []);
  assert.notDeepEqual(await schemaErrors('disk.compress', { compression: 'gzip' }), []);
});
