/**
 * grub.efi through the real sandbox: a PE32+ EFI application and a grub.cfg in the tree, built
 * from the input tree's GRUB modules or the buildroot's, byte-identical across runs; the checks
 * of the kernel and initrd paths against the input.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { ROOT_UUID, sha256File, T } from '../../test/helpers/disk-fixtures.js';

const HAVE_GRUB = existsSync('/usr/lib/grub/x86_64-efi/moddep.lst');
const TG = { ...T, skip: !HAVE_GRUB && 'no /usr/lib/grub/x86_64-efi (grub-efi-amd64-bin)' };

let work: { dir: string; cleanup: () => void };
/** An image-like root: the host's x86_64-efi modules, a kernel and an initrd behind /boot links. */
let root: string;

before(() => {
  work = tempDir('imgmake-grub-efi-');
  root = join(work.dir, 'root');
  if (!HAVE_GRUB) return;
  mkdirSync(join(root, 'usr/lib/grub'), { recursive: true });
  execFileSync('cp', ['-a', '/usr/lib/grub/x86_64-efi', join(root, 'usr/lib/grub/')]);
  mkdirSync(join(root, 'boot'));
  writeFileSync(join(root, 'boot/vmlinuz-6.1.0-test-amd64'), 'kernel');
  writeFileSync(join(root, 'boot/initrd.img-6.1.0-test-amd64'), 'initrd');
  symlinkSync('vmlinuz-6.1.0-test-amd64', join(root, 'boot/vmlinuz'));
  symlinkSync('/boot/initrd.img-6.1.0-test-amd64', join(root, 'boot/initrd.img'));
  symlinkSync('boot/vmlinuz-6.1.0-test-amd64', join(root, 'vmlinuz'));
});
after(() => work.cleanup());

const withRoot = (dir = root) => ({ inputs: { tree: { kind: 'tree' as const, path: dir } } });

test('BOOTX64.EFI (a PE32+ EFI application from the input tree\'s modules) and grub.cfg land in /EFI/BOOT', TG, async () => {
  await withRule('grub.efi', { root_uuid: ROOT_UUID.toUpperCase() }, withRoot(), (r) => {
    assertOk(r);
    assert.deepEqual(readdirSync(join(r.tree, 'EFI/BOOT')).sort(), ['BOOTX64.EFI', 'grub.cfg']);
    const efi = join(r.tree, 'EFI/BOOT/BOOTX64.EFI');
    const bytes = readFileSync(efi);
    assert.equal(bytes.subarray(0, 2).toString('latin1'), 'MZ');
    const pe = bytes.readUInt32LE(0x3c);
    assert.equal(bytes.subarray(pe, pe + 4).toString('latin1'), 'PE\0\0');
    assert.match(execFileSync('file', ['-b', efi], { encoding: 'utf8' }), /PE32\+ executable \(EFI application\) x86-64/);
    assert.ok(bytes.length > 200_000 && bytes.length < 2_000_000, `${bytes.length} bytes`);
    for (const p of ['EFI/BOOT/BOOTX64.EFI', 'EFI/BOOT/grub.cfg']) {
      const st = lstatSync(join(r.tree, p));
      assert.equal(perms(st.mode), 0o644, p);
      assert.equal(st.uid, 0, p);
      assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000, p);
    }
    assert.equal(
      readFileSync(join(r.tree, 'EFI/BOOT/grub.cfg'), 'utf8'),
      [
        'set timeout=1',
        'set default=0',
        'serial --unit=0 --speed=115200',
        'terminal_input serial console',
        'terminal_output serial console',
        `search --no-floppy --fs-uuid --set=root ${ROOT_UUID}`,
        "menuentry 'Linux' {",
        `\tlinux /boot/vmlinuz root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200`,
        '\tinitrd /boot/initrd.img',
        '}',
        '',
      ].join('\n'),
    );
    assert.match(r.log, /\/EFI\/BOOT\/BOOTX64\.EFI: \d+ bytes, GRUB modules from \/run\/imgmake\/inputs\/tree\/usr\/lib\/grub\/x86_64-efi/);
  });
});

test('the same modules give the same bytes: twice from the input, once from the buildroot', TG, async () => {
  const digests: string[] = [];
  for (const opts of [withRoot(), withRoot(), {}]) {
    await withRule('grub.efi', { root_uuid: ROOT_UUID }, opts, (r) => {
      assertOk(r);
      digests.push(sha256File(join(r.tree, 'EFI/BOOT/BOOTX64.EFI')));
    });
  }
  assert.equal(new Set(digests).size, 1, digests.join(' '));
});

