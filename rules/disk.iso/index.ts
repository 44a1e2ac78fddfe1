/**
 * disk.iso: a live ISO, GRUB for both firmwares, assembled by xorriso.
 *
 *     /boot/grub/bios.img   El Torito BIOS entry: cdboot.img + core.img (i386-pc-eltorito)
 *     /boot/grub/efi.img    El Torito EFI entry: FAT with EFI/BOOT/BOOTX64.EFI
 *     /boot/grub/grub.cfg   one menu for both
 *     /live/vmlinuz, /live/initrd.img, SQUASHFS_PATH
 *
 * Not grub-mkrescue: it picks modules, fonts and themes from the host and makes a FAT image with
 * the current time; the two grub-mkimage calls here build every module in (nothing is loaded from
 * the ISO, as with grub.efi and grub.bios) and the FAT image is mkfs.vfat --invariant plus mtools,
 * which stamp SOURCE_DATE_EPOCH. Each core's embedded config finds the ISO by its volume id: the
 * EFI one starts on the FAT image, not on the ISO. xorriso reads SOURCE_DATE_EPOCH for its
 * volume dates and file times. Files are grafted from the inputs (no copy of the squashfs in /tmp).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell, GRUB_MODULES, grubModulesDir } from '../_lib/disk.js';

interface Options {
  filename: string;
  volume_id: string;
  squashfs: string;
  squashfs_path: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  title: string;
  timeout: number;
  serial: boolean;
}

/** The config built into both cores: find the ISO, read its grub.cfg. */
export function embeddedCfg(o: Pick<Options, 'volume_id'>): string {
  return [`search --no-floppy --label --set=root ${o.volume_id}`, 'set prefix=($root)/boot/grub', ''].join('\n');
}

/** /boot/grub/grub.cfg on the ISO. */
export function grubCfg(o: Options): string {
  return [
    `set timeout=${o.timeout}`,
    'set default=0',
    ...(o.serial ? ['serial --unit=0 --speed=115200', 'terminal_input serial console', 'terminal_output serial console'] : []),
    `menuentry '${o.title}' {`,
    `\tlinux /live/vmlinuz${o.cmdline.trim() ? ` ${o.cmdline.trim()}` : ''}`,
    '\tinitrd /live/initrd.img',
    '}',
    '',
  ].join('\n');
}

const ISO_MODULES = ['iso9660', 'search_label'];

const diskIso: RuleInvoke<Options> = (options, ctx) => {
  const tree = ctx.inputs['tree']!.path;
  const sq = ctx.inputs['squashfs']!.path;
  const out = q(`./${options.filename}`);
  const check = (what: string, path: string, v: string): string[] => [
    `${v}=$(cd "$in" && in_tree ${q(path)} follow)`,
    `[ -f "$in/$${v}" ] || die ${q(`the tree input has no ${what} at ${path}`)}`,
    `${v}="$in/\${${v}#./}"`,
  ];
  return diskShell(
    ctx,
    [
      `command -v xorriso > /dev/null || die 'the buildroot has no xorriso: install xorriso in it'`,
      `in=${q(tree)}`,
      ...check('kernel', options.kernel, 'kernel'),
      ...check('initrd', options.initrd, 'initrd'),
      `sq=${q(`${sq}/${options.squashfs}`)}`,
      `[ -f "$sq" ] || die ${q(`the squashfs input has no ${options.squashfs}`)}`,
      ...grubModulesDir(ctx, 'i386-pc', 'grub-pc-bin'),
      'pcdir=$grubdir',
      ...grubModulesDir(ctx, 'x86_64-efi', 'grub-efi-amd64-bin'),
      'efidir=$grubdir',
      'mkdir -p /tmp/iso/boot/grub /tmp/efi',
      `grub-mkimage -O i386-pc-eltorito -d "$pcdir" -c ${q(`${ctx.run}/embedded.cfg`)} -p /boot/grub -o /tmp/iso/boot/grub/bios.img biosdisk ${[...GRUB_MODULES, ...ISO_MODULES].join(' ')} || die 'grub-mkimage (i386-pc-eltorito) failed'`,
      `grub-mkimage -O x86_64-efi -d "$efidir" -c ${q(`${ctx.run}/embedded.cfg`)} -p /boot/grub -o /tmp/efi/BOOTX64.EFI ${[...GRUB_MODULES, ...ISO_MODULES, 'efi_gop'].join(' ')} || die 'grub-mkimage (x86_64-efi) failed'`,
      // The FAT image: BOOTX64.EFI and room for FAT12's tables and directories, in KiB.
      'kib=$(( ($(wc -c < /tmp/efi/BOOTX64.EFI) + 1023) / 1024 + 128 ))',
      'export MTOOLS_SKIP_CHECK=1',
      'mkfs.vfat -C --invariant -i 494D474B -n EFIBOOT /tmp/iso/boot/grub/efi.img "$kib" > /tmp/mkfs.log 2>&1 || { cat /tmp/mkfs.log >&2; die "mkfs.vfat failed"; }',
      'mmd -i /tmp/iso/boot/grub/efi.img ::/EFI ::/EFI/BOOT',
      'mcopy -i /tmp/iso/boot/grub/efi.img /tmp/efi/BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI || die "mcopy of BOOTX64.EFI failed"',
      `cp ${q(`${ctx.run}/grub.cfg`)} /tmp/iso/boot/grub/grub.cfg`,
      'chmod 0644 /tmp/iso/boot/grub/*',
      'find /tmp/iso -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +',
      `rm -f ${out}.partial`,
      // -as mkisofs: the graft points (ISO path=file) put the inputs' files in without a copy.
      `xorriso -as mkisofs -quiet -o ${out}.partial -V ${options.volume_id} -iso-level 3 -R -graft-points \\`,
      '  -b boot/grub/bios.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \\',
      '  -eltorito-alt-boot -e boot/grub/efi.img -no-emul-boot \\',
      `  /boot/grub=/tmp/iso/boot/grub /live/vmlinuz="$kernel" /live/initrd.img="$initrd" ${q(options.squashfs_path)}="$sq" \\`,
      `  > /tmp/xorriso.log 2>&1 || { cat /tmp/xorriso.log >&2; die ${q(`xorriso failed making ${options.filename}`)}; }`,
      `chmod 0644 ${out}.partial`,
      `touch --date="@$SOURCE_DATE_EPOCH" ${out}.partial`,
      `mv -f ${out}.partial ${out}`,
      `echo ${q(`${options.filename}: `)}"$(wc -c < ${out}) bytes, volume ${options.volume_id}, El Torito BIOS and UEFI (GRUB from $pcdir and $efidir)"`,
    ],
    { 'embedded.cfg': embeddedCfg(options), 'grub.cfg': grubCfg(options) },
  );
};

export default diskIso;
