import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell, findPartition, type PartitionRef } from '../_lib/disk.js';

interface Options {
  filename: string;
  partition: PartitionRef;
  volume_id: string;
  label?: string;
  fat_size: 12 | 16 | 32;
}

/** FAT32 below 65,525 clusters is read as FAT16 (mtools, firmware); keep a margin for the FATs. */
const FAT32_MIN_CLUSTERS = 66_000;

const vfat: RuleInvoke<Options> = (options, ctx) => {
  const file = q(options.filename);
  const where = `"${options.filename}: partition $PART_NR ($PART_NAME)"`;
  const clusters =
    options.fat_size === 32
      ? [
          // The largest cluster of 8, 4, 2 or 1 sectors that leaves FAT32 enough clusters.
          `spc=`,
          `for s in 8 4 2 1; do [ $((PART_SECTORS / s)) -lt ${FAT32_MIN_CLUSTERS} ] || { spc=$s; break; }; done`,
          `[ -n "$spc" ] || die ${where}": $((PART_SECTORS * SECTOR / 1048576)) MiB is too small for FAT32 (at least 33 MiB); use fat_size 16"`,
          `cluster="-s $spc"`,
        ]
      : [`cluster=`];
  return diskShell(ctx, [
    `src=${q(ctx.inputs['tree']!.path)}`,
    `[ -d "$src" ] || die 'the tree input is not a directory'`,
    `disk_file ${file}`,
    findPartition(options.filename, options.partition),
    `export MTOOLS_SKIP_CHECK=1`,
    // What FAT cannot hold fails here, before anything is written.
    `top=$PWD`,
    `cd "$src"`,
    `nl='`,
    `'`,
    `find . -mindepth 1 ! -type f ! -type d -print > /tmp/special || die 'listing the tree input failed'`,
    `[ ! -s /tmp/special ] || die "FAT holds only files and directories, not the symlink or special file /$(head -n 1 /tmp/special | cut -c3-)"`,
    `find . -mindepth 1 \\( -name "*$nl*" -o -name '*[*?"<>|:\\\\]*' \\) -print > /tmp/bad`,
    `[ ! -s /tmp/bad ] || die "FAT cannot hold the name /$(head -n 1 /tmp/bad | cut -c3-) (a newline or one of * ? \\" < > | : \\\\)"`,
    `find . -mindepth 1 -type d -printf '%P\\n' > /tmp/dirs.u && sort /tmp/dirs.u > /tmp/dirs`,
    `find . -mindepth 1 -type f -printf '%P\\n' > /tmp/files.u && sort /tmp/files.u > /tmp/files`,
    `sort -f /tmp/dirs /tmp/files | uniq -di > /tmp/clash`,
    `[ ! -s /tmp/clash ] || die "FAT names ignore case; the tree has two names for /$(head -n 1 /tmp/clash)"`,
    `cd "$top"`,
    `fallocate --punch-hole --offset "$PART_OFFSET" --length $((PART_SECTORS * SECTOR)) ./${file}`,
    ...clusters,
    `mkfs.vfat -F ${options.fat_size} -S 512 $cluster --invariant -i ${options.volume_id.toUpperCase()} ${options.label ? `-n ${q(options.label)} ` : ''}-h "$PART_START" --offset="$PART_START" \\`,
    // mkfs.vfat's size is in KiB; it warns that the file is larger than that ("block count mismatch").
    `  ./${file} $((PART_SECTORS * SECTOR / 1024)) > /tmp/mkfs.log 2>&1 || { cat /tmp/mkfs.log >&2; die ${where}": mkfs.vfat failed"; }`,
    `img="./${options.filename}@@$PART_OFFSET"`,
    // Sorted, one entry at a time: directory order and cluster allocation depend only on the
    // names; mtools stamps every entry with SOURCE_DATE_EPOCH.
    `while IFS= read -r d; do mmd -i "$img" "::/$d" || die ${where}": cannot make directory /$d"; done < /tmp/dirs`,
    `while IFS= read -r f; do mcopy -i "$img" "$src/$f" "::/$f" || die ${where}": cannot copy /$f (is the partition full?)"; done < /tmp/files`,
    `echo ${where}": FAT${options.fat_size}, volume ID ${options.volume_id.toUpperCase()}, $(wc -l < /tmp/dirs) directories and $(wc -l < /tmp/files) files"`,
    `disk_done ${file}`,
  ]);
};

export default vfat;
