#!/bin/bash
# assemble.sh ROOT OUTDIR — a bootable GPT disk (UEFI + BIOS GRUB) from a root filesystem
# directory, with no mounts, no loop devices, no /dev access: only tools acting on an image file.
# Reproducible: the same ROOT tree (same content, modes, owners, mtimes) gives the same bytes.
#
# Layout (512-byte sectors, 2 GiB disk):
#   p1  BIOS boot   1 MiB   @ 1 MiB    (GRUB i386-pc core.img, written with dd)
#   p2  ESP       100 MiB   @ 2 MiB    (FAT32 by mkfs.vfat --offset + mtools; BOOTX64.EFI + grub.cfg)
#   p3  root     1945 MiB   @ 102 MiB  (ext4 by mkfs.ext4 -d ROOT -E offset=...)
#   last 1 MiB free: backup GPT.
set -euo pipefail
ROOT=$(realpath "$1")
OUT=$2
HERE=$(dirname "$(realpath "$0")")
. "$HERE/params.sh"           # fixed UUIDs + SOURCE_DATE_EPOCH
SDE=$SOURCE_DATE_EPOCH
# GRUB modules and boot.img from the tree itself (the image's own GRUB, not the host's)
GRUBLIB=${GRUBLIB:-$ROOT/usr/lib/grub}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
WORK=$OUT/work; rm -rf "$WORK"; mkdir -p "$WORK"
DISK=$OUT/disk.raw
TIMES=$OUT/times.txt; : > "$TIMES"
export TZ=UTC LC_ALL=C MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH E2FSPROGS_FAKE_TIME=$SDE
[ "${FAKETIME:-1}" = 1 ] || unset E2FSPROGS_FAKE_TIME   # experiment switch

step() { # step NAME CMD... — run and record wall time
  local name=$1; shift; local t0 t1
  t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N)
  printf '%-14s %6.2f s\n' "$name" "$(echo "$t1 - $t0" | bc)" | tee -a "$TIMES"
}

SECT=512
DISK_SECTORS=$((2048 * 2048))        # 2 GiB
BIOS_START=2048;   BIOS_SIZE=2048
ESP_START=4096;    ESP_SIZE=204800
ROOT_START=208896; ROOT_SIZE=$((DISK_SECTORS - ROOT_START - 2048))
KVER=$(cd "$ROOT/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n1)

# ---------------------------------------------------------------- 1. empty sparse disk + GPT
partition() {
  rm -f "$DISK"
  truncate -s $((DISK_SECTORS * SECT)) "$DISK"
  sfdisk --quiet --no-reread --no-tell-kernel "$DISK" <<EOF
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
sector-size: 512

start=$BIOS_START, size=$BIOS_SIZE, type=21686148-6449-6E6F-744E-656564454649, uuid=$BIOS_PARTUUID, name="bios"
start=$ESP_START, size=$ESP_SIZE, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_PARTUUID, name="esp"
start=$ROOT_START, size=$ROOT_SIZE, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_PARTUUID, name="root"
EOF
}

# ---------------------------------------------------------------- 2. ext4 root from the tree
# Our own mke2fs.conf: the host's /etc/mke2fs.conf (absent in the sandbox) must not decide features.
cat > "$WORK/mke2fs.conf" <<'EOF'
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
EOF
mkroot() {
  MKE2FS_CONFIG=$WORK/mke2fs.conf mkfs.ext4 -q -F -t ext4 -b 4096 -L root \
    -U "$ROOT_UUID" \
    -E "hash_seed=$ROOT_HASH_SEED,root_owner=0:0,offset=$((ROOT_START * SECT)),nodiscard,lazy_itable_init=1,lazy_journal_init=1" \
    -d "$ROOT" "$DISK" $((ROOT_SIZE * SECT / 4096))
}

# mkfs.ext4 -d copies each source file's atime and ctime (and stamps crtime with the clock):
# none of them can be controlled on the source tree. Rewrite them on every used inode.
# Used inodes = complement of dumpe2fs's "Free inodes:" ranges, so no path quoting is needed.
fixtimes() {
  local dev="$DISK?offset=$((ROOT_START * SECT))"
  dumpe2fs "$dev" 2>/dev/null | awk -v sde="$SDE" '
    /^Inodes per group:/ { ipg = $4 }
    /^First inode:/      { first = $3 }
    /^Group [0-9]+:/     { g = $2 + 0 }
    /^  Free inodes: / {
      delete free
      sub(/^  Free inodes: */, "")
      n = split($0, rs, /, */)
      for (i = 1; i <= n; i++) {
        if (rs[i] == "") continue
        m = split(rs[i], ab, "-"); a = ab[1] + 0; b = (m > 1 ? ab[2] + 0 : a)
        for (j = a; j <= b; j++) free[j] = 1
      }
      lo = g * ipg + 1; hi = (g + 1) * ipg
      for (ino = lo; ino <= hi; ino++) {
        if (ino in free) continue
        if (ino < first && ino != 2) continue      # reserved inodes except the root dir
        printf "sif <%d> atime @%d\nsif <%d> ctime @%d\nsif <%d> crtime @%d\n", ino, sde, ino, sde, ino, sde
      }
    }' > "$WORK/debugfs.cmds"
  debugfs -w -f "$WORK/debugfs.cmds" "$dev" > "$WORK/debugfs.log" 2>&1
  # debugfs echoes each command as "debugfs: ..."; anything else is an error message
  # (no `| grep -q`: with pipefail, SIGPIPE on the first grep would hide the errors)
  grep -Ev '^debugfs( [0-9.]+ \(|: )' "$WORK/debugfs.log" > "$WORK/debugfs.errors" || true
  if [ -s "$WORK/debugfs.errors" ]; then
    echo "debugfs reported:" >&2; head "$WORK/debugfs.errors" >&2; return 1
  fi
  echo "  rewrote times of $(($(wc -l < "$WORK/debugfs.cmds") / 3)) inodes" >> "$TIMES"
}

fsckroot() { # read-only check: the rewritten image must be clean
  e2fsck -fn "$DISK?offset=$((ROOT_START * SECT))" > "$WORK/e2fsck.log" 2>&1
}

# ---------------------------------------------------------------- 3. GRUB (EFI and BIOS)
cat > "$WORK/early.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ESP_UUID
set prefix=(\$root)/EFI/BOOT
configfile \$prefix/grub.cfg
EOF
cat > "$WORK/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian GNU/Linux ($KVER)' {
	echo 'Loading Linux $KVER ...'
	linux /boot/vmlinuz-$KVER root=UUID=$ROOT_UUID ro console=ttyS0,115200
	echo 'Loading initial ramdisk ...'
	initrd /boot/initrd.img-$KVER
}
EOF
COMMON_MODS="part_gpt part_msdos fat ext2 normal configfile linux search search_fs_uuid echo test serial terminal gzio sleep boot"
grub_efi() {
  grub-mkimage -O x86_64-efi -d "$GRUBLIB/x86_64-efi" -c "$WORK/early.cfg" -p /EFI/BOOT \
    -o "$WORK/BOOTX64.EFI" $COMMON_MODS efi_gop
}
grub_bios() {
  grub-mkimage -O i386-pc -d "$GRUBLIB/i386-pc" -c "$WORK/early.cfg" -p /EFI/BOOT \
    -o "$WORK/core.img" biosdisk $COMMON_MODS
  local core_sectors=$(( ($(stat -c %s "$WORK/core.img") + SECT - 1) / SECT ))
  [ "$core_sectors" -le "$BIOS_SIZE" ] || { echo "core.img too big" >&2; return 1; }
  le64() { local v=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (v >> (8*i)) & 255 )))"; done; }
  # core.img into the BIOS boot partition; its first sector (diskboot) must know where sector 2 is
  dd if="$WORK/core.img" of="$DISK" bs=$SECT seek=$BIOS_START conv=notrunc status=none
  le64 $((BIOS_START + 1)) | dd of="$DISK" bs=1 seek=$((BIOS_START * SECT + 500)) conv=notrunc status=none
  # boot.img: code only (440 bytes: the protective MBR's table stays), then where core.img starts
  dd if="$GRUBLIB/i386-pc/boot.img" of="$DISK" bs=440 count=1 conv=notrunc status=none
  le64 $BIOS_START | dd of="$DISK" bs=1 seek=$((0x5c)) conv=notrunc status=none
}

