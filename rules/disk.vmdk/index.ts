/**
 * disk.vmdk: a raw disk image as a stream-optimized VMDK, bit-reproducible.
 *
 * qemu-img makes the VMDK; two things in it would vary from run to run, and both are fixed here:
 * - the descriptor's CID (content ID) is random (`g_random_int`): it is replaced by the
 *   first 8 hex digits of the sha256 of the image written with `CID=00000000`, so it is a
 *   function of the content (a VMware snapshot chain compares a child's parentCID with it);
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
    // The descriptor starts in the second sector; its "CID=" line is the first of its kind.
    `at=$(head -c 65536 "$out" | grep -abo -m1 '^CID=[0-9a-f]\\{8\\}') || die 'qemu-img wrote no CID line in the VMDK descriptor'`,
    'at=$((${at%%:*} + 4))',
    'setcid() { printf %s "$1" | dd of="$out" bs=1 seek="$at" conv=notrunc status=none; }',
    'setcid 00000000',
    'cid=$(sha256sum < "$out") && cid=$(printf %.8s "$cid")',
    'setcid "$cid"',
    'chmod 0644 "$out"',
    'touch -d "@$SOURCE_DATE_EPOCH" "$out"',
    `mv -f "$out" ./${name}`,
    'rmdir "$tmp"',
    `echo ${q(`${options.filename}: `)}"$(wc -c < ./${name}) bytes of streamOptimized VMDK (CID $cid) from $(wc -c < "$src") raw"`,
  ]);
};

export default vmdk;
