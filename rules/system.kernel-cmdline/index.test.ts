/**
 * system.kernel-cmdline on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

test('writes /etc/kernel/cmdline and /etc/default/grub.d/imgmake.cfg with the same arguments, 0644 root', T, async () => {
  await withRule('system.kernel-cmdline', { cmdline: ['console=ttyS0,115200', 'console=tty0', 'ro'] }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/kernel/cmdline'), 'utf8'), 'console=ttyS0,115200 console=tty0 ro\n');
    assert.equal(
      readFileSync(join(r.tree, 'etc/default/grub.d/imgmake.cfg'), 'utf8'),
      '# Written by imgmake (system.kernel-cmdline); /etc/kernel/cmdline holds the same arguments.\nGRUB_CMDLINE_LINUX="console=ttyS0,115200 console=tty0 ro"\n',
    );
    for (const f of ['etc/kernel/cmdline', 'etc/default/grub.d/imgmake.cfg']) {
      const st = lstatSync(join(r.tree, f));
      assert.equal(perms(st.mode), 0o644, f);
      assert.equal(st.uid, 0, f);
    }
    for (const d of ['etc/kernel', 'etc/default/grub.d']) assert.equal(perms(lstatSync(join(r.tree, d)).mode), 0o755, d);
  });
});

test('the grub.d file is sourced by a shell the way grub-mkconfig does, and the value survives', T, async () => {
  await withRule('system.kernel-cmdline', { cmdline: ['root=UUID=0b6a8f2e-1c1d-4c7e-9a51-3f2d6c8e7a10', 'systemd.unit=multi-user.target'] }, {}, (r) => {
    assertOk(r);
    const out = execFileSync('/bin/sh', ['-c', '. "$1"; printf %s "$GRUB_CMDLINE_LINUX"', 'sh', join(r.tree, 'etc/default/grub.d/imgmake.cfg')], { encoding: 'utf8' });
    assert.equal(out, 'root=UUID=0b6a8f2e-1c1d-4c7e-9a51-3f2d6c8e7a10 systemd.unit=multi-user.target');
  });
});

test('existing files and symlinks are replaced, never written through', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc/kernel'), { recursive: true });
    mkdirSync(join(tree, 'etc/default/grub.d'), { recursive: true });
    writeFileSync(join(tree, 'etc/kernel/cmdline.orig'), 'quiet splash\n');
    symlinkSync('cmdline.orig', join(tree, 'etc/kernel/cmdline'));
    writeFileSync(join(tree, 'etc/default/grub.d/imgmake.cfg'), 'GRUB_CMDLINE_LINUX="old and much longer"\n');
  };
  await withRule('system.kernel-cmdline', { cmdline: ['quiet'] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/kernel/cmdline')).isFile());
    assert.equal(readFileSync(join(r.tree, 'etc/kernel/cmdline'), 'utf8'), 'quiet\n');
    assert.equal(readFileSync(join(r.tree, 'etc/kernel/cmdline.orig'), 'utf8'), 'quiet splash\n');
    assert.match(readFileSync(join(r.tree, 'etc/default/grub.d/imgmake.cfg'), 'utf8'), /^GRUB_CMDLINE_LINUX="quiet"$/m);
  });
});

test('the schema rejects empty lists and arguments with spaces, quotes or shell syntax', T, async () => {
  assert.notDeepEqual(await schemaErrors('system.kernel-cmdline', { cmdline: [] }), []);
  assert.notDeepEqual(await schemaErrors('system.kernel-cmdline', {}), []);
  for (const bad of ['a b', 'x="y"', '$(reboot)', "it's", '', 'a\nb', 'a;b']) {
    assert.notDeepEqual(await schemaErrors('system.kernel-cmdline', { cmdline: [bad] }), [], bad);
  }
  assert.deepEqual(await schemaErrors('system.kernel-cmdline', { cmdline: ['console=ttyS0,115200n8', 'init=/sbin/init', 'a.b_c-d=1:2+3@4'] }), []);
});
