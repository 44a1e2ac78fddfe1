/**
 * Semantic rules of a decoded blueprint: names that the system would refuse (users, units,
 * hostnames), composer's path policies, sizes and ports that mean nothing, and names given twice.
 * Everything here is pure and local to the blueprint: it does not know image types (support.ts)
 * or which packages exist (the package layer, at lock time).
 */
import { diagnostic, type Diagnostic, type Loc } from '../diagnostic.js';
import { listOf } from '../load/suggest.js';
import { allowedUnder, checkPath, DIRECTORIES_POLICY, FILES_POLICY, MOUNTPOINT_POLICY, type Policy } from './policy.js';
import type { Blueprint, Pos } from './types.js';

/** Blueprint names (composer's API): letters, digits, `.`, `_`, `-`. */
export const BLUEPRINT_NAME = /^[A-Za-z0-9._-]+$/;
/** Package names as dnf and apt both accept them; `*` and `?` are globs. */
export const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._*?-]*$/;
/** Users and groups: useradd's default NAME_REGEX, at most 32 characters. */
export const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]*\$?$/;
export const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
/** One DNS label; a hostname is up to 253 characters of labels joined by dots. */
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** systemd unit names: a name, an optional `@instance`, an optional unit suffix (without one, `.service` is meant, as systemctl does). */
export const UNIT_NAME = /^[A-Za-z0-9:_\\-][A-Za-z0-9:_.\\-]*(@[A-Za-z0-9:_.\\-]*)?$/;
const UNIT_SUFFIX = /\.(service|socket|timer|target|path|mount|automount|swap|slice|device|scope)$/;
export const TIMEZONE = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;
export const LANGUAGE = /^(C|POSIX|C\.UTF-8|C\.utf8|[a-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@[a-z]+)?)$/;
export const KEYMAP = /^[A-Za-z0-9_.-]+$/;
const SSH_KEY_TYPE = /(^|\s)(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+[A-Za-z0-9+/]+=*(\s|$)/;
const PERMIT_ROOT_LOGIN = ['yes', 'no', 'prohibit-password', 'without-password', 'forced-commands-only'];
const FIRSTBOOT_TYPES = ['custom', 'satellite', 'aap'];

/**
 * crypt(3) hashes composer accepts as already hashed: `$1$` (MD5), `$2b$` (bcrypt), `$5$`, `$6$`
 * (SHA-2), `$y$` (yescrypt), `$7$`, `$gy$`. Anything else is a plain-text password, which the
 * mapping hashes (reproducibly) before it reaches the image.
 */
export function isCryptHash(password: string): boolean {
  return /^\$(1|2[abxy]?|5|6|7|y|gy)\$[^\s:]+$/.test(password);
}

/**
 * `22:tcp`, `8000-8080:udp`, `https:tcp` → its parts, or a reason it is not a port.
 * Protocols: tcp, udp, sctp, dccp (firewalld's).
 */
export function parsePort(s: string): { ok: true; from: number | string; to: number | string; protocol: string } | { ok: false; why: string } {
  const m = /^([^:]+):(tcp|udp|sctp|dccp)$/.exec(s);
  if (!m) return { ok: false, why: 'a port is written PORT:PROTOCOL, with protocol tcp, udp, sctp or dccp: "22:tcp", "8000-8080:udp"' };
  const spec = m[1]!;
  const range = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (range) {
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    if (from < 1 || to > 65535 || from > to) return { ok: false, why: 'ports are 1 to 65535, and a range is written LOW-HIGH' };
    return { ok: true, from, to, protocol: m[2]! };
  }
  if (/^[a-z][a-z0-9-]*$/.test(spec)) return { ok: true, from: spec, to: spec, protocol: m[2]! };
  return { ok: false, why: 'the port must be a number, a range LOW-HIGH or a service name from /etc/services' };
}

export function checkBlueprint(bp: Blueprint): Diagnostic[] {
  const d: Diagnostic[] = [];
  const bad = (reason: Diagnostic['reason'], message: string, loc: Loc, hint: string) => d.push(diagnostic(reason, message, loc, hint));
  const pattern = (p: Pos<string> | undefined, re: RegExp, what: string, hint: string) => {
    if (p && !re.test(p.value)) bad('invalid-value', `${what} ${JSON.stringify(p.value)} is not valid`, p.loc, hint);
  };
  const unique = <T extends { loc: Loc }>(items: readonly T[], name: (t: T) => Pos<string | number> | undefined, what: string, hint: string) => {
    const seen = new Map<string, Loc>();
    for (const it of items) {
      const n = name(it);
      if (!n) continue;
      const key = String(n.value);
      const first = seen.get(key);
      if (first) {
        const diag = diagnostic('duplicate', `${what} ${JSON.stringify(n.value)} is given twice`, n.loc, hint);
        diag.related = [{ message: 'first given here', loc: first }];
        d.push(diag);
      } else seen.set(key, n.loc);
    }
  };
  const policy = (p: Pos<string>, pol: Policy, what: string) => {
    const r = checkPath(pol, p.value);
    if (r.ok) return;
    if (r.why === 'relative') bad('invalid-value', `${what} ${JSON.stringify(p.value)} is not an absolute path`, p.loc, 'start it with "/"');
    else if (r.why === 'not-canonical') bad('invalid-value', `${what} ${JSON.stringify(p.value)} is not in canonical form`, p.loc, `write it as "${r.canonical}" (no "//", ".", ".." or trailing "/")`);
    else {
      const under = allowedUnder(pol, r.by);
      const where = r.rule === 'exact' ? `only ${r.by} itself may be` : r.by === p.value ? `${r.by} may not be` : `nothing under ${r.by} may be`;
      const also = under.length > 0 ? ` (except under ${listOf(under)})` : '';
      bad('path-policy', `${what} ${JSON.stringify(p.value)} is not allowed: ${where} ${what === 'mountpoint' ? 'a mountpoint' : 'written by a blueprint'}${also}`, p.loc, policyHint(what, r.by));
    }
  };

  pattern(bp.name, BLUEPRINT_NAME, 'the blueprint name', 'use letters, digits, ".", "_" and "-"');
  pattern(bp.version, SEMVER, 'the version', 'write a semantic version such as "1.0.0"');
  for (const list of [bp.packages, bp.modules]) {
    for (const p of list) {
      pattern(p.name, PACKAGE_NAME, 'the package name', 'a package name starts with a letter or digit and holds letters, digits, "+", ".", "_", "-" (and * or ? as globs)');
      if (p.version && /\s/.test(p.version.value)) bad('invalid-value', `the version ${JSON.stringify(p.version.value)} of package "${p.name.value}" has spaces`, p.version.loc, 'write one version or glob, such as "1.22.*"');
    }
  }
  unique([...bp.packages, ...bp.modules], (p) => p.name, 'the package', 'list each package once');

  const c = bp.customizations;
  if (!c) return d;

  if (c.hostname) {
    const h = c.hostname.value;
    if (h.length > 253 || !h.split('.').every((l) => LABEL.test(l))) {
      bad('invalid-value', `the hostname ${JSON.stringify(h)} is not valid`, c.hostname.loc, 'use labels of letters, digits and "-" (not at either end, at most 63 characters) joined by dots');
    }
  }
  if (c.kernel) {
    pattern(c.kernel.name, PACKAGE_NAME, 'the kernel package name', 'name the kernel package, such as "linux-image-amd64"');
    if (c.kernel.append && /[\n\r]/.test(c.kernel.append.value)) bad('invalid-value', 'the kernel command line has a line break', c.kernel.append.loc, 'write the arguments on one line, separated by spaces');
  }

  for (const u of c.user) {
    accountName(u.name, 'user');
    for (const g of u.groups) accountName(g, 'group');
    for (const p of [u.home, u.shell]) {
      if (p && !p.value.startsWith('/')) bad('invalid-value', `${p === u.home ? 'the home directory' : 'the shell'} ${JSON.stringify(p.value)} of user "${u.name.value}" is not an absolute path`, p.loc, 'start it with "/"');
    }
    if (u.key) sshKey(u.key);
    if (u.password && /[\n\r:]/.test(u.password.value)) bad('invalid-value', `the password of user "${u.name.value}" holds a line break or ":"`, u.password.loc, 'write it on one line, without ":"');
    if (u.description && /[\n\r:]/.test(u.description.value)) bad('invalid-value', `the description of user "${u.name.value}" holds a line break or ":"`, u.description.loc, 'write it on one line, without ":" (it goes into /etc/passwd)');
  }
  unique(c.user, (u) => u.name, 'the user', 'give each user once; put all of its settings in one [[customizations.user]]');
  unique(c.user, (u) => u.uid, 'the uid', 'give each user its own uid');
  for (const k of c.sshkey) {
    accountName(k.user, 'user');
    sshKey(k.key);
  }
  unique(c.sshkey, (k) => k.user, 'the sshkey user', 'put all keys of a user in one key, one per line');
  for (const g of c.group) accountName(g.name, 'group');
  unique(c.group, (g) => g.name, 'the group', 'give each group once');
  unique(c.group, (g) => g.gid, 'the gid', 'give each group its own gid');

  if (c.timezone) {
    pattern(c.timezone.timezone, TIMEZONE, 'the timezone', 'write a zone name such as "UTC" or "Europe/Berlin"');
    for (const s of c.timezone.ntpservers) {
      if (!/^[A-Za-z0-9.:_[\]-]+$/.test(s.value)) bad('invalid-value', `the NTP server ${JSON.stringify(s.value)} is not a host name or address`, s.loc, 'write a host name or an IP address, one per item');
    }
  }
  if (c.locale) {
    for (const l of c.locale.languages) pattern(l, LANGUAGE, 'the language', 'write a locale such as "en_US.UTF-8" or "C.UTF-8"');
    pattern(c.locale.keyboard, KEYMAP, 'the keyboard layout', 'write a console keymap name such as "us" or "de-nodeadkeys"');
  }
  if (c.services) {
    const s = c.services;
    for (const u of [...s.enabled, ...s.disabled, ...s.masked]) {
      pattern(u, UNIT_NAME, 'the unit name', 'write a systemd unit such as "nginx", "nginx.service" or "fstrim.timer"');
    }
    const unit = (p: Pos<string>) => ({ value: UNIT_SUFFIX.test(p.value) ? p.value : `${p.value}.service`, loc: p.loc });
    const states = [
      ...s.enabled.map((p) => ({ ...unit(p), state: 'enabled' })),
      ...s.disabled.map((p) => ({ ...unit(p), state: 'disabled' })),
      ...s.masked.map((p) => ({ ...unit(p), state: 'masked' })),
    ];
    const seen = new Map<string, { state: string; loc: Loc }>();
    for (const st of states) {
      const first = seen.get(st.value);
      if (!first) {
        seen.set(st.value, st);
        continue;
      }
      const diag = diagnostic('duplicate', first.state === st.state ? `the unit "${st.value}" is ${st.state} twice` : `the unit "${st.value}" is both ${first.state} and ${st.state}`, st.loc, 'list each unit once, in the state it should have');
      diag.related = [{ message: `${first.state} here`, loc: first.loc }];
      d.push(diag);
    }
  }
  if (c.firewall) {
    for (const p of c.firewall.ports) {
      const r = parsePort(p.value);
      if (!r.ok) bad('invalid-value', `the firewall port ${JSON.stringify(p.value)} is not valid`, p.loc, r.why);
    }
    unique(c.firewall.ports, (p) => p, 'the firewall port', 'list each port once');
    for (const s of [...(c.firewall.services?.enabled ?? []), ...(c.firewall.services?.disabled ?? [])]) {
      pattern(s, /^[a-z0-9][a-z0-9_.-]*$/, 'the firewall service', 'write a firewalld service name such as "http" or "ssh"');
    }
  }
  for (const f of c.filesystem) policy(f.mountpoint, MOUNTPOINT_POLICY, 'mountpoint');
  unique(c.filesystem, (f) => f.mountpoint, 'the mountpoint', 'give each mountpoint once');
  for (const x of c.directories) {
    policy(x.path, DIRECTORIES_POLICY, 'directory');
    owners(x);
  }
  for (const x of c.files) {
    policy(x.path, FILES_POLICY, 'file');
    owners(x);
  }
  unique([...c.directories, ...c.files], (x) => x.path, 'the path', 'create each path once, as a file or as a directory');

  for (const r of c.repositories) {
    pattern(r.id, /^[A-Za-z0-9_.:-]+$/, 'the repository id', 'use letters, digits, "_", ".", ":" and "-"');
    if (r.baseurls.length === 0) bad('missing-key', `repository "${r.id.value}" has no "baseurls"`, r.loc, 'add baseurls = ["URL"] (mirrorlist and metalink have no mapping yet)');
    for (const u of r.baseurls) {
      if (!/^(https?|file|ftp):\/\/\S+( \S+)*$/.test(u.value)) bad('invalid-value', `the base URL ${JSON.stringify(u.value)} is not a URL`, u.loc, 'write an http://, https://, ftp:// or file:// URL (for apt, optionally followed by the suite and components)');
    }
    for (const k of r.gpgkeys) {
      if (!/^(https?|file):\/\/\S+$/.test(k.value) && !k.value.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
        bad('invalid-value', `the GPG key of repository "${r.id.value}" is neither a URL nor an armoured key`, k.loc, 'write a key URL, or the key itself starting with -----BEGIN PGP PUBLIC KEY BLOCK-----');
      }
    }
    if (r.gpgcheck?.value === true && r.gpgkeys.length === 0) bad('missing-key', `repository "${r.id.value}" checks signatures but has no "gpgkeys"`, r.gpgcheck.loc, 'add gpgkeys with the key that signs it, or set gpgcheck = false');
    // Installing from a repository trusts what it serves: its signature is checked when the
    // lock is made, so a key is needed unless the blueprint says, in so many words, not to check.
    else if (r.install_from?.value === true && r.gpgkeys.length === 0 && r.gpgcheck?.value !== false) {
      bad('missing-key', `repository "${r.id.value}" is installed from (install_from = true) but has no "gpgkeys": its signature could not be checked`, r.install_from.loc, 'add gpgkeys with the armoured key that signs its Release file, or set gpgcheck = false to install from it unchecked');
    }
  }
  unique(c.repositories, (r) => r.id, 'the repository id', 'give each repository its own id');
  for (const pem of c.cacerts?.pem_certs ?? []) {
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem.value)) {
      bad('invalid-value', 'the CA certificate is not a PEM certificate', pem.loc, 'paste the certificate from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----');
    }
  }
  for (const s of c.firstboot?.scripts ?? []) {
    if (!FIRSTBOOT_TYPES.includes(s.type.value)) bad('invalid-value', `unknown firstboot script type ${JSON.stringify(s.type.value)}`, s.type.loc, `write one of ${listOf(FIRSTBOOT_TYPES.map((t) => `"${t}"`))}`);
    if (s.type.value === 'custom' && !s.contents) bad('missing-key', 'custom firstboot script has no "contents"', s.loc, 'add contents with the script to run (a shell script unless it starts with #!)');
    pattern(s.name, /^[A-Za-z0-9_-]+$/, 'the firstboot script name', 'use letters, digits, "_" and "-"');
    for (const u of [...s.after, ...s.before]) pattern(u, UNIT_NAME, 'the unit name', 'write a systemd unit such as "network-online.target"');
  }
  unique(c.firstboot?.scripts ?? [], (s) => s.name, 'the firstboot script name', 'give each script its own name');
  const prl = c.sshd?.permit_root_login;
  if (prl && typeof prl.value === 'string' && !PERMIT_ROOT_LOGIN.includes(prl.value)) {
    bad('invalid-value', `permit_root_login ${JSON.stringify(prl.value)} is not valid`, prl.loc, `write true, false or one of ${listOf(PERMIT_ROOT_LOGIN.map((w) => `"${w}"`))}`);
  }
  return d;

  function accountName(p: Pos<string>, what: string): void {
    if (p.value.length > 32 || !ACCOUNT_NAME.test(p.value)) {
      bad('invalid-value', `the ${what} name ${JSON.stringify(p.value)} is not valid`, p.loc, 'start with a lower-case letter or "_", then lower-case letters, digits, "_" or "-" (at most 32)');
    }
  }
  function sshKey(k: Pos<string>): void {
    const lines = k.value.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    if (lines.length === 0 || !lines.every((l) => SSH_KEY_TYPE.test(l))) {
      bad('invalid-value', 'the SSH key is not an OpenSSH public key', k.loc, 'paste the whole line of ~/.ssh/id_ed25519.pub (or another .pub file): "ssh-ed25519 AAAA… comment"');
    }
  }
  function owners(x: { user?: Pos<string | number>; group?: Pos<string | number> }): void {
    for (const [o, what] of [
      [x.user, 'user'],
      [x.group, 'group'],
    ] as const) {
      if (o && typeof o.value === 'string') accountName(o as Pos<string>, what);
    }
  }
}

function policyHint(what: string, by: string): string {
  if (what === 'mountpoint') {
    if (by === '/usr') return 'mount /usr as a whole, or choose another mountpoint such as /var or /srv';
    return 'choose another mountpoint, such as /var, /var/log, /home, /srv or /opt';
  }
  if (by === '/usr') return 'put it under /usr/local, or in /etc or /opt';
  if (by.startsWith('/etc/')) return `${by} is written by the build from other fields (users, groups, filesystems); use those instead`;
  return 'choose a path in /etc, /opt, /srv, /var or /usr/local';
}
