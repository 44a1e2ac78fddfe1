#!/bin/bash
# The floor for examples/debian-12, target qcow2: the same bootable disk made by a plain shell
# script with the same tools and no engine (no lock, no keys, no sandbox, no cache, no buildroot).
#
#   bench/floor-debian.sh PROJECT_DIR OUT_DIR HOSTNAME [FROM]       (as root)
#
# Writes OUT_DIR/tree (the root filesystem), OUT_DIR/esp, OUT_DIR/disk.raw and OUT_DIR/disk.qcow2.
# FROM=hostname redoes only what the limit of a hostname edit is: the hostname step on the tree a
# previous full run left, then the ESP, the disk and the qcow2. Without FROM, everything from an
# empty directory, packages downloaded from the mirror. With CHECKPOINTS=DIR, every step ends
# with a full copy of the tree it changed (`cp -a` to DIR/STEP), and a FROM run starts by copying
# the checkpoint before the hostname back: the copy-per-stage design (osbuild, coreos-assembler)
# the benchmark compares against. Prints each step's seconds.
#
# The steps are examples/debian-12's stages in order, with the values of its YAML (the package
# list is read from distro/bookworm.yaml) and the same tools: mmdebstrap (root mode, variant
# important), mkfs.ext4 -d, mkfs.vfat + mtools, grub-mkimage from the tree's own GRUB modules,
# sfdisk, qemu-img; fixed UUIDs, SOURCE_DATE_EPOCH, clamped mtimes and inode times, like the
# rules. What differs from imgmake's image and build (see docs/bench.md):
# - packages come straight from the mirror of the host's apt sources (MIRROR=URL, or a sources
#   file, to choose another) at their newest versions; imgmake resolves a lock first and
#   installs exactly the locked .debs from a local flat repository. Same set when the lock is fresh.
# - the tools are the host's; imgmake installs them into a buildroot first (beside the package
#   install, sharing the two cores).
# - units are enabled with the host's `systemctl --root`, the admin user made with `useradd
#   --root`: the same links and entries as imgmake's rules, not necessarily the same bytes.
# - nothing is exported: the qcow2 is written where it stays (imgmake copies it to out/).
# Not boot-tested; its qcow2 is the same size as imgmake's within a few MB.
set -euo pipefail
project=$(realpath "$1") out=$2 hostname=$3 from=${4:-}
mkdir -p "$out"
out=$(realpath "$out")
tree=$out/tree esp=$out/esp disk=$out/disk.raw work=$out/work
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} LC_ALL=C TZ=UTC MTOOLS_SKIP_CHECK=1
sde=$SOURCE_DATE_EPOCH

# The definition's values (examples/debian-12: imgmake.yaml, environment/, platform/).
root_uuid=0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d esp_volid=1234ABCD esp_uuid=1234-ABCD
label_id=4f3c1e2a-0b1d-4c5e-9a7b-1d2e3f405162
bios_uuid=6a1b2c3d-0000-4000-8000-000000000003 esp_partuuid=6a1b2c3d-0000-4000-8000-000000000001
root_partuuid=6a1b2c3d-0000-4000-8000-000000000002
console=console=ttyS0,115200 timezone=Etc/UTC
admin_key=$(sed -n 's/^  admin_ssh_key: "\(.*\)"$/\1/p' "$project/imgmake.yaml")
packages=$(awk '/^  distro:/ { d = 1 } d && /^ +packages:$/ { p = 1; next } p && /^ +- [a-z0-9][a-z0-9.+-]*$/ { print $2; next } p { exit }' \
  "$project/distro/bookworm.yaml" | paste -sd, -)
[ -n "$packages" ] || { echo "floor-debian: no package list in $project/distro/bookworm.yaml" >&2; exit 2; }
mirror=${MIRROR:-/etc/apt/sources.list.d/debian.sources}
grub_modules="part_gpt part_msdos fat ext2 normal configfile linux search search_fs_uuid echo test serial terminal gzio sleep boot"

# Disk layout in 512-byte sectors, as disk.partition places it: 3 GiB, 1 MiB alignment, the
# last partition up to the backup GPT.
sectors=$((3 * 1024 * 1024 * 2))
bios_start=2048 bios_size=2048 esp_start=4096 esp_size=204800 root_start=208896
root_size=$(( (sectors - 33) / 2048 * 2048 - root_start ))

