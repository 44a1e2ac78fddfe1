/**
 * live.initramfs: the image's own initramfs-tools, taught to boot from a live medium.
 *
 * Why our own boot script rather than Debian's live-boot: live-boot is a package, and a package
 * on top of an installed tree is a second `apt.install` that this engine does not have (it
 * bootstraps whole trees from a lock: docs/catalog.md), so adding it would mean installing
 * Debian again for the ISO. The script below is the part of live-boot a live ISO needs — find
 * the medium, loop-mount the squashfs, overlay a tmpfs — in sixty lines of the initramfs's own
 * shell, on the modules and tools the tree already has.
 *
 * The script is a boot script in initramfs-tools' sense (`/scripts/$BOOT`, picked by
 * `boot=imgmake-live`): /init sources it and calls `mountroot`, which must leave the root at
 * `$rootmnt`. Everything it calls (`panic`, `log_*`, `wait_for_udev`) comes from initramfs-tools'
 * /scripts/functions; `mount`, `sleep`, `mkdir` are klibc's, `losetup` is util-linux's, copied in
 * by the hook (klibc's cannot find a free loop device).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  squashfs: string;
  wait: number;
  modules: string[];
}

export const BOOT_SCRIPT_NAME = 'imgmake-live';
const MODULES = ['isofs', 'squashfs', 'overlay', 'loop', 'cdrom', 'sr_mod'];

/** /scripts/imgmake-live in the initramfs. */
export function bootScript(o: Options): string {
  const modules = [...MODULES, ...o.modules].join(' ');
  return `# imgmake live boot (boot=imgmake-live): the root is ${o.squashfs} of an ISO 9660 medium,
# loop-mounted read-only, under an overlay whose upper layer is a tmpfs. Written by the
# live.initramfs rule; sourced by the initramfs's /init, which calls mountroot.

live_panic()
{
	panic "imgmake-live: $*"
}

live_find_medium()
{
	for dev in /dev/sr* /dev/vd* /dev/sd* /dev/nvme*n* /dev/xvd* /dev/mmcblk*; do
		[ -b "$dev" ] || continue
		mount -t iso9660 -o ro "$dev" /run/live/medium 2>/dev/null || continue
		if [ -f /run/live/medium${o.squashfs} ]; then
			echo "$dev"
			return 0
		fi
		umount /run/live/medium
	done
	return 1
}

mountroot()
{
	for m in ${modules}; do
		modprobe -q "$m" || true
	done
	mkdir -p /run/live/medium /run/live/rootfs /run/live/overlay
	log_begin_msg "imgmake-live: looking for the medium holding ${o.squashfs}"
	left=${o.wait}
	while ! medium=$(live_find_medium); do
		[ "$left" -gt 0 ] || live_panic "no block device holds an ISO 9660 filesystem with ${o.squashfs} (waited ${o.wait} s)"
		left=$((left - 1))
		wait_for_udev 1
		sleep 1
	done
	log_end_msg
	log_success_msg "imgmake-live: medium $medium"
	loop=$(/sbin/imgmake-losetup --find --show --read-only /run/live/medium${o.squashfs}) \\
		|| live_panic "cannot attach ${o.squashfs} to a loop device"
	mount -t squashfs -o ro "$loop" /run/live/rootfs || live_panic "cannot mount ${o.squashfs} ($loop)"
	mount -t tmpfs -o mode=0755 tmpfs /run/live/overlay || live_panic "cannot mount the overlay's tmpfs"
	mkdir -p /run/live/overlay/upper /run/live/overlay/work
	mount -t overlay -o lowerdir=/run/live/rootfs,upperdir=/run/live/overlay/upper,workdir=/run/live/overlay/work \\
		overlay "\${rootmnt}" || live_panic "cannot mount the overlay root"
}
`;
}

/** /etc/initramfs-tools/hooks/imgmake-live: what the boot script needs inside the initramfs. */
export function hook(o: Options): string {
  return `#!/bin/sh
# imgmake live boot: the modules and tools /scripts/imgmake-live needs (live.initramfs rule).
case "$1" in prereqs) exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
for m in ${[...MODULES, ...o.modules].join(' ')}; do
	manual_add_modules "$m"
done
copy_exec /usr/sbin/losetup /sbin/imgmake-losetup
`;
}

const liveInitramfs: RuleInvoke<Options> = (options, ctx) => {
  const invocation = shell(
    ctx,
    [
      '[ -x usr/sbin/update-initramfs ] || die "the tree has no /usr/sbin/update-initramfs: install initramfs-tools in it"',
      'ls boot/vmlinuz-* > /dev/null 2>&1 || die "the tree has no kernel in /boot: install one (linux-image-amd64) in it"',
      `put ${q(`${ctx.run}/boot-script`)} /etc/initramfs-tools/scripts/${BOOT_SCRIPT_NAME} 0644 0:0`,
      `put ${q(`${ctx.run}/hook`)} /etc/initramfs-tools/hooks/${BOOT_SCRIPT_NAME} 0755 0:0`,
      // Their mtimes go into the initramfs (cpio keeps them).
      `touch --date="@$SOURCE_DATE_EPOCH" etc/initramfs-tools/scripts/${BOOT_SCRIPT_NAME} etc/initramfs-tools/hooks/${BOOT_SCRIPT_NAME}`,
      // The tree's own initramfs-tools, kernel modules and binaries: a chroot, as dpkg's trigger
      // would run it. It finds no root device to check (there is none); it says so and goes on.
      'chroot . /usr/sbin/update-initramfs -u -k all || die "update-initramfs failed in the tree"',
      'for f in boot/initrd.img-*; do',
      '  [ -f "$f" ] || continue',
      '  touch --no-dereference --date="@$SOURCE_DATE_EPOCH" "$f"',
      '  echo "/$f: $(wc -c < "$f") bytes, boots with boot=imgmake-live"',
      'done',
      'touch --no-dereference --date="@$SOURCE_DATE_EPOCH" boot etc/initramfs-tools/scripts etc/initramfs-tools/hooks',
    ],
    { 'boot-script': bootScript(options), hook: hook(options) },
  );
  return { ...invocation, apiFilesystems: true };
};

export default liveInitramfs;
