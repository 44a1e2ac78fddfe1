/**
 * system.locale-gen: the tree's own locale-gen compiles the asked locales, so the locale data
 * comes from the image's glibc and locales package, never from the host's.
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  locales: string[];
}

/** How `locale -a` lists a locale: the codeset lower-cased without dashes (`en_US.UTF-8` → `en_US.utf8`). */
export function normalized(name: string): string {
  const m = /^([^.@]+)(?:\.([^@]+))?(@.+)?$/.exec(name);
  if (!m) return name;
  return `${m[1]}${m[2] ? `.${m[2].toLowerCase().replace(/[^a-z0-9]/g, '')}` : ''}${m[3] ?? ''}`;
}

const localeGen: RuleInvoke<Options> = (options, ctx) => ({
  ...shell(ctx, [
    'sup=$(in_tree /usr/share/i18n/SUPPORTED follow)',
    `[ -f "$sup" ] || die "system.locale-gen: /usr/share/i18n/SUPPORTED is missing from the tree: install Debian's locales package in an earlier stage"`,
    ': > /tmp/locale.gen',
    ...options.locales.map(
      (l) =>
        `awk -v l=${q(l)} '$1 == l { print; found = 1; exit } END { exit !found }' "$sup" >> /tmp/locale.gen || die ${q(`system.locale-gen: locale ${l} is not in the tree's /usr/share/i18n/SUPPORTED (write it as that file does, e.g. en_US.UTF-8)`)}`,
    ),
    'put /tmp/locale.gen /etc/locale.gen 0644 0:0',
    'chroot . /usr/sbin/locale-gen',
    'chroot . /usr/bin/locale -a > /tmp/have',
    ...options.locales.map((l) => `grep -Fxq ${q(normalized(l))} /tmp/have || die ${q(`system.locale-gen: locale-gen did not generate ${l} (see its output above)`)}`),
  ]),
  apiFilesystems: true,
});

export default localeGen;