test('options: command line, kernel paths, directory, title, timeout, no serial, extra modules', TG, async () => {
  const options = {
    root_uuid: ROOT_UUID,
    cmdline: 'rw quiet systemd.unit=multi-user.target',
    kernel: '/vmlinuz',
    initrd: '/boot/initrd.img-6.1.0-test-amd64',
    directory: '/EFI/imgmake',
    title: 'Test (rescue)',
    timeout: 5,
    serial: false,
    modules: ['ls', 'cat'],
  };
  let plain = 0;
  await withRule('grub.efi', { root_uuid: ROOT_UUID }, withRoot(), (r) => {
    assertOk(r);
    plain = lstatSync(join(r.tree, 'EFI/BOOT/BOOTX64.EFI')).size;
  });
  await withRule('grub.efi', options, withRoot(), (r) => {
    assertOk(r);
    assert.deepEqual(readdirSync(join(r.tree, 'EFI')), ['imgmake']);
    const cfg = readFileSync(join(r.tree, 'EFI/imgmake/grub.cfg'), 'utf8');
    assert.match(cfg, /^set timeout=5\n/);
    assert.doesNotMatch(cfg, /serial/);
    assert.match(cfg, /menuentry 'Test \(rescue\)' \{/);
    assert.match(cfg, new RegExp(`\tlinux /vmlinuz root=UUID=${ROOT_UUID} rw quiet systemd\\.unit=multi-user\\.target\n\tinitrd /boot/initrd\\.img-6\\.1\\.0-test-amd64\n`));
    assert.ok(lstatSync(join(r.tree, 'EFI/imgmake/BOOTX64.EFI')).size > plain, 'ls and cat are built in');
  });
});

test('syslinux_config: grub.cfg boots the DEFAULT of a syslinux config on the root (ostree\'s), with syslinuxcfg built in; no kernel is checked', TG, async () => {
  let plain = 0;
  await withRule('grub.efi', { root_uuid: ROOT_UUID }, withRoot(), (r) => {
    assertOk(r);
    plain = lstatSync(join(r.tree, 'EFI/BOOT/BOOTX64.EFI')).size;
  });
  await withRule('grub.efi', { root_uuid: ROOT_UUID, syslinux_config: '/boot/syslinux/syslinux.cfg', kernel: '/nosuch' }, withRoot(), (r) => {
    assertOk(r);
    const cfg = readFileSync(join(r.tree, 'EFI/BOOT/grub.cfg'), 'utf8');
    assert.match(cfg, new RegExp(`search --no-floppy --fs-uuid --set=root ${ROOT_UUID}\nsyslinux_source /boot/syslinux/syslinux.cfg\nboot\n$`));
    assert.doesNotMatch(cfg, /menuentry/);
    assert.ok(lstatSync(join(r.tree, 'EFI/BOOT/BOOTX64.EFI')).size > plain, 'syslinuxcfg is built in');
  });
});

test('a kernel or initrd missing from the input, or an input without GRUB modules, fails saying so', TG, async () => {
  await withRule('grub.efi', { root_uuid: ROOT_UUID, kernel: '/boot/vmlinuz-7' }, withRoot(), (r) => {
    assertFails(r, 'the tree input has no kernel at /boot/vmlinuz-7');
  });
  await withRule('grub.efi', { root_uuid: ROOT_UUID, initrd: '/initrd.img' }, withRoot(), (r) => {
    assertFails(r, 'the tree input has no initrd at /initrd.img');
  });
  const bare = join(work.dir, 'bare');
  mkdirSync(join(bare, 'boot'), { recursive: true });
  await withRule('grub.efi', { root_uuid: ROOT_UUID }, withRoot(bare), (r) => {
    assertFails(r, 'the tree input has no GRUB modules in /usr/lib/grub/x86_64-efi: install grub-efi-amd64-bin in it');
  });
  // The modules come from the input, not the buildroot: one missing there fails grub-mkimage.
  const partial = join(work.dir, 'partial');
  execFileSync('cp', ['-a', root, partial]);
  rmSync(join(partial, 'usr/lib/grub/x86_64-efi/serial.mod'));
  await withRule('grub.efi', { root_uuid: ROOT_UUID }, withRoot(partial), (r) => {
    assertFails(r, 'serial.mod', 'grub-mkimage failed');
  });
});

test('the schema wants the root UUID and a plain command line', async () => {
  assert.deepEqual(await schemaErrors('grub.efi', { root_uuid: ROOT_UUID }), []);
  for (const bad of [
    {},
    { root_uuid: ROOT_UUID, cmdline: 'init=$(reboot)' },
    { root_uuid: ROOT_UUID, cmdline: 'a"b' },
    { root_uuid: ROOT_UUID, kernel: 'boot/vmlinuz' },
    { root_uuid: ROOT_UUID, title: "it's" },
    { root_uuid: ROOT_UUID, directory: '/EFI/x y' },
    { root_uuid: ROOT_UUID, directory: '/EFI/..' },
    { root_uuid: ROOT_UUID, directory: '/./EFI' },
  ]) {
    assert.notDeepEqual(await schemaErrors('grub.efi', bad), [], JSON.stringify(bad));
  }
});
