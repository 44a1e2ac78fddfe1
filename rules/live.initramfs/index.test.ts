/**
 * live.initramfs through the real sandbox, on a small tree whose update-initramfs is a stand-in
 * (a static busybox's shell): the boot script and hook land where initramfs-tools reads them,
 * update-initramfs runs chrooted in the tree with SOURCE_DATE_EPOCH, the initramfs gets that
 * mtime; a tree without initramfs-tools or a kernel fails saying so. That the initramfs really
 * boots a live ISO is test/catalog-iso.test.ts's boot.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { bootScript } from './index.js';

const BUSYBOX = '/bin/busybox';
const T = { timeout: 60_000, skip: !existsSync(BUSYBOX) && 'no static busybox (busybox-static)' };

let work: { dir: string; cleanup: () => void };
before(() => {
  work = tempDir('imgmake-live-initramfs-');
});
after(() => work.cleanup());

/** A tree a chroot can run: busybox as /bin/sh, an update-initramfs that writes what it was given. */
function fakeTree(dir: string, { tools = true, kernel = true } = {}): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  symlinkSync('busybox', join(dir, 'bin/sh'));
  mkdirSync(join(dir, 'boot'));
  mkdirSync(join(dir, 'usr/sbin'), { recursive: true });
  mkdirSync(join(dir, 'etc/initramfs-tools/scripts'), { recursive: true });
  if (kernel) writeFileSync(join(dir, 'boot/vmlinuz-6.1.0-test-amd64'), 'kernel');
  if (tools) {
    writeFileSync(
      join(dir, 'usr/sbin/update-initramfs'),
      '#!/bin/sh\n{ echo "args: $*"; echo "epoch: $SOURCE_DATE_EPOCH"; /bin/busybox ls /etc/initramfs-tools/scripts /etc/initramfs-tools/hooks; } > /boot/initrd.img-6.1.0-test-amd64\n',
    );
    chmodSync(join(dir, 'usr/sbin/update-initramfs'), 0o755);
  }
}

test('the boot script and hook go to initramfs-tools\' folders; update-initramfs runs chrooted in the tree', T, async () => {
  await withRule('live.initramfs', { wait: 30, modules: ['virtio_blk'] }, { tree: (d) => fakeTree(d) }, (r) => {
    assertOk(r);
    const script = join(r.tree, 'etc/initramfs-tools/scripts/imgmake-live');
    const hook = join(r.tree, 'etc/initramfs-tools/hooks/imgmake-live');
    assert.equal(perms(lstatSync(script).mode), 0o644);
    assert.equal(perms(lstatSync(hook).mode), 0o755);
    const s = readFileSync(script, 'utf8');
    assert.match(s, /^mountroot\(\)$/m);
    assert.match(s, /for m in isofs squashfs overlay loop cdrom sr_mod virtio_blk; do/);
    assert.match(s, /left=30\n/);
    assert.match(s, /\/run\/live\/medium\/live\/filesystem\.squashfs/);
    assert.match(readFileSync(hook, 'utf8'), /copy_exec \/usr\/sbin\/losetup \/sbin\/imgmake-losetup/);
    // Run in the tree: what the stand-in saw is its own root's folders.
    assert.equal(
      readFileSync(join(r.tree, 'boot/initrd.img-6.1.0-test-amd64'), 'utf8'),
      `args: -u -k all\nepoch: ${SOURCE_DATE_EPOCH}\n/etc/initramfs-tools/hooks:\nimgmake-live\n\n/etc/initramfs-tools/scripts:\nimgmake-live\n`,
    );
    for (const p of ['boot/initrd.img-6.1.0-test-amd64', 'etc/initramfs-tools/scripts/imgmake-live', 'etc/initramfs-tools/hooks/imgmake-live']) {
      assert.equal(lstatSync(join(r.tree, p)).mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000, p);
    }
    assert.match(r.log, /\/boot\/initrd\.img-6\.1\.0-test-amd64: \d+ bytes, boots with boot=imgmake-live/);
  });
});

test('the boot script is valid POSIX sh and looks for the squashfs it is told', () => {
  const path = join(work.dir, 'script');
  writeFileSync(path, bootScript({ squashfs: '/os/root.sfs', wait: 5, modules: [] }));
  execFileSync('sh', ['-n', path]);
  assert.match(readFileSync(path, 'utf8'), /if \[ -f \/run\/live\/medium\/os\/root\.sfs \]; then/);
});

test('a tree without initramfs-tools or without a kernel fails saying so', T, async () => {
  await withRule('live.initramfs', {}, { tree: (d) => fakeTree(d, { tools: false }) }, (r) => {
    assertFails(r, 'the tree has no /usr/sbin/update-initramfs: install initramfs-tools in it');
  });
  await withRule('live.initramfs', {}, { tree: (d) => fakeTree(d, { kernel: false }) }, (r) => {
    assertFails(r, 'the tree has no kernel in /boot');
  });
  const failing = (d: string) => {
    fakeTree(d);
    rmSync(join(d, 'usr/sbin/update-initramfs'));
    writeFileSync(join(d, 'usr/sbin/update-initramfs'), '#!/bin/sh\necho "E: no modules" >&2\nexit 1\n');
    chmodSync(join(d, 'usr/sbin/update-initramfs'), 0o755);
  };
  await withRule('live.initramfs', {}, { tree: failing }, (r) => {
    assertFails(r, 'E: no modules', 'update-initramfs failed in the tree');
  });
});

test('the schema: an absolute squashfs path, a bounded wait, module names', async () => {
  assert.deepEqual(await schemaErrors('live.initramfs', {}), []);
  for (const bad of [{ squashfs: 'live/x' }, { squashfs: '/live/../x' }, { wait: 0 }, { modules: ['a b'] }, { other: 1 }]) {
    assert.notDeepEqual(await schemaErrors('live.initramfs', bad), [], JSON.stringify(bad));
  }
});