step=0 t0=0
begin() { t0=$(date +%s%N); }
# end NAME DIR: the step's time; under CHECKPOINTS, a full copy of DIR (the tree it changed) to
# CHECKPOINTS/NAME (CHECKPOINTS/edit-NAME in a FROM run: the first build's stay, as in a store).
end() {
  step=$((step + 1))
  if [ -n "${CHECKPOINTS:-}" ]; then
    local c=$CHECKPOINTS/${from:+edit-}$1
    mkdir -p "$CHECKPOINTS"
    rm -rf --one-file-system "$c"
    cp -a "$2" "$c"
  fi
  printf 'step %2d %-14s %7.2f s\n' "$step" "$1" "$(( $(date +%s%N) - t0 ))e-9"
}
# le64 N: N as 8 little-endian bytes; at OFFSET: stdin over the disk at that byte, in place.
le64() { local i; for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( ($1 >> (8 * i)) & 255 )))"; done; }
at() { dd of="$disk" bs=1 seek="$1" conv=notrunc status=none; }

if [ -z "$from" ]; then
  # distro: packages (apt.install), locale, machine-id
  begin
  if findmnt -R "$tree" > /dev/null 2>&1; then echo "floor-debian: something is mounted under $tree" >&2; exit 1; fi
  rm -rf --one-file-system "$tree"
  case $mirror in /*) sources=$mirror ;; *) sources="deb $mirror bookworm main" ;; esac
  mmdebstrap --mode=root --variant=important --include="$packages" --aptopt='Acquire::Languages "none"' \
    bookworm "$tree" "$sources" > "$out/mmdebstrap.log" 2>&1 || { tail -n 30 "$out/mmdebstrap.log" >&2; exit 1; }
  rm -f "$tree"/etc/ssh/ssh_host_*_key "$tree"/etc/ssh/ssh_host_*_key.pub
  mkdir -p "$tree/etc/systemd/system/ssh.service.wants" "$tree/etc/systemd/system/ssh.socket.wants"
  printf '%s\n' '[Unit]' 'Description=Make the SSH host keys this image was built without' 'Before=ssh.service ssh.socket' \
    'ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key' '' '[Service]' 'Type=oneshot' 'ExecStart=/usr/bin/ssh-keygen -A' '' \
    '[Install]' 'WantedBy=ssh.service ssh.socket' > "$tree/etc/systemd/system/imgmake-ssh-host-keys.service"
  for w in ssh.service ssh.socket; do ln -sfn /etc/systemd/system/imgmake-ssh-host-keys.service "$tree/etc/systemd/system/$w.wants/"; done
  find "$tree" -xdev -newermt "@$sde" -exec touch --no-dereference --date="@$sde" {} +
  end packages "$tree"
  begin; echo LANG=C.UTF-8 > "$tree/etc/default/locale"; echo KEYMAP=us > "$tree/etc/vconsole.conf"; end locale "$tree"
  begin; : > "$tree/etc/machine-id"; chmod 0444 "$tree/etc/machine-id"; ln -sfn /etc/machine-id "$tree/var/lib/dbus/machine-id"; end machine-id "$tree"
  # vm: cmdline, network, units
  begin
  mkdir -p "$tree/etc/kernel" "$tree/etc/default/grub.d"
  echo "$console" > "$tree/etc/kernel/cmdline"
  echo "GRUB_CMDLINE_LINUX=\"$console\"" > "$tree/etc/default/grub.d/imgmake.cfg"
  end cmdline "$tree"
  begin
  printf '[Match]\nType=ether\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$tree/etc/systemd/network/20-ethernet.network"
  end network "$tree"
  begin
  systemctl --root="$tree" --quiet enable serial-getty@ttyS0.service systemd-networkd.service systemd-resolved.service ssh.service
  systemctl --root="$tree" --quiet set-default multi-user.target
  end units "$tree"
  # workload: boot-check
  begin
  # The unit's text as workload/boot-check.yaml has it (its `content: |` block).
  awk '/content: \|$/ { on = 1; match($0, /^ */); ind = RLENGTH + 2; next }
    on && /[^ ]/ && match($0, /^ */) && RLENGTH < ind { exit }
    on { print substr($0, ind + 1) }' "$project/workload/boot-check.yaml" > "$tree/etc/systemd/system/imgmake-boot-check.service"
  systemctl --root="$tree" --quiet enable imgmake-boot-check.service
  end boot-check "$tree"
