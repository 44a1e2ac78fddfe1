/**
 * ostree.kernel: the kernel and an ostree-aware initramfs into /usr/lib/modules/VERSION/, where
 * `ostree admin deploy` looks for them. Debian's packaged path is dracut with ostree-boot's
 * 98ostree module (ostree-prepare-root as an initrd unit); initramfs-tools has no ostree hook.
 *
 * It does not touch /etc or /var (ostree.layout) and writes no bootloader configuration (ostree
 * writes the boot entries at deploy).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  version?: string;
  initramfs: 'dracut' | 'keep';
}

const kernel: RuleInvoke<Options> = (options, ctx) => {
  const invocation = shell(ctx, [
    `mods=$(in_tree /usr/lib/modules follow)`,
    `[ -d "$mods" ] || die 'the tree has no /usr/lib/modules: install a kernel package first'`,
    ...(options.version
      ? [`kver=${q(options.version)}`, `[ -d "$mods/$kver" ] || die "no kernel $kver in /usr/lib/modules (it has: $(ls "$mods" | tr '\\n' ' '))"`]
      : [
          `n=$(ls "$mods" | wc -l)`,
          `[ "$n" -eq 1 ] || die "/usr/lib/modules holds $n kernels ($(ls "$mods" | tr '\\n' ' ')): say which with the version option"`,
          `kver=$(ls "$mods")`,
        ]),
    `boot=$(in_tree /boot follow)`,
    `dest="$mods/$kver"`,
    `[ -f "$boot/vmlinuz-$kver" ] || die "no /boot/vmlinuz-$kver in the tree"`,
    ...(options.initramfs === 'dracut'
      ? [
          `[ -x ./usr/bin/dracut ] || [ -x ./bin/dracut ] || die 'the tree has no dracut: install the dracut package (it replaces initramfs-tools) and ostree-boot'`,
          `[ -x ./usr/lib/ostree/ostree-prepare-root ] || die 'the tree has no /usr/lib/ostree/ostree-prepare-root: install the ostree-boot package'`,
          // dracut reads the running system's /proc and /dev: the private ones in the tree.
          `chroot . /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \\`,
          `  dracut --quiet --force --no-hostonly --reproducible --add ostree --kver "$kver" /tmp/initramfs.img > /tmp/dracut.log 2>&1 || { cat /tmp/dracut.log >&2; die "dracut failed for kernel $kver"; }`,
          `chroot . lsinitrd /tmp/initramfs.img > /tmp/lsinitrd 2>&1 || { tail /tmp/lsinitrd >&2; die 'lsinitrd cannot read the new initramfs'; }`,
          `grep -q 'usr/lib/ostree/ostree-prepare-root$' /tmp/lsinitrd || die "the initramfs dracut made has no ostree-prepare-root: is ostree-boot's dracut module (98ostree) in the tree?"`,
          `mv -f ./tmp/initramfs.img "$dest/initramfs.img"`,
          `rm -f "$boot/initrd.img-$kver"`,
        ]
      : [`[ -f "$boot/initrd.img-$kver" ] || die "no /boot/initrd.img-$kver in the tree"`, `mv -f "$boot/initrd.img-$kver" "$dest/initramfs.img"`]),
    `mv -f "$boot/vmlinuz-$kver" "$dest/vmlinuz"`,
    `[ ! -f "$boot/config-$kver" ] || mv -f "$boot/config-$kver" "$dest/config"`,
    `[ ! -f "$boot/System.map-$kver" ] || mv -f "$boot/System.map-$kver" "$dest/System.map"`,
    `for l in vmlinuz vmlinuz.old initrd.img initrd.img.old; do`,
    `  [ ! -L "./$l" ] || rm -f "./$l"`,
    `  [ ! -L "$boot/$l" ] || rm -f "$boot/$l"`,
    `done`,
    `chmod 0644 "$dest/vmlinuz" "$dest/initramfs.img"`,
    `touch -d "@$SOURCE_DATE_EPOCH" "$dest/vmlinuz" "$dest/initramfs.img" "$dest" "$boot" .`,
    `echo "ostree.kernel: $kver: vmlinuz $(wc -c < "$dest/vmlinuz") bytes, initramfs.img $(wc -c < "$dest/initramfs.img") bytes in /usr/lib/modules/$kver"`,
  ]);
  return options.initramfs === 'dracut' ? { ...invocation, apiFilesystems: true } : invocation;
};

export default kernel;
