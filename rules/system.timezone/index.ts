import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  timezone: string;
}

const timezone: RuleInvoke<Options> = ({ timezone: zone }, ctx) =>
  shell(
    ctx,
    [
      `z=${q(zone)}`,
      `db=$(in_tree /usr/share/zoneinfo follow)`,
      `[ -d "$db" ] || db=/usr/share/zoneinfo`,
      `if [ -d "$db" ] && [ ! -f "$db/$z" ]; then`,
      `  die "unknown timezone '$z': there is no $db/$z (see the tz database names, e.g. Etc/UTC, Europe/Berlin)"`,
      `fi`,
      `link "/usr/share/zoneinfo/$z" /etc/localtime`,
      `put ${q(`${ctx.run}/timezone`)} /etc/timezone 0644 0:0`,
    ],
    { timezone: `${zone}\n` },
  );

export default timezone;
