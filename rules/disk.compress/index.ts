/**
 * disk.compress: a raw disk image as `.xz` or `.zst`, bit-reproducible and multi-threaded.
 *
 * Both tools are deterministic only in a given mode:
 * - xz's single-threaded (-T1) and multi-threaded output differ, and multi-threaded output
 *   depends on the block size (default: from the level), not on the thread count. `-T0` is the
 *   multi-threaded mode even on one core (xz >= 5.4; 5.2 fell back to single-threaded there, so
 *   the buildroot's xz must be 5.4, Debian 12's), and `--block-size` is written out.
 * - zstd's multi-threaded frames (-T0, -T1, -T8…) are the same for any number of workers;
 *   `--single-thread` would differ, and `--adapt`/`--rsyncable` are never used.
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  compression: 'xz' | 'zstd';
  level?: number;
  source: string;
  filename?: string;
}

export const DEFAULT_LEVEL = { xz: 6, zstd: 10 } as const;
/** xz's own default block size at -6 (three times its 8 MiB dictionary), pinned. */
export const XZ_BLOCK_SIZE = '24MiB';

/** The compressor's command line (reads "$src", writes stdout). */
export function command(compression: Options['compression'], level: number): string {
  if (compression === 'xz') {
    if (level > 9) throw new Error(`xz has levels 1 to 9, not ${level}`);
    return `xz -${level} -T0 --block-size=${XZ_BLOCK_SIZE} --check=crc64 -q -c "$src"`;
  }
  return `zstd -${level} -T0 -q --no-progress -c "$src"`;
}

const compress: RuleInvoke<Options> = (options, ctx) => {
  const level = options.level ?? DEFAULT_LEVEL[options.compression];
  const filename = options.filename ?? `${options.source}.${options.compression === 'xz' ? 'xz' : 'zst'}`;
  const out = q(`./${filename}`);
  return shell(ctx, [
    'export TZ=UTC LC_ALL=C',
    `src=${q(`${ctx.inputs['tree']!.path}/${options.source}`)}`,
    `[ -f "$src" ] && [ ! -L "$src" ] || die ${q(`the tree input has no ${options.source}`)}`,
    `rm -f ${out}.partial`,
    `${command(options.compression, level)} > ${out}.partial || die ${q(`${options.compression} of ${options.source} failed`)}`,
    `chmod 0644 ${out}.partial`,
    `touch -d "@$SOURCE_DATE_EPOCH" ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
    `echo ${q(`${filename}: `)}"$(wc -c < ${out}) bytes from $(wc -c < "$src") (${options.compression} -${level})"`,
  ]);
};

export default compress;
