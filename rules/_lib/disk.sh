# imgmake rules: helpers for the rules that act on a disk image file in the tree (disk.*, grub.*,
# disk.convert). Sourced after prelude.sh (see disk.ts). POSIX sh: dash has no pipefail, so no
# helper pipes a command whose failure matters.
export TZ=UTC LC_ALL=C

SECTOR=512

# disk_file FILE: dies unless FILE is a disk image (a regular file) at the top of the tree.
disk_file() {
  [ -f "./$1" ] && [ ! -L "./$1" ] || die "$1: no such disk image in the tree; make it with a disk.partition stage first"
}

# find_partition FILE BY VALUE: the partition of disk image FILE whose number (BY=nr), GPT name
# (BY=name) or type GUID (BY=type) is VALUE; sets PART_NR, PART_START and PART_SECTORS (in 512-byte
# sectors), PART_OFFSET (bytes), PART_NAME, PART_TYPE and PART_UUID. Dies naming the partitions
# the disk has when none matches.
find_partition() {
  _list=$(partx -g -P -o NR,START,SECTORS,NAME,TYPE,UUID "./$1" 2>&1) || die "$1: no partition table ($_list)"
  _want=$3
  [ "$2" != type ] || _want=$(printf '%s' "$3" | tr 'A-Z' 'a-z')
  PART_NR=
  _have=
  while IFS= read -r _line; do
    [ -n "$_line" ] || continue
    # partx -P prints shell-safe KEY="VALUE" pairs ($, `, " and \ escaped as \xNN).
    eval "$_line"
    _have="$_have ${NR}:${NAME}"
    case $2 in
      nr) [ "$NR" = "$_want" ] || continue ;;
      name) [ "$NAME" = "$_want" ] || continue ;;
      type) [ "$TYPE" = "$_want" ] || continue ;;
    esac
    PART_NR=$NR PART_START=$START PART_SECTORS=$SECTORS PART_NAME=$NAME PART_TYPE=$TYPE PART_UUID=$UUID
    break
  done <<EOF_PARTX
$_list
EOF_PARTX
  [ -n "$PART_NR" ] || die "$1: no partition with $2 $3; the disk has (number:name)${_have:- nothing}"
  PART_OFFSET=$((PART_START * SECTOR))
}

# le64 N: N as 8 little-endian bytes on stdout (dash's printf has octal escapes, not \x).
le64() {
  _v=$1
  for _i in 0 1 2 3 4 5 6 7; do
    printf "\\$(printf %03o $((_v & 255)))"
    _v=$((_v >> 8))
  done
}

# write_at FILE OFFSET: writes stdin over FILE at byte OFFSET, in place.
write_at() {
  dd of="./$1" bs=1 seek="$2" conv=notrunc status=none
}

# disk_done FILE: the disk image's mode and mtime, as every disk rule leaves them.
disk_done() {
  chmod 0644 "./$1"
  touch -d "@$SOURCE_DATE_EPOCH" "./$1"
}