# ---------------------------------------------------------------- 4. ESP (FAT32) in place
mkesp() {
  mkfs.vfat -F 32 -S 512 -s 1 --invariant -i "$ESP_VOLID" -n ESP -h $ESP_START --offset=$ESP_START \
    "$DISK" $((ESP_SIZE * SECT / 1024)) > "$WORK/mkfs.vfat.log" 2>&1  # "block count mismatch" warning: expected
  local img="$DISK@@$((ESP_START * SECT))"
  mmd -i "$img" ::/EFI ::/EFI/BOOT
  mcopy -i "$img" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$img" "$WORK/grub.cfg" ::/EFI/BOOT/grub.cfg
}

# ---------------------------------------------------------------- 5. qcow2
toqcow2() {
  rm -f "$OUT/disk.qcow2"
  # QCOW2_COMPRESS=zstd: 2 GiB/742 MiB raw -> 255 MiB in ~6 s, still deterministic (zlib: 30 s)
  qemu-img convert -f raw -O qcow2 ${QCOW2_COMPRESS:+-c -o compression_type=$QCOW2_COMPRESS} "$DISK" "$OUT/disk.qcow2"
}

T0=$(date +%s.%N)
step partition partition
step mkfs.ext4    mkroot
[ "${FIXTIMES:-1}" = 1 ] && step fixtimes fixtimes
step e2fsck       fsckroot
step grub-efi     grub_efi
step grub-bios    grub_bios
step esp          mkesp
step qcow2        toqcow2
printf '%-14s %6.2f s\n' total "$(echo "$(date +%s.%N) - $T0" | bc)" | tee -a "$TIMES"
echo "raw: $(stat -c %s "$DISK") bytes apparent, $(du -k "$DISK" | cut -f1) KiB allocated; qcow2: $(du -k "$OUT/disk.qcow2" | cut -f1) KiB" | tee -a "$TIMES"
sha256sum "$DISK" "$OUT/disk.qcow2" | tee -a "$TIMES"
