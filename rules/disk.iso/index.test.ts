/**
 * disk.iso through the real sandbox, from the host's GRUB modules, a stand-in kernel, initrd and
 * squashfs: xorriso reads back an ISO with the volume id, two El Torito entries (BIOS and UEFI,
 * no emulation), the files where live.initramfs looks, a FAT image holding a PE32+ BOOTX64.EFI,
 * the grub.cfg; two runs give the same bytes; missing inputs fail saying so. That it boots is
 * test/catalog-iso.test.ts's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { sha256File } from '../../test/helpers/disk-fixtures.js';

const HAVE = existsSync('/usr/bin/xorriso') && existsSync('/usr/lib/grub/i386-pc/moddep.lst') && existsSync('/usr/lib/grub/x86_64-efi/moddep.lst');
const T = { timeout: 120_000, skip: !HAVE && 'no xorriso, grub-pc-bin or grub-efi-amd64-bin' };

let work: { dir: string; cleanup: () => void };
let root: string;
let sq: string;
before(() => {
  work = tempDir('imgmake-disk-iso-');
  root = join(work.dir, 'root');
  sq = join(work.dir, 'sq');
  if (!HAVE) return;
  mkdirSync(join(root, 'usr/lib/grub'), { recursive: true });
  execFileSync('cp', ['-a', '/usr/lib/grub/i386-pc', '/usr/lib/grub/x86_64-efi', join(root, 'usr/lib/grub/')]);
  mkdirSync(join(root, 'boot'));
  writeFileSync(join(root, 'boot/vmlinuz-6.1.0-test-amd64'), 'kernel');
  writeFileSync(join(root, 'boot/initrd.img-6.1.0-test-amd64'), 'initrd');
  symlinkSync('boot/vmlinuz-6.1.0-test-amd64', join(root, 'vmlinuz'));
  symlinkSync('/boot/initrd.img-6.1.0-test-amd64', join(root, 'initrd.img'));
  mkdirSync(sq);
  writeFileSync(join(sq, 'filesystem.squashfs'), 'squashfs'.repeat(1000));
});
after(() => work.cleanup());

const inputs = (tree = root) => ({ inputs: { tree: { kind: 'tree' as const, path: tree }, squashfs: { kind: 'tree' as const, path: sq } } });
const xorriso = (iso: string, ...cmd: string[]) => execFileSync('xorriso', ['-indev', iso, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('an ISO with the volume id, El Torito BIOS and UEFI entries, the kernel, initrd, squashfs and grub.cfg', T, async () => {
  await withRule('disk.iso', { cmdline: 'boot=imgmake-live console=ttyS0,115200', title: 'Debian live' }, inputs(), (r) => {
    assertOk(r);
    const iso = join(r.tree, 'live.iso');
    assert.match(execFileSync('file', ['-b', iso], { encoding: 'utf8' }), /ISO 9660 CD-ROM filesystem data 'IMGMAKE_LIVE' \(bootable\)/);
    const el = xorriso(iso, '-report_el_torito', 'plain');
    assert.match(el, /El Torito boot img :\s+1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+\s*\n/);
    assert.match(el, /El Torito boot img :\s+2\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+\d+\s+\d+\s*\n/);
    assert.match(el, /El Torito img path :\s+1\s+\/boot\/grub\/bios\.img/);
    assert.match(el, /El Torito img path :\s+2\s+\/boot\/grub\/efi\.img/);
    const files = xorriso(iso, '-find', '/', '-type', 'f').split('\n').filter((l) => l.startsWith("'")).sort();
    assert.deepEqual(files, ["'/boot/grub/bios.img'", "'/boot/grub/efi.img'", "'/boot/grub/grub.cfg'", "'/live/filesystem.squashfs'", "'/live/initrd.img'", "'/live/vmlinuz'"]);
    const out = join(r.tree, 'x');
    mkdirSync(out);
    xorriso(iso, '-osirrox', 'on', '-extract', '/', out);
    assert.equal(readFileSync(join(out, 'live/vmlinuz'), 'utf8'), 'kernel');
    assert.equal(readFileSync(join(out, 'live/initrd.img'), 'utf8'), 'initrd');
    assert.equal(readFileSync(join(out, 'live/filesystem.squashfs'), 'utf8'), 'squashfs'.repeat(1000));
    assert.equal(
      readFileSync(join(out, 'boot/grub/grub.cfg'), 'utf8'),
      "set timeout=1\nset default=0\nserial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\nmenuentry 'Debian live' {\n\tlinux /live/vmlinuz boot=imgmake-live console=ttyS0,115200\n\tinitrd /live/initrd.img\n}\n",
    );
    // The EFI entry's FAT image holds GRUB as an EFI application at the removable-media path.
    const efi = join(out, 'efi.EFI');
    execFileSync('mcopy', ['-n', '-i', join(out, 'boot/grub/efi.img'), '::/EFI/BOOT/BOOTX64.EFI', efi], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    assert.match(execFileSync('file', ['-b', efi], { encoding: 'utf8' }), /PE32\+ executable \(EFI application\) x86-64/);
    // The BIOS image is grub-mkimage's i386-pc-eltorito: cdboot.img's code first.
    const cdboot = readFileSync('/usr/lib/grub/i386-pc/cdboot.img');
    assert.ok(readFileSync(join(out, 'boot/grub/bios.img')).subarray(0, 8).equals(cdboot.subarray(0, 8)));
    assert.match(r.log, /live\.iso: \d+ bytes, volume IMGMAKE_LIVE, El Torito BIOS and UEFI/);
  });
});

test('the same inputs give the same bytes; the squashfs path and volume id are the options\'', T, async () => {
  const digests: string[] = [];
  for (let i = 0; i < 2; i++) {
    await withRule('disk.iso', {}, inputs(), (r) => {
      assertOk(r);
      digests.push(sha256File(join(r.tree, 'live.iso')));
    });
    if (i === 0) await new Promise((res) => setTimeout(res, 1100));
  }
  assert.equal(digests[0], digests[1]);
  await withRule('disk.iso', { filename: 'x.iso', volume_id: 'OTHER_1', squashfs_path: '/os/root.sfs' }, inputs(), (r) => {
    assertOk(r);
    const iso = join(r.tree, 'x.iso');
    assert.match(xorriso(iso, '-pvd_info'), /Volume Id\s+: OTHER_1/);
    assert.match(xorriso(iso, '-find', '/os', '-type', 'f'), /'\/os\/root\.sfs'/);
  });
});

test('a missing kernel, initrd, squashfs or GRUB fails saying so', T, async () => {
  await withRule('disk.iso', { kernel: '/boot/vmlinuz-7' }, inputs(), (r) => assertFails(r, 'the tree input has no kernel at /boot/vmlinuz-7'));
  await withRule('disk.iso', { initrd: '/boot/initrd.img' }, inputs(), (r) => assertFails(r, 'the tree input has no initrd at /boot/initrd.img'));
  await withRule('disk.iso', { squashfs: 'root.sfs' }, inputs(), (r) => assertFails(r, 'the squashfs input has no root.sfs'));
  const bare = join(work.dir, 'bare');
  execFileSync('cp', ['-a', root, bare]);
  execFileSync('rm', ['-rf', join(bare, 'usr/lib/grub/i386-pc')]);
  await withRule('disk.iso', {}, inputs(bare), (r) => assertFails(r, 'the tree input has no GRUB modules in /usr/lib/grub/i386-pc: install grub-pc-bin in it'));
});

test('the schema: a volume id of ISO 9660 d-characters, plain paths and command line', async () => {
  assert.deepEqual(await schemaErrors('disk.iso', {}), []);
  for (const bad of [{ volume_id: 'lower' }, { volume_id: 'A'.repeat(33) }, { squashfs_path: 'live/x' }, { cmdline: 'a"b' }, { title: "it's" }, { kernel: 'vmlinuz' }]) {
    assert.notDeepEqual(await schemaErrors('disk.iso', bad), [], JSON.stringify(bad));
  }
});
