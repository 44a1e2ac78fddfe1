#!/bin/sh
set -e
R="$1"
cat > "$R/etc/fstab" <<F
UUID=0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d / ext4 errors=remount-ro 0 1
UUID=1234-ABCD /boot/efi vfat umask=0077 0 2
F
mkdir -p "$R/boot/efi"
# initramfs-tools ignores fstab's type for / and probes the (absent) device: say it, or the initrd has no fsck
mkdir -p "$R/etc/initramfs-tools/conf.d"
echo FSTYPE=ext4 > "$R/etc/initramfs-tools/conf.d/imgmake-fstype"
