import type { RuleInvoke } from '../../src/rule.js';
import { shell } from '../_lib/sh.js';

interface Options {
  mode: 'first-boot';
}

const machineId: RuleInvoke<Options> = (_options, ctx) =>
  shell(
    ctx,
    [
      `: > /tmp/machine-id`,
      `put /tmp/machine-id /etc/machine-id 0444 0:0`,
      // D-Bus reads its own copy; Debian's dbus makes it a link so the two cannot differ.
      `d=$(in_tree /var/lib/dbus/machine-id)`,
      `if [ -e "$d" ] || [ -L "$d" ] || [ -d "$(in_tree /var/lib/dbus follow)" ]; then`,
      `  link /etc/machine-id /var/lib/dbus/machine-id`,
      `fi`,
    ],
  );

export default machineId;
