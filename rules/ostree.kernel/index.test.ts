/**
 * ostree.kernel through the real sandbox on a tree shaped like Debian's /boot: the `keep` path
 * (the initramfs moved as it is) and the failures a user meets. The `dracut` path needs a tree
 * with dracut and ostree-boot installed: test/ostree-e2e.test.ts builds one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 60_000 };
const KVER = '6.1.0-99-amd64';

function debianBoot(tree: string, kernels = [KVER]): void {
  mkdirSync(join(tree, 'usr/lib/modules'), { recursive: true });
  mkdirSync(join(tree, 'boot'));
  symlinkSync('usr/lib', join(tree, 'lib'));
  for (const k of kernels) {
    mkdirSync(join(tree, 'usr/lib/modules', k, 'kernel'), { recursive: true });
    writeFileSync(join(tree, 'boot', `vmlinuz-${k}`), `kernel ${k}\n`, { mode: 0o600 });
    writeFileSync(join(tree, 'boot', `initrd.img-${k}`), `initrd ${k}\n`);
    writeFileSync(join(tree, 'boot', `config-${k}`), 'CONFIG_X=y\n');
    writeFileSync(join(tree, 'boot', `System.map-${k}`), 'ffff T start\n');
  }
  symlinkSync(`boot/vmlinuz-${kernels[0]}`, join(tree, 'vmlinuz'));
  symlinkSync(`boot/initrd.img-${kernels[0]}`, join(tree, 'initrd.img'));
}

test('keep: the kernel, its initramfs, config and System.map move to /usr/lib/modules/VERSION/; /boot and the links are cleared', T, async () => {
  await withRule('ostree.kernel', { initramfs: 'keep' }, { tree: (t) => debianBoot(t) }, (r) => {
    assertOk(r);
    const dir = join(r.tree, 'usr/lib/modules', KVER);
    assert.equal(readFileSync(join(dir, 'vmlinuz'), 'utf8'), `kernel ${KVER}\n`);
    assert.equal(perms(lstatSync(join(dir, 'vmlinuz')).mode), 0o644);
    assert.equal(readFileSync(join(dir, 'initramfs.img'), 'utf8'), `initrd ${KVER}\n`);
    assert.equal(readFileSync(join(dir, 'config'), 'utf8'), 'CONFIG_X=y\n');
    assert.ok(existsSync(join(dir, 'System.map')));
    assert.deepEqual(readdirSync(join(r.tree, 'boot')), []);
    assert.equal(existsSync(join(r.tree, 'vmlinuz')) || existsSync(join(r.tree, 'initrd.img')), false);
    assert.match(r.log, new RegExp(`ostree.kernel: ${KVER}: vmlinuz \\d+ bytes`));
  });
});

test('several kernels need the version option; the one named moves, the other stays', T, async () => {
  const two = (t: string) => debianBoot(t, [KVER, '6.1.0-98-amd64']);
  await withRule('ostree.kernel', { initramfs: 'keep' }, { tree: two }, (r) => assertFails(r, '/usr/lib/modules holds 2 kernels', 'version option'));
  await withRule('ostree.kernel', { initramfs: 'keep', version: '6.1.0-98-amd64' }, { tree: two }, (r) => {
    assertOk(r);
    assert.ok(existsSync(join(r.tree, 'usr/lib/modules/6.1.0-98-amd64/vmlinuz')));
    assert.ok(existsSync(join(r.tree, `boot/vmlinuz-${KVER}`)));
  });
  await withRule('ostree.kernel', { initramfs: 'keep', version: '5.0' }, { tree: two }, (r) => assertFails(r, 'no kernel 5.0 in /usr/lib/modules'));
});

test('a tree without a kernel, without dracut or without ostree-boot fails, saying what to install', T, async () => {
  await withRule('ostree.kernel', {}, { tree: (t) => mkdirSync(join(t, 'usr'), { recursive: true }) }, (r) => assertFails(r, 'no /usr/lib/modules: install a kernel package'));
  await withRule('ostree.kernel', {}, { tree: (t) => debianBoot(t) }, (r) => assertFails(r, 'no dracut: install the dracut package'));
  const withDracut = (t: string) => {
    debianBoot(t);
    mkdirSync(join(t, 'usr/bin'), { recursive: true });
    writeFileSync(join(t, 'usr/bin/dracut'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  };
  await withRule('ostree.kernel', {}, { tree: withDracut }, (r) => assertFails(r, 'no /usr/lib/ostree/ostree-prepare-root: install the ostree-boot package'));
  assert.notDeepEqual(await schemaErrors('ostree.kernel', { initramfs: 'mkinitramfs' }), []);
  assert.notDeepEqual(await schemaErrors('ostree.kernel', { version: '../x' }), []);
});