fi

# os: hostname (the edit), then timezone, admin, sudoers, fstab, /boot/efi (done once: an edit
# of the hostname does not need them again on this tree)
begin
if [ -n "$from" ] && [ -n "${CHECKPOINTS:-}" ]; then
  # Copy-per-stage checks the tree of the stage before the edit out of its store: one more copy.
  rm -rf --one-file-system "$tree" && cp -a "$CHECKPOINTS/boot-check" "$tree"
fi
echo "$hostname" > "$tree/etc/hostname"
awk -v e="127.0.1.1	$hostname" '!/^127\.0\.1\.1[ \t]/ { print } /^127\.0\.0\.1[ \t]/ && !done { print e; done = 1 }' \
  "$tree/etc/hosts" > "$work.hosts" && mv "$work.hosts" "$tree/etc/hosts"
end hostname "$tree"
if [ -z "$from" ]; then
  begin; ln -sfn "/usr/share/zoneinfo/$timezone" "$tree/etc/localtime"; echo "$timezone" > "$tree/etc/timezone"; end timezone "$tree"
  begin
  useradd --root "$tree" --create-home --shell /bin/bash --groups sudo admin
  ids=$(awk -F: '$1 == "admin" { print $3 ":" $4 }' "$tree/etc/passwd")
  chmod 0700 "$tree/home/admin"
  install -d -m 0700 -o "${ids%:*}" -g "${ids#*:}" "$tree/home/admin/.ssh"
  echo "$admin_key" > "$tree/home/admin/.ssh/authorized_keys"
  chown "$ids" "$tree/home/admin/.ssh/authorized_keys" && chmod 0600 "$tree/home/admin/.ssh/authorized_keys"
  end admin "$tree"
  begin; echo 'admin ALL=(ALL:ALL) NOPASSWD: ALL' > "$tree/etc/sudoers.d/admin"; chmod 0440 "$tree/etc/sudoers.d/admin"; end sudoers "$tree"
  begin; printf 'UUID=%s / ext4 errors=remount-ro 0 1\nUUID=%s /boot/efi vfat umask=0077 0 2\n' "$root_uuid" "$esp_uuid" > "$tree/etc/fstab"; end fstab "$tree"
  begin; mkdir -p "$tree/boot/efi"; end esp-mountpoint "$tree"
fi

# esp: GRUB for UEFI (grub.efi), from the tree's own modules
begin
rm -rf "$esp" "$work" && mkdir -p "$esp/EFI/BOOT" "$work"
grub-mkimage -O x86_64-efi -d "$tree/usr/lib/grub/x86_64-efi" -p /EFI/BOOT -o "$esp/EFI/BOOT/BOOTX64.EFI" $grub_modules efi_gop
cat > "$esp/EFI/BOOT/grub.cfg" <<EOF
set timeout=1
set default=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
search --no-floppy --fs-uuid --set=root $root_uuid
menuentry 'Debian' {
	linux /vmlinuz root=UUID=$root_uuid ro $console
	initrd /initrd.img
}
EOF
touch -d "@$sde" "$esp/EFI/BOOT/BOOTX64.EFI" "$esp/EFI/BOOT/grub.cfg"
end esp.grub "$esp"

# disk: partition, ESP, BIOS boot code, root filesystem (in place, no loop devices)
begin
rm -f "$disk" "$out/disk.qcow2"
truncate -s $((sectors * 512)) "$disk"
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<EOF
label: gpt
label-id: $label_id
unit: sectors
first-lba: 2048

