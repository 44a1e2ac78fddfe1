/**
 * disk.gce: a raw disk as GCE imports it, `disk.raw` alone in a GNU-format tar.gz.
 *
 * Deterministic by construction: one entry whose header holds only what is fixed here (name,
 * 0:0, 0644, SOURCE_DATE_EPOCH; GNU tar writes atime/ctime into a GNU header only for
 * incremental dumps), a sparse map found by reading zeros (`--hole-detection=raw`: the same
 * bytes give the same map whatever holes the cache's filesystem kept) and `gzip -n` (no name, no
 * time). A disk with no hole at all (a copy wrote it out in full) is copied sparse first:
 * tar stores a file without holes as a plain one. gzip is single-threaded: the archive is made once per disk and read by GCE, so the
 * format's compatibility wins over speed (pigz would be faster, and is not in every buildroot).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  source: string;
  filename: string;
}

const gce: RuleInvoke<Options> = (options, ctx) => {
  const dir = ctx.inputs['tree']!.path;
  const out = q(`./${options.filename}`);
  return shell(ctx, [
    'export TZ=UTC LC_ALL=C',
    `src=${q(`${dir}/${options.source}`)}`,
    `[ -f "$src" ] && [ ! -L "$src" ] || die ${q(`the tree input has no ${options.source} (a raw disk image, made by disk.partition)`)}`,
    `rm -rf ${out}.partial ./.disk.gce.partial`,
    // tar stores a file sparse only when it has holes: a disk whose holes were lost (written
    // out in full by a copy) is made sparse again first, so the map is the same either way.
    `from=${q(dir)} name=${q(options.source)}`,
    'if [ "$(( $(stat -c %b "$src") * $(stat -c %B "$src") ))" -ge "$(stat -c %s "$src")" ]; then',
    '  mkdir ./.disk.gce.partial && cp --sparse=always "$src" ./.disk.gce.partial/disk.raw || die \'making a sparse copy of the disk failed\'',
    '  from=./.disk.gce.partial name=disk.raw',
    'fi',
    `tar -C "$from" --format=oldgnu --sparse --hole-detection=raw --owner=0 --group=0 --numeric-owner --mode=0644 \\`,
    `  --mtime=@"$SOURCE_DATE_EPOCH" --transform='s,.*,disk.raw,' -I 'gzip -n -6' -cf ${out}.partial "$name" || die 'tar of the disk failed'`,
    'rm -rf ./.disk.gce.partial',
    `chmod 0644 ${out}.partial`,
    `touch -d "@$SOURCE_DATE_EPOCH" ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
    `echo ${q(`${options.filename}: `)}"$(wc -c < ${out}) bytes, disk.raw of $(wc -c < "$src") bytes"`,
  ]);
};

export default gce;
