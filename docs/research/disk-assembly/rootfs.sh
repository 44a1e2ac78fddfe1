#!/bin/sh
# rootfs.sh DIR — step 1: a bootable Debian 12 tree with the host's mmdebstrap (root mode, chroot),
# mirror taken from the host's apt sources (never written into imgmake's repository).
set -eu
DIR=$1
HERE=$(dirname "$(realpath "$0")")
mmdebstrap --variant=important \
  --include=linux-image-amd64,systemd-sysv,udev,initramfs-tools,grub-efi-amd64-bin,grub-pc-bin \
  --essential-hook="$HERE/hook-essential.sh \"\$1\"" \
  bookworm "$DIR" /etc/apt/sources.list.d/debian.sources
"$HERE/configure.sh" "$DIR"
