import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell, findPartition, type PartitionRef } from '../_lib/disk.js';

interface Options {
  filename: string;
  partition: PartitionRef;
  uuid: string;
  hash_seed?: string;
  label?: string;
  mtime: 'clamp' | 'keep';
  inode_ratio: number;
  subdir?: string;
}

/**
 * Our own mke2fs.conf: the buildroot's /etc/mke2fs.conf (absent in the sandbox, different across
 * e2fsprogs releases) must not decide the features. The usage types mke2fs picks by size (floppy,
 * small, big, huge) are defined empty so that they change nothing and print no warning.
 */
const MKE2FS_CONF = `[defaults]
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
	floppy = {
	}
	small = {
	}
	big = {
	}
	huge = {
	}
`;

/**
 * Prints debugfs commands setting atime, ctime and crtime of every used inode to $SDE. Used inodes
 * are the complement of dumpe2fs's "Free inodes:" ranges, addressed as <INO>: no path quoting.
 */
const TIMES_AWK = `
/^Inodes per group:/ { ipg = $4 }
/^First inode:/      { first = $3 }
/^Group [0-9]+:/     { g = $2 + 0 }
/^  Free inodes: / {
  split("", free)
  sub(/^  Free inodes: */, "")
  n = split($0, rs, /, */)
  for (i = 1; i <= n; i++) {
    if (rs[i] == "") continue
    m = split(rs[i], ab, "-"); a = ab[1] + 0; b = (m > 1 ? ab[2] + 0 : a)
    for (j = a; j <= b; j++) free[j] = 1
  }
  for (ino = g * ipg + 1; ino <= (g + 1) * ipg; ino++) {
    if (ino in free) continue
    if (ino < first && ino != 2) continue
    printf "sif <%d> atime @%d\\nsif <%d> ctime @%d\\nsif <%d> crtime @%d\\n", ino, sde, ino, sde, ino, sde
  }
}
`;

const ext4: RuleInvoke<Options> = (options, ctx) => {
  const file = q(options.filename);
  const src = q(`${ctx.inputs['tree']!.path}${options.subdir ?? ''}`);
  const extended = [`hash_seed=${options.hash_seed ?? options.uuid}`, 'root_owner=0:0', 'offset=$PART_OFFSET', 'nodiscard', 'lazy_itable_init=1', 'lazy_journal_init=1'];
  const where = `"${options.filename}: partition $PART_NR ($PART_NAME)"`;
  return diskShell(
    ctx,
    [
      `src=${src}`,
      `[ -d "$src" ] && [ ! -L "$src" ] || die ${q(options.subdir ? `${options.subdir} is not a directory of the tree input` : 'the tree input is not a directory')}`,
      `disk_file ${file}`,
      findPartition(options.filename, options.partition),
      `case $SOURCE_DATE_EPOCH in '' | 0) die 'SOURCE_DATE_EPOCH must be set and not 0 (e2fsprogs reads 0 as unset)' ;; esac`,
      `export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH MKE2FS_CONFIG=${q(`${ctx.run}/mke2fs.conf`)}`,
      `dev="./${options.filename}?offset=$PART_OFFSET"`,
      // Whatever the partition held before does not reach the image: lazy_itable_init leaves
      // unused inode tables as they are.
      `fallocate --punch-hole --offset "$PART_OFFSET" --length $((PART_SECTORS * SECTOR)) ./${file}`,
      `mkfs.ext4 -q -F -t ext4 -b 4096 -I 256 -i ${options.inode_ratio} ${options.label ? `-L ${q(options.label)} ` : ''}-U ${q(options.uuid)} \\`,
      `  -E ${extended.join(',')} -d "$src" ./${file} $((PART_SECTORS * SECTOR / 4096)) > /tmp/mkfs.log 2>&1 || {`,
      `  cat /tmp/mkfs.log >&2`,
      `  die ${where}": mkfs.ext4 failed; the tree may not fit the partition's $((PART_SECTORS * SECTOR / 1048576)) MiB"`,
      `}`,
      // mkfs.ext4 -d copies atime and ctime from the input and stamps crtime with the clock.
      `dumpe2fs "$dev" > /tmp/dumpe2fs.out 2>/dev/null || die ${where}": dumpe2fs cannot read the new filesystem"`,
      `awk -v sde="$SOURCE_DATE_EPOCH" ${q(TIMES_AWK)} /tmp/dumpe2fs.out > /tmp/debugfs.cmds`,
      ...(options.mtime === 'clamp'
        ? [
            `nl='`,
            `'`,
            `odd=$(cd "$src" && find . -name "*$nl*" -print -quit)`,
            `[ -z "$odd" ] || die "the tree has a file name holding a newline, which debugfs cannot name: $odd"`,
            // Paths for debugfs: quoted, a " doubled. The root itself is "" → "/".
            `(cd "$src" && find . -newermt "@$SOURCE_DATE_EPOCH" -printf '/%P\\n') > /tmp/newer || die 'listing the tree input failed'`,
            `sed -e 's/"/""/g' -e "s/.*/sif \\"&\\" mtime @$SOURCE_DATE_EPOCH/" /tmp/newer >> /tmp/debugfs.cmds`,
          ]
        : []),
      // s_kbytes_written counts what mkfs.ext4 wrote, which varies with the input's host filesystem
      // (a tmpfs copy of a Debian tree: 1 MB fewer); at 0, closing the filesystem leaves it at 0.
      `echo 'ssv kbytes_written 0' >> /tmp/debugfs.cmds`,
      `debugfs -w -f /tmp/debugfs.cmds "$dev" > /tmp/debugfs.log 2>&1 || { cat /tmp/debugfs.log >&2; die ${where}": debugfs failed"; }`,
      // debugfs echoes each command as "debugfs: ..."; anything else is an error message.
      `grep -Ev '^debugfs( [0-9.]+ \\(|: )' /tmp/debugfs.log > /tmp/debugfs.errors || true`,
      `if [ -s /tmp/debugfs.errors ]; then head -n 20 /tmp/debugfs.errors >&2; die ${where}": setting inode times failed"; fi`,
      `e2fsck -fn "$dev" > /tmp/e2fsck.log 2>&1 || { cat /tmp/e2fsck.log >&2; die ${where}": e2fsck -fn finds the new filesystem unclean"; }`,
      `echo ${where}": ext4 $(grep -m1 '^Filesystem UUID:' /tmp/dumpe2fs.out | awk '{print $3}'), $(tail -n 1 /tmp/e2fsck.log)"`,
      `disk_done ${file}`,
    ],
    { 'mke2fs.conf': MKE2FS_CONF },
  );
};

export default ext4;
