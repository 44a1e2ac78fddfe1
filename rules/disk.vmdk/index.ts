/**
 * disk.vmdk: a raw disk image as a stream-optimized VMDK, bit-reproducible.
 *
 * qemu-img makes the VMDK; two things in it would vary from run to run, and both are fixed here:
 * - the descriptor's CID (content ID) is random (`g_random_int`, written without leading zeros,
 *   so 1 to 8 digits): it is replaced by the first 8 hex digits of the sha256 of the image
 *   written with `CID=00000000`, so it is a function of the content (a VMware snapshot chain
 *   compares a child's parentCID with it). The descriptor is rewritten whole, in its place (the
 *   header's descriptor offset and size, in sectors; zeros after the text), since the new
 *   value may be longer than the random one;
 * - the descriptor names the extent file by the name qemu-img wrote, so the image is written
 *   under its final name in a scratch folder (never `NAME.partial`) and moved into place.
 * Every creation option that changes bytes is written out, so qemu-img's defaults do not decide.
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  source: string;
  filename: string;
  adapter_type: 'ide' | 'lsilogic' | 'buslogic' | 'legacyESX';
}

/**
 * `cid_of FILE CID`: sets the CID line of the VMDK's embedded descriptor. The header (a
 * `SparseExtentHeader`) holds the descriptor's offset and size in sectors at bytes 28 and 36
 * (little-endian u64); the descriptor is text padded with zeros to that size.
 */
export const SET_CID = `cid_of() {
  doff=$(od -An -t u8 -j 28 -N 8 "$1" | tr -d ' ') && dsize=$(od -An -t u8 -j 36 -N 8 "$1" | tr -d ' ') || die 'cannot read the VMDK header'
  [ "$doff" -gt 0 ] && [ "$dsize" -gt 0 ] || die "the VMDK has no embedded descriptor (offset $doff, size $dsize)"
  dd if="$1" bs=512 skip="$doff" count="$dsize" status=none | tr -d '\\000' > "$1.desc"
  grep -q '^CID=[0-9a-f]\\{1,8\\}$' "$1.desc" || die 'qemu-img wrote no CID line in the VMDK descriptor'
  sed "s/^CID=[0-9a-f]*$/CID=$2/" "$1.desc" > "$1.desc.new"
  [ "$(wc -c < "$1.desc.new")" -le $((dsize * 512)) ] || die 'the VMDK descriptor does not fit its sectors'
  truncate -s $((dsize * 512)) "$1.desc.new"
  dd if="$1.desc.new" of="$1" bs=512 seek="$doff" conv=notrunc status=none
  rm -f "$1.desc" "$1.desc.new"
}`;

const vmdk: RuleInvoke<Options> = (options, ctx) => {
  const src = `${ctx.inputs['tree']!.path}/${options.source}`;
  const opts = ['subformat=streamOptimized', `adapter_type=${options.adapter_type}`, 'hwversion=4', 'toolsversion=2147483647', 'compat6=off', 'zeroed_grain=off'].join(',');
  const name = q(options.filename);
  return shell(ctx, [
    'export TZ=UTC LC_ALL=C',
    `src=${q(src)}`,
    `[ -f "$src" ] && [ ! -L "$src" ] || die ${q(`the tree input has no ${options.source} (a raw disk image, made by disk.partition)`)}`,
    `tmp=./.disk.vmdk.partial`,
    'rm -rf "$tmp" && mkdir "$tmp"',
    `out="$tmp"/${name}`,
    `qemu-img convert -f raw -O vmdk -o ${opts} "$src" "$out" || die ${q(`qemu-img convert of ${options.source} failed`)}`,
    SET_CID,
    'cid_of "$out" 00000000',
    'cid=$(sha256sum < "$out") && cid=$(printf %.8s "$cid")',
    'cid_of "$out" "$cid"',
    'chmod 0644 "$out"',
    'touch -d "@$SOURCE_DATE_EPOCH" "$out"',
    `mv -f "$out" ./${name}`,
    'rmdir "$tmp"',
    `echo ${q(`${options.filename}: `)}"$(wc -c < ./${name}) bytes of streamOptimized VMDK (CID $cid) from $(wc -c < "$src") raw"`,
  ]);
};

export default vmdk;
