/**
 * archive.squashfs: a tree as a squashfs image, the form a live system's root takes.
 *
 * Reproducible by options, not by luck: `-noappend` (never add to a file left in the tree),
 * `-mkfs-time` and `-all-time` (squashfs-tools 4.5 has no clamp; it reads SOURCE_DATE_EPOCH
 * itself, with a meaning that changed between versions, so it is taken out of its environment), and nothing that depends on the host: mksquashfs sorts each directory by name and
 * its parallel compressors' blocks are written in order, so the processor count does not change
 * the bytes (the rule test builds twice and compares).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  filename: string;
  compression: 'zstd' | 'xz' | 'gzip' | 'lz4';
  level: number;
  block_size: number;
}

export function compressorArgs(o: Pick<Options, 'compression' | 'level'>): string {
  switch (o.compression) {
    case 'zstd':
      return `-comp zstd -Xcompression-level ${o.level}`;
    case 'gzip':
      return `-comp gzip -Xcompression-level ${Math.min(o.level, 9)}`;
    case 'xz':
      return '-comp xz';
    case 'lz4':
      return '-comp lz4';
  }
}

const squashfs: RuleInvoke<Options> = (options, ctx) => {
  const tree = ctx.inputs['tree']!.path;
  const out = q(`./${options.filename}`);
  return shell(ctx, [
    `command -v mksquashfs > /dev/null || die 'the buildroot has no mksquashfs: install squashfs-tools in it'`,
    `[ -d ${q(tree)} ] || die 'the tree input is not a directory'`,
    `rm -f ${out}.partial`,
    // Explicit times: squashfs-tools 4.5 refuses SOURCE_DATE_EPOCH beside them, and what it
    // does with it alone changed between versions.
    `env -u SOURCE_DATE_EPOCH mksquashfs ${q(tree)} ${out}.partial -noappend -no-progress -quiet ${compressorArgs(options)} -b ${options.block_size}K \\`,
    `  -mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" > /tmp/mksquashfs.log 2>&1 || { cat /tmp/mksquashfs.log >&2; die ${q(`mksquashfs failed making ${options.filename}`)}; }`,
    `chmod 0644 ${out}.partial`,
    `touch --date="@$SOURCE_DATE_EPOCH" ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
    `echo ${q(`${options.filename}: `)}"$(wc -c < ${out}) bytes, ${options.compression}"`,
  ]);
};

export default squashfs;
