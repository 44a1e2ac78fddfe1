#!/bin/sh
# /sbin/init of the rpm-minimal image (packaged by imgmin-init.spec). Debian's initramfs mounted
# the root filesystem by its UUID and moved /dev, /proc, /sys and /run onto it; this proves the
# boot on the serial console (the kernel's console=ttyS0), then powers the machine off.
export PATH=/usr/sbin:/usr/bin
[ -e /proc/mounts ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
. /etc/os-release
root=$(awk '$2 == "/" && $1 != "rootfs" { print $3 "," substr($4, 1, 2) }' /proc/mounts | tail -n 1)
rpmdb=absent
[ -f /var/lib/rpm/rpmdb.sqlite ] && rpmdb=present
echo "IMGMAKE-RPM-BOOTED os=$ID kernel=$(uname -r) root=$root rpmdb=$rpmdb"
sync
poweroff -f
