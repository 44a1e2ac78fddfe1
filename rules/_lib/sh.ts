/**
 * What the built-in rules share: shell quoting and a POSIX-sh prelude whose functions act on
 * the tree the way a chroot would see it.
 *
 * Every rule's command runs with the tree as its working directory, on the buildroot's `/bin/sh`
 * (the host's, or dash in a Debian buildroot), so the prelude sticks to POSIX sh and coreutils.
 *
 * Paths in options are absolute paths *in the image* (`/etc/motd`). A symlink on the way there
 * is resolved against the tree, never against the sandbox's own `/`: `/var/run -> /run` in the
 * tree leads to the tree's `run/`. The last component is replaced, not followed, when a file or
 * link is written: writing `/etc/resolv.conf` over a symlink leaves a file, as `install` would.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleContext, RuleInvocation } from '../../src/rule.js';

/** Quotes a string for POSIX sh: `it's` → `'it'\''s'`. */
export function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `prelude.sh`, read from the source folder (the compiled module lives in dist/). */
export const PRELUDE = readFileSync(fileURLToPath(new URL('../../../rules/_lib/prelude.sh', import.meta.url)), 'utf8');

/** A script: the prelude, then `body`. */
export function script(body: string[]): string {
  return `${PRELUDE}\n${body.join('\n')}\n`;
}

/** The usual invocation: `/bin/sh` running the prelude and `body`, written to the run directory. */
export function shell(ctx: RuleContext, body: string[], files: Record<string, string> = {}): RuleInvocation {
  return { argv: ['/bin/sh', `${ctx.run}/script.sh`], files: { ...files, 'script.sh': script(body) } };
}
