import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  hostname: string;
}

const DEFAULT_HOSTS = '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n';

const hostname: RuleInvoke<Options> = ({ hostname: name }, ctx) => {
  const short = name.split('.')[0]!;
  const entry = name === short ? `127.0.1.1\t${name}` : `127.0.1.1\t${name} ${short}`;
  return shell(
    ctx,
    [
      `put ${q(`${ctx.run}/hostname`)} /etc/hostname 0644 0:0`,
      // Keep every line but an old 127.0.1.1 mapping; ours goes after the IPv4 localhost line.
      `h=$(in_tree /etc/hosts follow)`,
      `[ -f "$h" ] || h=${q(`${ctx.run}/default-hosts`)}`,
      `awk -v e=${q(entry)} '!/^127\\.0\\.1\\.1[ \t]/ { print } /^127\\.0\\.0\\.1[ \t]/ && !done { print e; done = 1 } END { if (!done) print e }' "$h" > /tmp/hosts`,
      `put /tmp/hosts /etc/hosts 0644 0:0`,
    ],
    { hostname: `${name}\n`, 'default-hosts': DEFAULT_HOSTS },
  );
};

export default hostname;
