import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  filename: string;
  compression?: 'none' | 'gzip' | 'zstd';
}

/** Compressors whose output depends only on their input: no names, no times, fixed threading. */
const COMPRESS = {
  none: undefined,
  gzip: 'gzip -n -6',
  zstd: 'zstd -q -T1 -6',
} as const;

export function compressionFor(filename: string): keyof typeof COMPRESS {
  if (/\.(tar\.gz|tgz)$/.test(filename)) return 'gzip';
  if (/\.(tar\.zst|tzst)$/.test(filename)) return 'zstd';
  return 'none';
}

const tar: RuleInvoke<Options> = (options, ctx) => {
  const compression = options.compression ?? compressionFor(options.filename);
  const tree = ctx.inputs['tree']!.path;
  const out = q(`./${options.filename}`);
  return shell(ctx, [
    `tar -C ${q(tree)} --format=posix --sort=name --numeric-owner \\`,
    `  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \\`,
    `  --mtime=@"$SOURCE_DATE_EPOCH" --clamp-mtime --xattrs --xattrs-include='*' \\`,
    // tar runs the compressor itself (-I) and fails when it fails: dash has no pipefail.
    `  ${COMPRESS[compression] ? `-I ${q(COMPRESS[compression])} ` : ''}-cf ${out}.partial .`,
    `chmod 0644 ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
  ]);
};

export default tar;
