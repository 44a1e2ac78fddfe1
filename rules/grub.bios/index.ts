import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell, findPartition, GRUB_MODULES, grubModulesDir, type PartitionRef } from '../_lib/disk.js';

interface Options {
  filename: string;
  partition?: PartitionRef;
  config_partition?: PartitionRef;
  config_directory: string;
  modules: string[];
}

const BIOS_BOOT = '21686148-6449-6e6f-744e-656564454649';
const ESP = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';

/** Offsets grub-bios-setup patches (grub-core/boot/i386/pc/boot.S, diskboot.S). */
const KERNEL_SECTOR = 0x5c; // boot.img: LBA of core.img's first sector (8 bytes)
const DRIVE_CHECK = 0x66; // boot.img: a 2-byte jump that hard-disk installs replace with NOPs
const BLOCKLIST_START = 0x1f4; // core.img's first sector: LBA of its second sector (8 bytes)

const grubBios: RuleInvoke<Options> = (options, ctx) => {
  const f = options.filename;
  const file = q(f);
  const find = (ref: PartitionRef | undefined, type: string) => (ref === undefined ? `find_partition ${file} type ${type}` : findPartition(f, ref));
  return diskShell(ctx, [
    ...grubModulesDir(ctx, 'i386-pc', 'grub-pc-bin'),
    `[ "$(wc -c < "$grubdir/boot.img")" -eq 512 ] || die "$grubdir/boot.img is not 512 bytes"`,
    `disk_file ${file}`,
    find(options.config_partition, ESP),
    `cfg=$PART_NR`,
    find(options.partition, BIOS_BOOT),
    `[ "$PART_TYPE" = ${BIOS_BOOT} ] || die ${q(`${f}: partition `)}"$PART_NR ($PART_NAME) is not a BIOS boot partition (its type is $PART_TYPE); core.img would overwrite it"`,
    // The config's partition on the disk GRUB booted from: "(,gptN)" leaves the drive to the BIOS.
    `grub-mkimage -O i386-pc -d "$grubdir" -p "(,gpt$cfg)"${q(options.config_directory)} -o /tmp/core.img biosdisk ${[...GRUB_MODULES, ...options.modules].join(' ')} || die 'grub-mkimage failed'`,
    `core=$(( ($(wc -c < /tmp/core.img) + SECTOR - 1) / SECTOR ))`,
    `[ "$core" -le "$PART_SECTORS" ] || die ${q(`${f}: partition `)}"$PART_NR ($PART_NAME) has $PART_SECTORS sectors; core.img needs $core"`,
    `fallocate --punch-hole --offset "$PART_OFFSET" --length $((PART_SECTORS * SECTOR)) ./${file}`,
    `dd if=/tmp/core.img of=./${file} bs=${512} seek="$PART_START" conv=notrunc status=none`,
    `le64 $((PART_START + 1)) | write_at ${file} $((PART_OFFSET + ${BLOCKLIST_START}))`,
    // boot.img's code only: bytes 440–511 of the MBR are the disk signature and partition table.
    `dd if="$grubdir/boot.img" of=./${file} bs=440 count=1 conv=notrunc status=none`,
    `le64 "$PART_START" | write_at ${file} ${KERNEL_SECTOR}`,
    `printf '\\220\\220' | write_at ${file} ${DRIVE_CHECK}`,
    `echo ${q(`${f}: `)}"core.img ($core sectors) in partition $PART_NR ($PART_NAME), grub.cfg from (,gpt$cfg)"${q(options.config_directory)}", modules from $grubdir"`,
    `disk_done ${file}`,
  ]);
};

export default grubBios;
