/**
 * archive.squashfs through the real sandbox: what unsquashfs reads back (owners, modes, links,
 * hardlinks, a device node, an xattr, every time SOURCE_DATE_EPOCH), the compressor and block
 * size asked for, the same bytes from two runs, and the failures a user meets.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { sha256File } from '../../test/helpers/disk-fixtures.js';

const HAVE = existsSync('/usr/bin/mksquashfs');
const T = { timeout: 60_000, skip: !HAVE && 'no mksquashfs (squashfs-tools)' };

let work: { dir: string; cleanup: () => void };
let src: string;
before(() => {
  work = tempDir('imgmake-squashfs-');
  src = join(work.dir, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  mkdirSync(join(src, 'usr/bin'), { recursive: true });
  writeFileSync(join(src, 'etc/motd'), 'hello\n'.repeat(1000));
  writeFileSync(join(src, 'usr/bin/ping'), 'binary');
  execFileSync('chmod', ['4755', join(src, 'usr/bin/ping')]);
  execFileSync('setfattr', ['-n', 'user.imgmake', '-v', 'kept', join(src, 'usr/bin/ping')]);
  linkSync(join(src, 'etc/motd'), join(src, 'etc/motd.hard'));
  symlinkSync('../usr/bin/ping', join(src, 'etc/ping'));
  mkdirSync(join(src, 'home/alice'), { recursive: true });
  chownSync(join(src, 'home/alice'), 1000, 1000);
  execFileSync('mknod', [join(src, 'etc/null'), 'c', '1', '3']);
  utimesSync(join(src, 'etc/motd'), 2_000_000_000, 2_000_000_000);
});
after(() => work.cleanup());

const input = () => ({ inputs: { tree: { kind: 'tree' as const, path: src } } });

test('the tree as a squashfs: owners, modes, links, a device, an xattr, every time SOURCE_DATE_EPOCH', T, async () => {
  await withRule('archive.squashfs', {}, input(), (r) => {
    assertOk(r);
    const img = join(r.tree, 'filesystem.squashfs');
    const list = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8' });
    const line = (path: string) => list.split('\n').find((l) => l.endsWith(` squashfs-root${path}`) || l.includes(` squashfs-root${path} -> `)) ?? '';
    assert.match(line('/usr/bin/ping'), /^-rwsr-xr-x 0\/0 +6 1980-01-01 00:00 /);
    assert.match(line('/etc/ping'), /^lrwxrwxrwx 0\/0 .* -> \.\.\/usr\/bin\/ping$/);
    assert.match(line('/home/alice'), /^drwxr-xr-x 1000\/1000 /);
    assert.match(line('/etc/null'), /^crw-r--r-- 0\/0 +1, +3 /);
    assert.match(line('/etc/motd'), /1980-01-01 00:00/, 'a later mtime is brought down to SOURCE_DATE_EPOCH');
    const stats = execFileSync('unsquashfs', ['-s', img], { encoding: 'utf8' });
    assert.match(stats, /Compression zstd/);
    assert.match(stats, /Block size 131072/);
    assert.match(stats, /Creation or last append time Tue Jan  1 00:00:00 1980/);
    assert.match(stats, /Number of inodes 10\n/, 'the hardlink is one inode');
    const out = join(r.tree, 'x');
    execFileSync('unsquashfs', ['-q', '-d', out, img, '/usr/bin/ping']);
    assert.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.imgmake', join(out, 'usr/bin/ping')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), 'kept');
    assert.match(r.log, /filesystem\.squashfs: \d+ bytes, zstd/);
  });
});

test('the same tree gives the same bytes; the compressor and block size are the options\'', T, async () => {
  const digests: string[] = [];
  for (let i = 0; i < 2; i++) {
    await withRule('archive.squashfs', { filename: 'root.sfs' }, input(), (r) => {
      assertOk(r);
      digests.push(sha256File(join(r.tree, 'root.sfs')));
    });
  }
  assert.equal(digests[0], digests[1]);
  await withRule('archive.squashfs', { compression: 'xz', block_size: 1024 }, input(), (r) => {
    assertOk(r);
    const stats = execFileSync('unsquashfs', ['-s', join(r.tree, 'filesystem.squashfs')], { encoding: 'utf8' });
    assert.match(stats, /Compression xz/);
    assert.match(stats, /Block size 1048576/);
  });
});

test('a tree input that is not a directory fails', T, async () => {
  const file = join(work.dir, 'file');
  writeFileSync(file, 'x');
  await withRule('archive.squashfs', {}, { inputs: { tree: { kind: 'tree', path: file } } }, (r) => {
    assertFails(r, 'the tree input is not a directory');
  });
});

test('the schema: a plain file name, a known compressor, a power-of-two block size', async () => {
  assert.deepEqual(await schemaErrors('archive.squashfs', { filename: 'a.sfs', compression: 'gzip', level: 9, block_size: 64 }), []);
  for (const bad of [{ filename: 'a/b' }, { compression: 'lzma' }, { level: 0 }, { block_size: 100 }]) {
    assert.notDeepEqual(await schemaErrors('archive.squashfs', bad), [], JSON.stringify(bad));
  }
});
