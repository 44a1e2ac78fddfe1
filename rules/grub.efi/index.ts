import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell, GRUB_MODULES, grubModulesDir } from '../_lib/disk.js';

interface Options {
  root_uuid: string;
  cmdline: string;
  kernel: string;
  initrd: string;
  directory: string;
  title: string;
  timeout: number;
  serial: boolean;
  modules: string[];
  syslinux_config?: string;
}

/** grub.cfg: the same file serves GRUB for UEFI and, through grub.bios, for BIOS. */
export function grubCfg(o: Options): string {
  const uuid = o.root_uuid.toLowerCase();
  return [
    `set timeout=${o.timeout}`,
    'set default=0',
    ...(o.serial ? ['serial --unit=0 --speed=115200', 'terminal_input serial console', 'terminal_output serial console'] : []),
    `search --no-floppy --fs-uuid --set=root ${uuid}`,
    // A syslinux config with a DEFAULT and no menu (ostree's) becomes, in GRUB's translation,
    // the default entry's linux and initrd commands run in place: they load it, `boot` boots it.
    ...(o.syslinux_config
      ? [`syslinux_source ${o.syslinux_config}`, 'boot']
      : [
          `menuentry '${o.title}' {`,
          `\tlinux ${o.kernel} root=UUID=${uuid}${o.cmdline.trim() ? ` ${o.cmdline.trim()}` : ''}`,
          `\tinitrd ${o.initrd}`,
          '}',
        ]),
    '',
  ].join('\n');
}

const grubEfi: RuleInvoke<Options> = (options, ctx) => {
  const input = ctx.inputs['tree'];
  const dir = options.directory;
  const check = (what: string, path: string): string[] => [
    `p=$(cd "$in" && in_tree ${q(path)} follow)`,
    `[ -f "$in/$p" ] || die ${q(`the tree input has no ${what} at ${path}` + (path.startsWith('/boot/') ? ` (Debian links ${path.slice(5)} at / unless /etc/kernel-img.conf has link_in_boot = yes)` : ''))}`,
  ];
  return diskShell(
    ctx,
    [
      ...grubModulesDir(ctx, 'x86_64-efi', 'grub-efi-amd64-bin'),
      ...(input && !options.syslinux_config ? [`in=${q(input.path)}`, ...check('kernel', options.kernel), ...check('initrd', options.initrd)] : []),
      // -p without a device: GRUB takes the device it was loaded from (the ESP).
      `grub-mkimage -O x86_64-efi -d "$grubdir" -p ${q(dir)} -o /tmp/BOOTX64.EFI ${[...GRUB_MODULES, 'efi_gop', ...(options.syslinux_config ? ['syslinuxcfg'] : []), ...options.modules].join(' ')} || die 'grub-mkimage failed'`,
      `put /tmp/BOOTX64.EFI ${q(`${dir}/BOOTX64.EFI`)} 0644 0:0`,
      `put ${q(`${ctx.run}/grub.cfg`)} ${q(`${dir}/grub.cfg`)} 0644 0:0`,
      `touch -d "@$SOURCE_DATE_EPOCH" "$(in_tree ${q(`${dir}/BOOTX64.EFI`)})" "$(in_tree ${q(`${dir}/grub.cfg`)})"`,
      `echo ${q(`${dir}/BOOTX64.EFI`)}": $(wc -c < "$(in_tree ${q(`${dir}/BOOTX64.EFI`)})") bytes, GRUB modules from $grubdir"`,
    ],
    { 'grub.cfg': grubCfg(options) },
  );
};

export default grubEfi;