start=$bios_start, size=$bios_size, type=21686148-6449-6E6F-744E-656564454649, uuid=$bios_uuid, name="bios"
start=$esp_start, size=$esp_size, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_partuuid, name="esp"
start=$root_start, size=$root_size, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_partuuid, name="root"
EOF
end disk.partition "$disk"
begin
mkfs.vfat -F 32 -S 512 -s 1 --invariant -i "$esp_volid" -h "$esp_start" --offset="$esp_start" "$disk" $((esp_size / 2)) > "$work/mkfs.vfat.log" 2>&1
mmd -i "$disk@@$((esp_start * 512))" ::/EFI ::/EFI/BOOT
mcopy -i "$disk@@$((esp_start * 512))" "$esp/EFI/BOOT/BOOTX64.EFI" "$esp/EFI/BOOT/grub.cfg" ::/EFI/BOOT/
end disk.esp "$disk"
begin
grub-mkimage -O i386-pc -d "$tree/usr/lib/grub/i386-pc" -p "(,gpt2)/EFI/BOOT" -o "$work/core.img" biosdisk $grub_modules
dd if="$work/core.img" of="$disk" bs=512 seek=$bios_start conv=notrunc status=none
le64 $((bios_start + 1)) | at $((bios_start * 512 + 0x1f4))
dd if="$tree/usr/lib/grub/i386-pc/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
le64 $bios_start | at $((0x5c))
printf '\220\220' | at $((0x66))
end disk.bios "$disk"
begin
# The rule's own mke2fs.conf (rules/disk.ext4): the host's must not decide the features.
printf '%s\n' '[defaults]' 'base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr' \
  'default_mntopts = acl,user_xattr' 'enable_periodic_fsck = 0' '[fs_types]' \
  'ext4 = {' 'features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize' '}' > "$work/mke2fs.conf"
dev="$disk?offset=$((root_start * 512))"
E2FSPROGS_FAKE_TIME=$sde MKE2FS_CONFIG=$work/mke2fs.conf mkfs.ext4 -q -F -t ext4 -b 4096 -I 256 -i 16384 -U "$root_uuid" \
  -E "hash_seed=$root_uuid,root_owner=0:0,offset=$((root_start * 512)),nodiscard,lazy_itable_init=1,lazy_journal_init=1" \
  -d "$tree" "$disk" $((root_size / 8))
# mkfs.ext4 -d copies atime and ctime and stamps crtime with the clock: set every used inode's
# to SOURCE_DATE_EPOCH (used = not in dumpe2fs's "Free inodes" ranges), as disk.ext4 does.
dumpe2fs "$dev" 2> /dev/null | awk -v sde="$sde" '
  /^Inodes per group:/ { ipg = $4 } /^First inode:/ { first = $3 } /^Group [0-9]+:/ { g = $2 + 0 }
  /^  Free inodes: / {
    split("", free); sub(/^  Free inodes: */, ""); n = split($0, rs, /, */)
    for (i = 1; i <= n; i++) if (rs[i] != "") { m = split(rs[i], ab, "-"); for (j = ab[1] + 0; j <= (m > 1 ? ab[2] : ab[1]) + 0; j++) free[j] = 1 }
    for (ino = g * ipg + 1; ino <= (g + 1) * ipg; ino++)
      if (!(ino in free) && (ino >= first || ino == 2)) printf "sif <%d> atime @%d\nsif <%d> ctime @%d\nsif <%d> crtime @%d\n", ino, sde, ino, sde, ino, sde
  }' > "$work/debugfs.cmds"
# The hostname step wrote after SOURCE_DATE_EPOCH: clamp mtimes too.
(cd "$tree" && find . -newermt "@$sde" -printf '/%P\n') | sed -e 's/"/""/g' -e "s/.*/sif \"&\" mtime @$sde/" >> "$work/debugfs.cmds"
debugfs -w -f "$work/debugfs.cmds" "$dev" > "$work/debugfs.log" 2>&1
e2fsck -fn "$dev" > "$work/e2fsck.log" 2>&1
end disk.root "$disk"

# qcow2: the same creation options as disk.convert
begin
qemu-img convert -f raw -O qcow2 -o compat=1.1,cluster_size=65536,refcount_bits=16,lazy_refcounts=off,extended_l2=off,preallocation=off \
  "$disk" "$out/disk.qcow2"
end qcow2 "$out/disk.qcow2"
