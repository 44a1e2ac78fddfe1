#!/bin/sh
# Tree stage: turn the mmdebstrap tree into this image's OS config (what imgmake rules would do).
# Usage: configure.sh ROOT   (env: HOSTNAME_, SOURCE_DATE_EPOCH)
set -eu
R=$1
. "$(dirname "$0")/params.sh"
echo "$HOSTNAME_" > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$HOSTNAME_" > "$R/etc/hosts"
rm -f "$R/etc/resolv.conf"                     # host's leaked resolver
: > "$R/etc/machine-id"                        # empty: systemd generates one on first boot
rm -f "$R/var/lib/dbus/machine-id"
cat > "$R/etc/fstab" <<F
UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1
UUID=$ESP_UUID /boot/efi vfat umask=0077 0 2
F
mkdir -p "$R/boot/efi"
cat > "$R/etc/systemd/system/imgmake-marker.service" <<'U'
[Unit]
Description=Print the imgmake boot marker and power off
After=multi-user.target

[Service]
Type=oneshot
StandardOutput=tty
TTYPath=/dev/ttyS0
ExecStart=/bin/sh -c 'echo "IMGMAKE-BOOTED hostname=$(hostname) machine-id=$(cat /etc/machine-id) root=$(findmnt -no SOURCE,FSTYPE /) esp=$(findmnt -no SOURCE,FSTYPE /boot/efi)"'
ExecStartPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
U
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/imgmake-marker.service "$R/etc/systemd/system/multi-user.target.wants/imgmake-marker.service"
# root can log in on the console without password (prototype only)
sed -i 's|^root:[^:]*:|root::|' "$R/etc/shadow"
# drop volatile leftovers of the install
rm -rf "$R/var/cache/apt/"*.bin "$R/var/lib/apt/lists/"* "$R/var/log/"*.log "$R/var/cache/ldconfig/aux-cache" "$R/tmp/"* "$R/run/"*
# clamp mtimes to SOURCE_DATE_EPOCH (a tree stage, so the assembler reads a normalized tree)
SDE=${SOURCE_DATE_EPOCH:?}
find "$R" -newermt "@$SDE" -print0 | xargs -0r touch -h -d "@$SDE"
