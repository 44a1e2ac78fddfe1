import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell } from '../_lib/disk.js';

interface Options {
  format: 'qcow2';
  source: string;
  filename: string;
  compression: 'none' | 'zstd' | 'zlib';
}

/** Every qcow2 creation option that changes bytes, pinned. */
const QCOW2_OPTIONS = ['compat=1.1', 'cluster_size=65536', 'refcount_bits=16', 'lazy_refcounts=off', 'extended_l2=off', 'preallocation=off'];

const convert: RuleInvoke<Options> = (options, ctx) => {
  const input = ctx.inputs['tree'];
  if (!input && options.source === options.filename) {
    throw new Error(`source and filename are both "${options.filename}": with no tree input, the converted image would replace the raw image it is made from`);
  }
  const src = input ? `${input.path}/${options.source}` : `./${options.source}`;
  const what = input ? `the tree input has no ${options.source}` : `the tree has no ${options.source}`;
  const out = q(`./${options.filename}`);
  const opts = [...QCOW2_OPTIONS, ...(options.compression === 'none' ? [] : [`compression_type=${options.compression}`])].join(',');
  return diskShell(ctx, [
    `src=${q(src)}`,
    `[ -f "$src" ] && [ ! -L "$src" ] || die ${q(`${what} (a raw disk image, made by disk.partition)`)}`,
    `rm -f ${out}.partial`,
    // No -W: clusters are written in order, so the layout does not depend on timing.
    `qemu-img convert -f raw -O ${options.format} -o ${opts}${options.compression === 'none' ? '' : ' -c'} "$src" ${out}.partial || die ${q(`qemu-img convert of ${options.source} failed`)}`,
    `chmod 0644 ${out}.partial`,
    `touch -d "@$SOURCE_DATE_EPOCH" ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
    `echo ${q(`${options.filename}: `)}"$(wc -c < ${out}) bytes of ${options.format} from $(wc -c < "$src") raw (compression ${options.compression})"`,
  ]);
};

export default convert;
