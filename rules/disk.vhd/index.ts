/**
 * disk.vhd: a raw disk image as Azure's fixed-size VHD, bit-reproducible.
 *
 * A fixed VHD is the disk's bytes followed by a 512-byte footer (big-endian fields; offsets from
 * the VHD specification): timestamp at 24 (seconds since 2000-01-01 UTC), disk type at 60 (2 =
 * fixed), checksum at 64 (the ones' complement of the byte sum of the footer with the checksum
 * zeroed), unique ID at 68. qemu-img fills the timestamp with the time and the ID at random; the
 * footer is rewritten here with SOURCE_DATE_EPOCH and the `uuid` option (perl, which every Debian
 * has: perl-base is Essential).
 *
 * Azure wants the virtual size a whole number of MiB: the VHD is created at the rounded-up size
 * (`force_size`: exactly that size, not qemu-img's CHS rounding) and the raw converted into it
 * (`-n --target-is-zero`: the new file reads as zeros, so holes are not written).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  source: string;
  filename: string;
  uuid: string;
}

/** Seconds from the Unix epoch to the VHD epoch, 2000-01-01T00:00:00Z. */
export const VHD_EPOCH = 946684800;

/** Rewrites the footer of the file ARGV[0]: timestamp ARGV[1], unique ID ARGV[2] (32 hex digits), checksum. */
const FOOTER_PL = [
  'my ($file, $ts, $id) = @ARGV;',
  'open(my $f, "+<", $file) or die "$file: $!\\n"; binmode $f;',
  'seek($f, -512, 2) or die "$file: $!\\n"; read($f, my $ft, 512) == 512 or die "$file: short\\n";',
  'substr($ft, 0, 8) eq "conectix" or die "$file: no VHD footer\\n";',
  'unpack("N", substr($ft, 60, 4)) == 2 or die "$file: not a fixed VHD\\n";',
  'substr($ft, 24, 4) = pack("N", $ts); substr($ft, 68, 16) = pack("H32", $id); substr($ft, 64, 4) = "\\0" x 4;',
  'my $sum = 0; $sum += $_ for unpack("C*", $ft);',
  'substr($ft, 64, 4) = pack("N", ~$sum & 0xffffffff);',
  'seek($f, -512, 2) or die; print $f $ft or die; close($f) or die "$file: $!\\n";',
].join(' ');

const vhd: RuleInvoke<Options> = (options, ctx) => {
  const src = `${ctx.inputs['tree']!.path}/${options.source}`;
  const out = q(`./${options.filename}`);
  const id = options.uuid.replaceAll('-', '').toLowerCase();
  return shell(ctx, [
    'export TZ=UTC LC_ALL=C',
    `src=${q(src)}`,
    `[ -f "$src" ] && [ ! -L "$src" ] || die ${q(`the tree input has no ${options.source} (a raw disk image, made by disk.partition)`)}`,
    'size=$(stat -c %s "$src") && mib=1048576',
    'aligned=$(( (size + mib - 1) / mib * mib ))',
    `ts=$(( SOURCE_DATE_EPOCH - ${VHD_EPOCH} )) && [ "$ts" -ge 0 ] || ts=0`,
    `rm -f ${out}.partial`,
    `qemu-img create -q -f vpc -o subformat=fixed,force_size=on ${out}.partial "$aligned" || die 'qemu-img create of the VHD failed'`,
    `qemu-img convert -n --target-is-zero -f raw -O vpc "$src" ${out}.partial || die ${q(`qemu-img convert of ${options.source} failed`)}`,
    `perl -e ${q(FOOTER_PL)} ${out}.partial "$ts" ${q(id)} || die 'rewriting the VHD footer failed'`,
    `chmod 0644 ${out}.partial`,
    `touch -d "@$SOURCE_DATE_EPOCH" ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
    `echo ${q(`${options.filename}: fixed VHD, virtual size `)}"$aligned bytes (the raw's $size rounded up to a MiB)"`,
  ]);
};

export default vhd;
