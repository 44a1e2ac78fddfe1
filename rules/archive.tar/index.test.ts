/**
 * archive.tar on a temporary tree through the real sandbox: what the tarball lists, and that the
 * same tree gives the same bytes whatever its host mtimes and creation order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { compressionFor } from './index.js';

const T = { timeout: 30_000 };
const HAVE_SETFATTR = spawnSync('setfattr', ['--version']).status === 0;

/**
 * The same tree every time; `reverse` creates the entries in the opposite order and `time` sets
 * every host mtime, so two calls differ only in what must not reach the tarball.
 */
function makeTree(dir: string, { reverse = false, time = new Date() }: { reverse?: boolean; time?: Date } = {}): void {
  const file = (rel: string, content: string, mode = 0o644) => () => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content, { mode });
  };
  const steps: (() => void)[] = [
    file('etc/b.conf', 'b\n'),
    file('etc/a.conf', 'a\n'),
    file('usr/bin/tool', '#!/bin/sh\n', 0o755),
    file('owned', 'owned\n', 0o600),
    () => symlinkSync('usr/bin', join(dir, 'bin')),
    file('Z-upper', 'Z\n'),
  ];
  for (const step of reverse ? [...steps].reverse() : steps) step();
  linkSync(join(dir, 'etc/a.conf'), join(dir, 'usr/a-hardlink'));
  chownSync(join(dir, 'owned'), 1234, 5678);
  if (HAVE_SETFATTR) execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(dir, 'usr/bin/tool')]);
  const touch = (rel: string): void => {
    const p = join(dir, rel);
    if (!lstatSync(p).isSymbolicLink()) utimesSync(p, time, time);
    if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) touch(join(rel, n));
  };
  touch('.');
}

/** `tar -tv` of an archive, times in UTC. */
function listing(archive: string): string[] {
  return execFileSync('tar', ['--utc', '-tvf', archive], { encoding: 'utf8' }).trimEnd().split('\n');
}

