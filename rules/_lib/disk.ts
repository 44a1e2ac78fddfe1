/**
 * What the disk rules share (disk.partition, disk.ext4, disk.vfat, grub.efi, grub.bios,
 * disk.convert): `disk.sh`'s shell helpers after the prelude, the way a partition is named in
 * options, and sizes.
 *
 * A disk image is a file at the top of a tree (`disk.raw`). disk.partition makes it; later stages
 * of the same pipeline write filesystems and boot code into its partitions in place, finding them
 * in the partition table at run time (the tree is the only channel between stages).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleContext, RuleInvocation } from '../../src/rule.js';
import { parseSize as parseSizeText } from './size.js';
import { q, shell } from './sh.js';

/** `disk.sh`, read from the source folder (the compiled module lives in dist/). */
export const DISK_SH = readFileSync(fileURLToPath(new URL('../../../rules/_lib/disk.sh', import.meta.url)), 'utf8');

/** `shell()` with `disk.sh` sourced after the prelude. */
export function diskShell(ctx: RuleContext, body: string[], files: Record<string, string> = {}): RuleInvocation {
  return shell(ctx, [DISK_SH, ...body], files);
}

/** A partition as options name it: its number (1-based), or its GPT name. */
export type PartitionRef = number | string;

/** The `find_partition FILE BY VALUE` call that sets PART_* for `ref`. */
export function findPartition(filename: string, ref: PartitionRef): string {
  return typeof ref === 'number' ? `find_partition ${q(filename)} nr ${ref}` : `find_partition ${q(filename)} name ${q(ref)}`;
}

/** Bytes of a size option: `"4G"` → 4294967296, `"512"` → 512 (the grammar of size.ts, powers of 1024). */
export function parseSize(s: string): number {
  const n = parseSizeText(s);
  if (n === undefined) throw new Error(`Internal error: size ${JSON.stringify(s)} passed the schema`);
  return n;
}

/**
 * GRUB modules built into every image grub.efi and grub.bios make: GPT and MBR tables, FAT and
 * ext2/3/4, Linux, search by UUID, the menu, and the serial console. Nothing is loaded at boot:
 * the ESP holds no module directory.
 */
export const GRUB_MODULES = [
  'part_gpt', 'part_msdos', 'fat', 'ext2', 'normal', 'configfile', 'linux', 'search', 'search_fs_uuid',
  'echo', 'test', 'serial', 'terminal', 'gzio', 'sleep', 'boot',
];

/**
 * Shell lines setting `grubdir` to GRUB's module directory for `platform` (x86_64-efi, i386-pc):
 * the `tree` input's /usr/lib/grub/PLATFORM (resolved inside the input, as a chroot would), or
 * the buildroot's when the stage has no such input.
 */
export function grubModulesDir(ctx: RuleContext, platform: string, pkg: string): string[] {
  const input = ctx.inputs['tree'];
  const where = input ? 'the tree input' : 'the buildroot';
  return [
    ...(input
      ? [`grubdir=$(cd ${q(input.path)} && in_tree /usr/lib/grub/${platform} follow)`, `grubdir=${q(input.path)}/\${grubdir#./}`]
      : [`grubdir=/usr/lib/grub/${platform}`]),
    `[ -f "$grubdir/moddep.lst" ] || die ${q(`${where} has no GRUB modules in /usr/lib/grub/${platform}: install ${pkg} in it`)}`,
  ];
}
