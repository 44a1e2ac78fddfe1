/**
 * disk.gce through the real sandbox, checked as GCE reads it: a gzip holding a GNU tar whose only
 * entry is disk.raw (0:0, SOURCE_DATE_EPOCH), extracting to the disk's bytes; and the same disk
 * with other holes and other host times gives the same archive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { makeDisk, sha256File, T } from '../../test/helpers/disk-fixtures.js';

function makeData(path: string): void {
  makeDisk(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7) % 251)), 0, 1 << 20, 50 << 20);
  closeSync(fd);
}

test('disk.raw alone in a GNU tar.gz, 0:0 at SOURCE_DATE_EPOCH; the same disk with other holes and times gives the same bytes', T, async () => {
  const t = tempDir('imgmake-gce-input-');
  try {
    makeData(join(t.dir, 'sparse', 'disk.raw'));
    mkdirSync(join(t.dir, 'dense'));
    // The same bytes, every zero written out (no holes), another mtime, under another name.
    execFileSync('cp', ['--sparse=never', join(t.dir, 'sparse', 'disk.raw'), join(t.dir, 'dense', 'vm.img')]);
    utimesSync(join(t.dir, 'dense', 'vm.img'), new Date('2021-03-04T05:06:07Z'), new Date('2021-03-04T05:06:07Z'));
    assert.ok(lstatSync(join(t.dir, 'dense', 'vm.img')).blocks > 4 * lstatSync(join(t.dir, 'sparse', 'disk.raw')).blocks);
    const digests: string[] = [];
    for (const [copy, source] of [['sparse', 'disk.raw'], ['dense', 'vm.img']] as const) {
      await withRule('disk.gce', { source }, { inputs: { tree: { kind: 'tree', path: join(t.dir, copy) } } }, (r) => {
        assertOk(r);
        assert.deepEqual(readdirSync(r.tree), ['image.tar.gz']);
        const p = join(r.tree, 'image.tar.gz');
        const gz = readFileSync(p);
        assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b], 'gzip');
        assert.equal(gz[3]! & 0x08, 0, 'no file name in the gzip header');
        assert.equal(gz.readUInt32LE(4), 0, 'no time in the gzip header');
        const tar = gunzipSync(gz);
        assert.equal(tar.subarray(257, 265).toString('latin1'), 'ustar  \0', 'the GNU tar magic');
        assert.equal(execFileSync('tar', ['--list', '-f', p], { encoding: 'utf8' }), 'disk.raw\n', 'disk.raw, and nothing else');
        assert.match(execFileSync('tar', ['--utc', '-tvf', p], { encoding: 'utf8' }), /^-rw-r--r-- 0\/0 +150994944 1980-01-01 00:00 disk\.raw\n$/);
        const x = join(t.dir, `x-${copy}`);
        mkdirSync(x);
        execFileSync('tar', ['-C', x, '-xSf', p]);
        assert.equal(sha256File(join(x, 'disk.raw')), sha256File(join(t.dir, 'sparse', 'disk.raw')), 'extracts to the disk');
        assert.ok(lstatSync(join(x, 'disk.raw')).blocks * 512 < 8 << 20, 'and extracts sparse');
        assert.match(r.log, /image\.tar\.gz: \d+ bytes, disk\.raw of 150994944 bytes/);
        digests.push(sha256File(p));
      });
    }
    assert.equal(digests[0], digests[1]);
  } finally {
    t.cleanup();
  }
});

test('a missing raw image fails; the schema refuses paths', T, async () => {
  const t = tempDir('imgmake-gce-empty-');
  try {
    await withRule('disk.gce', {}, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => assertFails(r, 'the tree input has no disk.raw'));
  } finally {
    t.cleanup();
  }
  assert.notDeepEqual(await schemaErrors('disk.gce', { filename: 'a/b.tar.gz' }), []);
});