async function withInput(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-rule-input-');
  try {
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

test('packs the input tree at the top of the tree: numeric 0/0 owners, sorted names, 1980 mtimes (SOURCE_DATE_EPOCH)', T, async () => {
  await withInput(async (dir) => {
    makeTree(join(dir, 'in'), { reverse: true });
    await withRule('archive.tar', { filename: 'rootfs.tar' }, { inputs: { tree: { kind: 'tree', path: join(dir, 'in') } } }, (r) => {
      assertOk(r);
      assert.deepEqual(readdirSync(r.tree), ['rootfs.tar'], 'only the tarball, no .partial left');
      const st = lstatSync(join(r.tree, 'rootfs.tar'));
      assert.equal(perms(st.mode), 0o644);
      const out = listing(join(r.tree, 'rootfs.tar'));
      const names = out.map((l) => l.split(/\s+/)[5]);
      assert.deepEqual(names, [
        './',
        './Z-upper',
        './bin',
        './etc/',
        './etc/a.conf',
        './etc/b.conf',
        './owned',
        './usr/',
        './usr/a-hardlink',
        './usr/bin/',
        './usr/bin/tool',
      ]);
      for (const line of out) {
        const [, owner, , date, time] = line.split(/\s+/);
        assert.equal(`${date} ${time}`, '1980-01-01 00:00', line);
        if (!line.endsWith('./owned')) assert.equal(owner, '0/0', line);
      }
      assert.match(out.find((l) => l.endsWith('./owned'))!, /^-rw------- 1234\/5678 /);
      assert.match(out.find((l) => l.includes('./bin'))!, /^lrwxrwxrwx .* \.\/bin -> usr\/bin$/);
      assert.match(out.find((l) => l.includes('./usr/a-hardlink'))!, /^hrw-r--r-- .* link to \.\/etc\/a\.conf$/);
      assert.match(out.find((l) => l.endsWith('./usr/bin/tool'))!, /^-rwxr-xr-x /);
    });
  });
});

test('xattrs and numeric owners survive a round trip', { ...T, skip: !HAVE_SETFATTR && 'no setfattr' }, async () => {
  await withInput(async (dir) => {
    makeTree(join(dir, 'in'));
    await withRule('archive.tar', { filename: 'rootfs.tar' }, { inputs: { tree: { kind: 'tree', path: join(dir, 'in') } } }, (r) => {
      assertOk(r);
      const out = join(dir, 'out');
      mkdirSync(out);
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-p', '-C', out, '-xf', join(r.tree, 'rootfs.tar')]);
      assert.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.note', join(out, 'usr/bin/tool')], { encoding: 'utf8' }), 'kept');
      const owned = lstatSync(join(out, 'owned'));
      assert.equal(owned.uid, 1234);
      assert.equal(owned.gid, 5678);
      assert.equal(lstatSync(join(out, 'usr/a-hardlink')).ino, lstatSync(join(out, 'etc/a.conf')).ino);
    });
  });
});

test('two copies of a tree with different host mtimes and creation order give byte-identical tarballs (none, gzip, zstd)', T, async () => {
  await withInput(async (dir) => {
    makeTree(join(dir, 'one'), { time: new Date('2024-05-01T12:34:56.789Z') });
    makeTree(join(dir, 'two'), { reverse: true, time: new Date('2011-01-01T00:00:01.5Z') });
    assert.notEqual(lstatSync(join(dir, 'one/etc/a.conf')).mtimeMs, lstatSync(join(dir, 'two/etc/a.conf')).mtimeMs);
    for (const filename of ['rootfs.tar', 'rootfs.tar.gz', 'rootfs.tar.zst']) {
      const bytes: Buffer[] = [];
      for (const copy of ['one', 'two']) {
        await withRule('archive.tar', { filename }, { inputs: { tree: { kind: 'tree', path: join(dir, copy) } } }, (r) => {
          assertOk(r);
          const p = join(r.tree, filename);
          if (filename.endsWith('.gz')) execFileSync('gzip', ['-t', p]);
          if (filename.endsWith('.zst')) execFileSync('zstd', ['-q', '-t', p]);
          assert.ok(listing(p).some((l) => l.endsWith('./usr/bin/tool')), `${filename} lists the tree`);
          bytes.push(readFileSync(p));
        });
      }
      assert.ok(bytes[0]!.equals(bytes[1]!), `${filename}: the two tarballs differ`);
    }
  });
});

test('the compression follows the file name, or the option when given', T, async () => {
  assert.equal(compressionFor('a.tar.gz'), 'gzip');
  assert.equal(compressionFor('a.tgz'), 'gzip');
  assert.equal(compressionFor('a.tar.zst'), 'zstd');
  assert.equal(compressionFor('a.tar'), 'none');
  assert.equal(compressionFor('a.gz.tar'), 'none');
  await withInput(async (dir) => {
    makeTree(join(dir, 'in'));
    const inputs = { tree: { kind: 'tree' as const, path: join(dir, 'in') } };
    await withRule('archive.tar', { filename: 'rootfs.tgz' }, { inputs }, (r) => {
      assertOk(r);
      assert.deepEqual([...readFileSync(join(r.tree, 'rootfs.tgz')).subarray(0, 2)], [0x1f, 0x8b], 'gzip magic');
    });
    await withRule('archive.tar', { filename: 'rootfs.img', compression: 'zstd' }, { inputs }, (r) => {
      assertOk(r);
      assert.deepEqual([...readFileSync(join(r.tree, 'rootfs.img')).subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'zstd magic');
    });
    await withRule('archive.tar', { filename: 'plain.tar.gz', compression: 'none' }, { inputs }, (r) => {
      assertOk(r);
      assert.equal(readFileSync(join(r.tree, 'plain.tar.gz')).subarray(257, 262).toString('latin1'), 'ustar', 'an uncompressed tar');
    });
  });
});

test('the schema rejects file names with a path or spaces', T, async () => {
  for (const bad of ['a/b.tar', '../x.tar', 'a b.tar', '']) {
    assert.notDeepEqual(await schemaErrors('archive.tar', { filename: bad }), [], bad);
  }
  assert.notDeepEqual(await schemaErrors('archive.tar', { filename: 'x.tar', compression: 'xz' }), []);
});
