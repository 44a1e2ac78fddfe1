import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  cmdline: string[];
}

const kernelCmdline: RuleInvoke<Options> = ({ cmdline }, ctx) => {
  // The schema keeps quotes, spaces and $ out, so the line needs no escaping for GRUB's shell.
  const line = cmdline.join(' ');
  return shell(
    ctx,
    [
      `put ${q(`${ctx.run}/cmdline`)} /etc/kernel/cmdline 0644 0:0`,
      `put ${q(`${ctx.run}/grub.cfg`)} /etc/default/grub.d/imgmake.cfg 0644 0:0`,
    ],
    {
      cmdline: `${line}\n`,
      'grub.cfg': `# Written by imgmake (system.kernel-cmdline); /etc/kernel/cmdline holds the same arguments.\nGRUB_CMDLINE_LINUX="${line}"\n`,
    },
  );
};

export default kernelCmdline;
