/**
 * system.fstab on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOk, perms, runRule, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

const ROOT = 'UUID=0b6a8f2e-1c1d-4c7e-9a51-3f2d6c8e7a10';

test('writes the table in columns with defaults filled in: passno 1 for /, 2 for devices, 0 for swap and tmpfs', T, async () => {
  const options = {
    filesystems: [
      { spec: ROOT, path: '/', type: 'ext4', options: 'errors=remount-ro' },
      { spec: 'PARTUUID=6a3c1f00-02', path: '/boot/efi', type: 'vfat', options: 'umask=0077' },
      { spec: 'LABEL=swap', path: 'none', type: 'swap', options: 'sw' },
      { spec: 'tmpfs', path: '/tmp', type: 'tmpfs', options: 'mode=1777,nosuid,nodev' },
      { spec: '/dev/vdb1', path: '/srv', type: 'xfs', freq: 1, passno: 0 },
    ],
  };
  await withRule('system.fstab', options, {}, (r) => {
    assertOk(r);
    assert.equal(
      readFileSync(join(r.tree, 'etc/fstab'), 'utf8'),
      [
        '# /etc/fstab: static file system information (written by imgmake, system.fstab).',
        '#',
        '# <file system>                            <mount point>  <type>  <options>               <dump>  <pass>',
        'UUID=0b6a8f2e-1c1d-4c7e-9a51-3f2d6c8e7a10  /              ext4    errors=remount-ro       0       1',
        'PARTUUID=6a3c1f00-02                       /boot/efi      vfat    umask=0077              0       2',
        'LABEL=swap                                 none           swap    sw                      0       0',
        'tmpfs                                      /tmp           tmpfs   mode=1777,nosuid,nodev  0       0',
        '/dev/vdb1                                  /srv           xfs     defaults                1       0',
        '',
      ].join('\n'),
    );
    const st = lstatSync(join(r.tree, 'etc/fstab'));
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.uid, 0);
  });
});

test('an existing /etc/fstab or a link there is replaced whole; the same options give the same bytes', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc/fstab.d'), '# UNCONFIGURED FSTAB FOR BASE SYSTEM\n/dev/sda1 / ext4 defaults 0 1\n');
    symlinkSync('fstab.d', join(tree, 'etc/fstab'));
  };
  const options = { filesystems: [{ spec: ROOT, path: '/', type: 'ext4' }] };
  const a = await runRule('system.fstab', options, { tree: setup });
  const b = await runRule('system.fstab', options, { tree: setup });
  try {
    assertOk(a);
    assertOk(b);
    assert.ok(lstatSync(join(a.tree, 'etc/fstab')).isFile());
    const bytes = readFileSync(join(a.tree, 'etc/fstab'), 'utf8');
    assert.equal(bytes.split('\n').at(-2), `${ROOT}  /              ext4    defaults   0       1`);
    assert.equal(readFileSync(join(b.tree, 'etc/fstab'), 'utf8'), bytes);
    assert.match(readFileSync(join(a.tree, 'etc/fstab.d'), 'utf8'), /UNCONFIGURED/);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('an empty list writes just the header', T, async () => {
  await withRule('system.fstab', { filesystems: [] }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/fstab'), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join(''), '');
  });
});

test('a mount point listed twice is refused before anything runs', T, async () => {
  const options = { filesystems: [{ spec: ROOT, path: '/', type: 'ext4' }, { spec: '/dev/vdb', path: '/', type: 'ext4' }] };
  await assert.rejects(runRule('system.fstab', options), /\/ is mounted twice/);
});

test('the schema rejects spaces, relative paths, unknown spec forms and missing fields', T, async () => {
  const fs = { spec: ROOT, path: '/', type: 'ext4' };
  assert.deepEqual(await schemaErrors('system.fstab', { filesystems: [fs] }), []);
  for (const bad of [
    { ...fs, spec: 'LABEL=my root' },
    { ...fs, spec: 'UUID=zz-not-hex' },
    { ...fs, spec: 'foo=bar' },
    { ...fs, path: 'mnt' },
    { ...fs, path: '/mnt/my data' },
    { ...fs, type: 'ext 4' },
    { ...fs, options: 'ro, noatime' },
    { ...fs, passno: -1 },
    { ...fs, extra: 1 },
    { spec: ROOT, path: '/' },
  ]) {
    assert.notDeepEqual(await schemaErrors('system.fstab', { filesystems: [bad] }), [], JSON.stringify(bad));
  }
});
