/**
 * disk.ext4 through the real sandbox, on a small partitioned disk: what debugfs and dumpe2fs read
 * back, e2fsck, the bytes around the partition, and byte-identical images from copies of a tree
 * that differ in host times, inode numbers and creation order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { makeDisk, makeRootTree, ROOT_OFFSET, ROOT_UUID, sfdiskJson, sha256File, T, tmpfsDir, touchAll } from '../../test/helpers/disk-fixtures.js';

const SDE_HEX = `0x${Number(SOURCE_DATE_EPOCH).toString(16)}:00000000`;

function debugfs(disk: string, offset: number, cmd: string): string {
  return execFileSync('debugfs', ['-R', cmd, `${disk}?offset=${offset}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-ext4-input-');
  try {
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

const tree = (dir: string) => ({ inputs: { tree: { kind: 'tree' as const, path: dir } }, tree: (t: string) => makeDisk(join(t, 'disk.raw')) });

test('the tree lands in the partition: owners, modes, links, hardlinks, xattrs, odd names; UUID, label, hash seed; e2fsck clean', T, async () => {
  await withDir(async (dir) => {
    makeRootTree(join(dir, 'root'));
    const options = { partition: 'root', uuid: ROOT_UUID, label: 'root', hash_seed: '2b7e1516-28ae-4d2a-abf7-158809cf4f3c' };
    await withRule('disk.ext4', options, tree(join(dir, 'root')), (r) => {
      assertOk(r);
      const disk = join(r.tree, 'disk.raw');
      const at = (cmd: string) => debugfs(disk, ROOT_OFFSET, cmd);
      const shadow = at('stat /etc/shadow');
      assert.match(shadow, /Mode: {2}0640/);
      assert.match(shadow, /User: {5}0 {3}Group: {4}42/);
      assert.match(at('stat /home/user/notes'), /Mode: {2}0600/);
      assert.match(at('stat /home/user/notes'), /User: {2}1000 {3}Group: {2}1000/);
      assert.match(at('stat /home/user'), /Type: directory/);
      assert.match(at('stat /bin'), /Type: symlink[\s\S]*Fast link dest: "usr\/bin"/);
      assert.match(at('stat /usr/bin/tool'), /Mode: {2}0755[\s\S]*Links: 2 /);
      assert.equal(/Inode: (\d+)/.exec(at('stat /usr/bin/tool'))![1], /Inode: (\d+)/.exec(at('stat /usr/bin/tool-hardlink'))![1], 'one inode');
      assert.match(at('ea_list /usr/bin/tool'), /security\.capability/);
      assert.equal(at('cat /etc/hostname'), 'disk-test\n');
      assert.equal(at('cat "/weird/with space ""and"" quote\\back"'), 'odd\n');
      assert.match(at('stat /usr/lib/big.bin'), /Size: 307200/);
      assert.match(at('ls -l /empty'), /\.\./);
      assert.match(at('stat /dev/null'), /Type: character special +Mode: {2}0666[\s\S]*Device major\/minor number: 01:03/);
      assert.match(at('stat /dev/initctl'), /Type: FIFO +Mode: {2}0600/);
      // Every time of every inode is SOURCE_DATE_EPOCH (mtime: clamp, the default).
      for (const p of ['/', '/etc/shadow', '/bin', '/home/user', '/dev/null', '/dev/initctl', '/weird/with space ""and"" quote\\back', '/lost+found']) {
        const st = at(`stat "${p}"`);
        for (const f of ['ctime', 'atime', 'mtime', 'crtime']) assert.match(st, new RegExp(`${f}: ${SDE_HEX} `), `${p} ${f}`);
      }
      const root = at('stat /');
      assert.match(root, /Mode: {2}0755/);
      assert.match(root, /User: {5}0 {3}Group: {5}0/);
      const header = execFileSync('dumpe2fs', ['-h', `${disk}?offset=${ROOT_OFFSET}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(header, new RegExp(`Filesystem UUID: +${ROOT_UUID}`));
      assert.match(header, /Filesystem volume name: +root\n/);
      assert.match(header, /Directory Hash Seed: +2b7e1516-28ae-4d2a-abf7-158809cf4f3c/);
      assert.match(header, /Filesystem features: +has_journal ext_attr resize_inode dir_index filetype extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum/);
      assert.match(header, /Block count: +25856\n/, '101 MiB of 4 KiB blocks: the whole partition');
      assert.doesNotMatch(header, /Lifetime writes/, 's_kbytes_written is 0: what mkfs wrote depends on the host');
      const fsck = spawnSync('e2fsck', ['-fn', `${disk}?offset=${ROOT_OFFSET}`], { encoding: 'utf8' });
      assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
      // The GPT and the partitions before it are untouched.
      assert.equal(sfdiskJson(disk).partitions.length, 3);
      const esp = Buffer.alloc(40 * 1024 * 1024);
      const fd = openSync(disk, 'r');
      readSync(fd, esp, 0, esp.length, 2 * 1024 * 1024);
      closeSync(fd);
      assert.ok(esp.every((b) => b === 0), 'the ESP is still zeros');
      assert.match(r.log, /disk\.raw: partition 3 \(root\): ext4 0f6a9c4e-/);
    });
  });
});

test('partition by number, mtime keep, no label; old mtimes are kept whole seconds', T, async () => {
  await withDir(async (dir) => {
    makeRootTree(join(dir, 'root'));
    utimesSync(join(dir, 'root/etc/hostname'), new Date('2001-09-09T01:46:40.750Z'), new Date('2001-09-09T01:46:40.750Z'));
    await withRule('disk.ext4', { partition: 3, uuid: ROOT_UUID, mtime: 'keep' }, tree(join(dir, 'root')), (r) => {
      assertOk(r);
      const disk = join(r.tree, 'disk.raw');
      assert.match(debugfs(disk, ROOT_OFFSET, 'stat /etc/hostname'), / mtime: 0x3b9aca00:00000000 /);
      assert.match(debugfs(disk, ROOT_OFFSET, 'stat /etc/hostname'), / ctime: 0x12cea600:00000000 /);
      const header = execFileSync('dumpe2fs', ['-h', `${disk}?offset=${ROOT_OFFSET}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(header, /Filesystem volume name: +<none>/);
      assert.match(header, new RegExp(`Directory Hash Seed: +${ROOT_UUID}`), 'the seed defaults to the UUID');
    });
  });
});

test('copies of a tree with other host times, inode numbers and creation order give byte-identical disks', T, async () => {
  await withDir(async (dir) => {
    makeRootTree(join(dir, 'one'), { time: new Date('2024-05-01T12:34:56.789Z') });
    const shm = tmpfsDir('imgmake-ext4-');
    makeRootTree(join(shm.dir, 'two'), { reverse: true, time: new Date('2011-01-01T00:00:01.5Z') });
    execFileSync('cp', ['-a', join(dir, 'one'), join(dir, 'copy')]);
    execFileSync('setfattr', ['-n', 'user.bump', '-v', 'x', join(dir, 'copy/etc/hostname')]);
    execFileSync('setfattr', ['-x', 'user.bump', join(dir, 'copy/etc/hostname')]); // a new ctime
    const digest = async (input: string, mtime: string): Promise<string> => {
      let d = '';
      await withRule('disk.ext4', { partition: 'root', uuid: ROOT_UUID, mtime }, tree(input.startsWith('/') ? input : join(dir, input)), (r) => {
        assertOk(r);
        d = sha256File(join(r.tree, 'disk.raw'));
      });
      return d;
    };
    const clamped = await digest('one', 'clamp');
    try {
      assert.equal(await digest(join(shm.dir, 'two'), 'clamp'), clamped, 'clamp: other mtimes, creation and readdir order');
    } finally {
      shm.cleanup();
    }
    assert.equal(await digest('copy', 'clamp'), clamped, 'clamp: a cp -a copy');
    const kept = await digest('one', 'keep');
    assert.notEqual(kept, clamped);
    assert.equal(await digest('copy', 'keep'), kept, 'keep: a cp -a copy (same mtimes, other ctimes, atimes and inodes)');
    touchAll(join(dir, 'copy'), new Date('2024-05-01T12:34:56.001Z'));
    assert.equal(await digest('copy', 'keep'), kept, 'keep: sub-second mtimes do not count');
  });
});

test('subdir: the filesystem holds one directory of the tree as its root; a subdir that is not a directory fails', T, async () => {
  await withDir(async (dir) => {
    makeRootTree(join(dir, 'root'));
    await withRule('disk.ext4', { partition: 3, uuid: ROOT_UUID, subdir: '/etc' }, tree(join(dir, 'root')), (r) => {
      assertOk(r);
      const ls = debugfs(join(r.tree, 'disk.raw'), ROOT_OFFSET, 'ls -l /');
      assert.match(ls, / hostname\n/);
      assert.doesNotMatch(ls, / etc\n/);
    });
    await withRule('disk.ext4', { partition: 3, uuid: ROOT_UUID, subdir: '/nosuch' }, tree(join(dir, 'root')), (r) => assertFails(r, '/nosuch is not a directory of the tree input'));
  });
  assert.ok((await schemaErrors('disk.ext4', { partition: 3, uuid: ROOT_UUID, subdir: '/var/../etc' })).length > 0, 'no .. in subdir');
});

test('a missing partition, a missing disk and a tree that does not fit fail, saying so', T, async () => {
  await withDir(async (dir) => {
    makeRootTree(join(dir, 'root'));
    await withRule('disk.ext4', { partition: 'boot', uuid: ROOT_UUID }, tree(join(dir, 'root')), (r) => {
      assertFails(r, 'disk.raw: no partition with name boot', '1:bios 2:esp 3:root');
    });
    await withRule('disk.ext4', { partition: 4, uuid: ROOT_UUID }, tree(join(dir, 'root')), (r) => {
      assertFails(r, 'no partition with nr 4');
    });
    await withRule('disk.ext4', { filename: 'other.raw', partition: 3, uuid: ROOT_UUID }, tree(join(dir, 'root')), (r) => {
      assertFails(r, 'other.raw: no such disk image in the tree', 'disk.partition');
    });
    writeFileSync(join(dir, 'root/usr/lib/huge.bin'), Buffer.alloc(48 * 1024 * 1024, 1));
    await withRule('disk.ext4', { partition: 'esp', uuid: ROOT_UUID }, tree(join(dir, 'root')), (r) => {
      assertFails(r, 'disk.raw: partition 2 (esp): mkfs.ext4 failed; the tree may not fit the partition\'s 40 MiB');
    });
  });
});

test('the schema wants a partition and a UUID', T, async () => {
  assert.deepEqual(await schemaErrors('disk.ext4', { partition: 'root', uuid: ROOT_UUID }), []);
  for (const bad of [
    { partition: 'root' },
    { uuid: ROOT_UUID },
    { partition: 0, uuid: ROOT_UUID },
    { partition: 'a"b', uuid: ROOT_UUID },
    { partition: 1, uuid: 'nope' },
    { partition: 1, uuid: ROOT_UUID, label: 'a label that is far too long' },
    { partition: 1, uuid: ROOT_UUID, mtime: 'now' },
  ]) {
    assert.notDeepEqual(await schemaErrors('disk.ext4', bad), [], JSON.stringify(bad));
  }
});
