/**
 * system.ca-certificates: the blueprint's CA certificates into the trust store, by the tree's own
 * update-ca-certificates (so the bundle and hash links are what the image's openssl makes).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  certs: string[];
}

/** The file name of certificate `i` (0-based): imgmake-01.crt …, so sorting by name keeps their order. */
export const certFile = (i: number): string => `imgmake-${String(i + 1).padStart(2, '0')}.crt`;

const caCerts: RuleInvoke<Options> = (options, ctx) => ({
  ...shell(
    ctx,
    [
      `[ -x "$(in_tree /usr/sbin/update-ca-certificates follow)" ] || die "system.ca-certificates: /usr/sbin/update-ca-certificates is missing from the tree: install Debian's ca-certificates package in an earlier stage"`,
      'dir=$(in_tree /usr/local/share/ca-certificates follow)',
      'if [ -d "$dir" ]; then find "$dir" -maxdepth 1 -name "imgmake-*.crt" -type f -delete; fi',
      ...options.certs.map((_, i) => `put ${q(`${ctx.run}/cert-${i}`)} ${q(`/usr/local/share/ca-certificates/${certFile(i)}`)} 0644 0:0`),
      'chroot . /usr/sbin/update-ca-certificates --fresh',
      'bundle=$(in_tree /etc/ssl/certs/ca-certificates.crt follow)',
      // The second line of each PEM (its first line of base64) identifies it well enough here.
      ...options.certs.map((c, i) => `grep -Fxq ${q(c.split('\n')[1]!)} "$bundle" || die ${q(`system.ca-certificates: certificate ${i + 1} is not in /etc/ssl/certs/ca-certificates.crt after update-ca-certificates (see its output above)`)}`),
    ],
    Object.fromEntries(options.certs.map((c, i) => [`cert-${i}`, c])),
  ),
  apiFilesystems: true,
});

export default caCerts;
