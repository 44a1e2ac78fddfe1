/**
 * A checked blueprint → what the catalog's definition needs to honour it: packages (and the
 * repositories marked install_from, as options) added to the distro's package stage, variables of the catalog's parts (hostname, timezone), and the stages
 * of one `blueprint` pipeline on top of the workload, in the order an OS needs them:
 *
 *     mountpoints → locale-gen → locale → keyboard → users (groups, users, ssh keys: users.add, or
 *       users.firstboot for an ostree type) → ntp → cacerts
 *       → repositories → directories → files → sshd → firewall → firstboot → services
 *
 * Directories before files (a file may go into one), users before both (an owner may be one of
 * them), services last (a unit a file wrote, the firewall's or a first-boot script's, can then be
 * enabled). A stage is made only for a customization the blueprint uses, so editing one reruns
 * its stage and those after it, never the package stage (unless the packages change).
 *
 * Pure: no files, no rules loaded. Values a mapping cannot honour (an owner by a name whose id is
 * unknown, a package version glob) come back as diagnostics at the blueprint's file:line:column; options no image type supports were refused
 * before (support.ts), so reaching one here is an Internal error.
 *
 * This module does not choose an image definition, write files or check support: compose.ts
 * and src/cli/catalog.ts do.
 */
import { createHash } from 'node:crypto';
import { diagnostic, type Diagnostic, type Loc } from '../diagnostic.js';
import type { Blueprint, FirstbootScript, Owner, Pos, User } from '../blueprint/index.js';
import type { RepositoryOptions, RepositoryWriter } from '../packages/input.js';
import { isCryptHash, parsePort, sortDiagnostics } from '../blueprint/index.js';
import { fail, ok, type Result } from '../result.js';
import { listOf } from '../load/suggest.js';
import { hashPassword } from './crypt.js';
import { nftablesConf, SERVICES, type PortRule } from './firewall.js';

/** One stage of the blueprint's pipeline, as a definition writes it. */
export interface MappedStage {
  name: string;
  rule: string;
  options: Record<string, unknown>;
  /** The blueprint section it comes from (a comment in the generated definition). */
  from: Loc;
}

export interface Customization {
  /** Added to the distro's package stage (its rule's `packages` option), in blueprint order, without duplicates. */
  packages: string[];
  /** Values for the catalog parts' variables (`hostname`, `timezone`). */
  vars: Record<string, string>;
  /** The `blueprint` pipeline's stages, in the order above; empty when nothing needs one. */
  stages: MappedStage[];
  /** Extra filesystems: a partition each, made from that directory of the tree (compose.ts). */
  filesystems: MappedFilesystem[];
  /** kernel.name: the package that replaces the catalog's kernel package in the package stage (compose.ts). */
  kernel?: { package: string; from: Loc };
  /**
   * Options added to the distro's package stage (compose.ts): the repositories marked
   * `install_from`, in the format's own terms (its `installFrom`). Absent: none.
   */
  packageOptions?: { options: Record<string, unknown>; from: Loc };
}

export interface MappedFilesystem {
  mountpoint: string;
  /** Bytes, rounded up to a whole MiB. */
  size: number;
  /** The GPT partition name (from the mountpoint: /var/log → var-log). */
  partition: string;
  /** The filesystem's UUID and the partition's, derived from the mountpoint: the same blueprint, the same disk. */
  uuid: string;
  partuuid: string;
  from: Loc;
}

/** The firewall's package and unit (Debian's nftables; its unit loads /etc/nftables.conf). */
export const FIREWALL_PACKAGE = 'nftables';

/** The package that brings update-ca-certificates, added when a blueprint has cacerts. */
export const CA_PACKAGE = 'ca-certificates';
/** system.ca-certificates' bound (its files are numbered 01 … 99). */
const MAX_CERTS = 99;

/** The package that applies /etc/default/keyboard to the console at boot (with keyboard-configuration, kbd, xkb-data). */
export const KEYBOARD_PACKAGE = 'console-setup';

/**
 * A console keymap name as composer takes it (kbd's: `us`, `de-nodeadkeys`, `uk`) → XKB's layout
 * and variant (`de` + `nodeadkeys`, `gb`). kbd's `-latin1`/`-latin0`/`-latin9` name the charset of
 * a legacy map, not a variant: the plain layout is meant. system.keyboard checks the result
 * against the image's XKB data.
 */
export function xkbOf(keymap: string): { layout: string; variant?: string } {
  const [head, ...rest] = keymap.toLowerCase().split('-');
  const layout = head === 'uk' ? 'gb' : head!;
  const variant = rest.join('-');
  return variant && !/^latin\d$/.test(variant) ? { layout, variant } : { layout };
}

/** The package that brings locale-gen and the locale sources, added when a blueprint asks for a locale to generate. */
export const LOCALES_PACKAGE = 'locales';

/** Locales every Debian tree has without generating any. */
const BUILTIN_LOCALES = ['C', 'C.UTF-8', 'C.utf8', 'POSIX'];

export interface MapOptions {
  /**
   * The catalog image's package format's writer of repository files (format.ts), handed in by
   * composition (cli/catalog.ts): this mapping names no format. Without it, a blueprint's
   * repositories are refused at their line.
   */
  repositories?: RepositoryWriter | undefined;
  /**
   * The same format's options for repositories marked `install_from` (format.ts), handed in
   * the same way. Without it, `install_from = true` is refused at its line.
   */
  installFrom?: RepositoryOptions | undefined;
  /**
   * Users, groups and SSH keys through a unit that applies them at boot (users.firstboot), not
   * into the tree's /etc and /home (users.add): for an image whose /usr is read-only and whose
   * /etc is merged at each upgrade (ostree), where the tree's user database and homes would be
   * baked into /usr.
   */
  usersAtBoot?: boolean;
}

export function mapBlueprint(bp: Blueprint, o: MapOptions = {}): Result<Customization, Diagnostic[]> {
  const errors: Diagnostic[] = [];
  const packages: string[] = [];
  const addPackage = (name: string): void => {
    if (!packages.includes(name)) packages.push(name);
  };
  for (const p of [...bp.packages, ...bp.modules]) {
    const v = p.version?.value;
    if (v === undefined || v === '*') addPackage(p.name.value);
    else if (/[*?[\]]/.test(v)) {
      errors.push(
        diagnostic('invalid-value', `version ${JSON.stringify(v)} of package ${p.name.value} is a glob; Debian's package stage installs one exact version`, p.version!.loc, `write an exact version ("${v.replace(/[*?[\]].*$/, '')}…" as the mirror has it), or "*" for the one the lock resolves`),
      );
    } else addPackage(`${p.name.value}=${v}`);
  }

  const c = bp.customizations;
  const vars: Record<string, string> = {};
  const stages: MappedStage[] = [];
  const filesystems: MappedFilesystem[] = [];
  let kernel: Customization['kernel'];
  let packageOptions: Customization['packageOptions'];
  if (!c) return errors.length ? fail(sortDiagnostics(errors)) : ok({ packages, vars, stages, filesystems });

  if (c.hostname) vars['hostname'] = c.hostname.value;
  const kernelName = c.kernel?.name;
  if (kernelName) {
    if (/^linux-image-/.test(kernelName.value)) kernel = { package: kernelName.value, from: kernelName.loc };
    else errors.push(diagnostic('invalid-value', `kernel ${JSON.stringify(kernelName.value)} is not a Debian kernel package`, kernelName.loc, 'name a linux-image-* package, such as "linux-image-cloud-amd64" or "linux-image-rt-amd64"'));
  }
  if (c.timezone?.timezone) vars['timezone'] = c.timezone.timezone.value;
  const append = c.kernel?.append;
  if (append) {
    // GRUB's configuration and the shell quote differently: only characters neither changes.
    if (/^[A-Za-z0-9 ._,:=/+@-]*$/.test(append.value)) vars['kernel_append'] = ` ${append.value.trim()}`;
    else errors.push(diagnostic('invalid-value', `kernel arguments ${JSON.stringify(append.value)} hold a character the bootloader's configuration would change`, append.loc, 'use letters, digits, spaces and . _ , : = / + @ - only (no quotes)'));
  }

  if (c.locale && (c.locale.languages.length > 0 || c.locale.keyboard)) {
    const lang = c.locale.languages[0];
    // Every language but the built-in ones is generated in the tree, by the tree's own
    // locale-gen, which the locales package brings (the distro part does not install it).
    // SUPPORTED writes UTF-8 codesets as `.UTF-8`; glibc reads `.utf8` as the same locale.
    const generate = [...new Set(c.locale.languages.map((l) => l.value).filter((l) => !BUILTIN_LOCALES.includes(l)).map((l) => l.replace(/\.utf-?8(?=@|$)/i, '.UTF-8')))];
    if (generate.length > 0) {
      addPackage(LOCALES_PACKAGE);
      stages.push({ name: 'locale-gen', rule: 'system.locale-gen', options: { locales: generate }, from: c.locale.loc });
    }
    stages.push({ name: 'locale', rule: 'system.locale', options: { language: lang?.value ?? 'C.UTF-8', ...(c.locale.keyboard ? { keymap: c.locale.keyboard.value } : {}) }, from: c.locale.loc });
    if (c.locale.keyboard) {
      // Debian applies a console layout through console-setup (/etc/default/keyboard, XKB names);
      // /etc/vconsole.conf alone does nothing without kbd's keymaps, which Debian does not ship.
      const xkb = xkbOf(c.locale.keyboard.value);
      if (/^[a-z][a-z0-9_]*$/.test(xkb.layout) && /^([a-z0-9][a-z0-9_-]*)?$/.test(xkb.variant ?? '')) {
        addPackage(KEYBOARD_PACKAGE);
        stages.push({ name: 'keyboard', rule: 'system.keyboard', options: xkb, from: c.locale.keyboard.loc });
      } else {
        errors.push(diagnostic('invalid-value', `keyboard ${JSON.stringify(c.locale.keyboard.value)} is not a layout name Debian's console-setup knows`, c.locale.keyboard.loc, 'write a layout such as "us", "de" or "fr", optionally with a variant: "de-nodeadkeys"'));
      }
    }
  }

  // Users: the ids the blueprint gives, so files and directories may name their owners.
  const uids = new Map<string, number>([['root', 0]]);
  const gids = new Map<string, number>([['root', 0]]);
  for (const g of c.group) if (g.gid) gids.set(g.name.value, g.gid.value);
  for (const u of c.user) {
    if (u.uid) uids.set(u.name.value, u.uid.value);
    // A new user's own group gets gid = uid (users.add), unless a gid is given.
    const gid = u.gid?.value ?? u.uid?.value;
    if (gid !== undefined && !gids.has(u.name.value)) gids.set(u.name.value, gid);
  }
  if (c.user.length > 0 || c.group.length > 0 || c.sshkey.length > 0) {
    const users = c.user.map((u) => userEntry(u, bp.name.value));
    for (const k of c.sshkey) {
      const existing = users.find((u) => u['name'] === k.user.value);
      const keys = keyLines(k.key.value);
      if (existing) existing['ssh_keys'] = [...((existing['ssh_keys'] as string[] | undefined) ?? []), ...keys];
      else users.push({ name: k.user.value, ssh_keys: keys });
    }
    const groups = c.group.map((g) => ({ name: g.name.value, ...(g.gid ? { gid: g.gid.value } : {}) }));
    const first = c.group[0]?.loc ?? c.user[0]?.loc ?? c.sshkey[0]!.loc;
    stages.push({ name: 'users', rule: o.usersAtBoot ? 'users.firstboot' : 'users.add', options: { ...(groups.length ? { groups } : {}), ...(users.length ? { users } : {}) }, from: first });
  }

  if (c.timezone && c.timezone.ntpservers.length > 0) {
    stages.push({
      name: 'ntp',
      rule: 'files.write',
      options: { files: [{ path: '/etc/systemd/timesyncd.conf.d/imgmake.conf', content: `[Time]\nNTP=${c.timezone.ntpservers.map((s) => s.value).join(' ')}\n` }] },
      from: c.timezone.loc,
    });
  }

  if (c.cacerts && c.cacerts.pem_certs.length > 0) {
    const certs = [...new Set(c.cacerts.pem_certs.flatMap((p) => pemCerts(p.value)))];
    if (certs.length > MAX_CERTS) errors.push(diagnostic('invalid-value', `${certs.length} CA certificates: at most ${MAX_CERTS} are taken`, c.cacerts.loc, 'add the rest with a package or a file under /usr/local/share/ca-certificates'));
    addPackage(CA_PACKAGE);
    stages.push({ name: 'cacerts', rule: 'system.ca-certificates', options: { certs }, from: c.cacerts.loc });
  }

  if (c.repositories.length > 0 && !o.repositories) {
    errors.push(diagnostic('unsupported-option', 'this catalog image\'s package format writes no repository files', c.repositories[0]!.loc, 'remove repositories, or add the sources with customizations.files'));
  } else if (c.repositories.length > 0) {
    // Every repository's source file goes into the image; those marked install_from also
    // join the package stage's lock (composer writes the repository files of both kinds too).
    stages.push({ name: 'repositories', rule: 'files.write', options: { files: o.repositories!(c.repositories, errors) }, from: c.repositories[0]!.loc });
    const marked = c.repositories.filter((r) => r.install_from?.value === true);
    if (marked.length > 0 && !o.installFrom) {
      errors.push(diagnostic('unsupported-option', 'this catalog image\'s package format cannot install from a blueprint\'s repositories', marked[0]!.install_from!.loc, 'remove install_from: the repository is then only written into the image'));
    } else if (marked.length > 0) {
      const options = o.installFrom!(marked, errors);
      if (Object.keys(options).length > 0) packageOptions = { options, from: marked[0]!.install_from!.loc };
    }
  }

  if (c.directories.length > 0) {
    const paths = c.directories.map((d) => ({
      path: d.path.value,
      ...(d.mode ? { mode: octal(d.mode.value) } : {}),
      ...(d.user || d.group ? { owner: owner(d.user, d.group, uids, gids, errors) } : {}),
      parents: d.ensure_parents?.value ?? false,
    }));
    stages.push({ name: 'directories', rule: 'files.mkdir', options: { paths }, from: c.directories[0]!.loc });
  }

  if (c.files.length > 0) {
    const files = c.files.map((f) => ({
      path: f.path.value,
      content: f.data?.value ?? '',
      ...(f.mode ? { mode: octal(f.mode.value) } : {}),
      ...(f.user || f.group ? { owner: owner(f.user, f.group, uids, gids, errors) } : {}),
    }));
    stages.push({ name: 'files', rule: 'files.write', options: { files }, from: c.files[0]!.loc });
  }

  if (c.sshd) {
    const s = c.sshd;
    const yn = (b: boolean): string => (b ? 'yes' : 'no');
    const lines = [
      ...(s.password_authentication ? [`PasswordAuthentication ${yn(s.password_authentication.value)}`] : []),
      ...(s.challenge_response_authentication ? [`KbdInteractiveAuthentication ${yn(s.challenge_response_authentication.value)}`] : []),
      ...(s.client_alive_interval ? [`ClientAliveInterval ${s.client_alive_interval.value}`] : []),
      ...(s.permit_root_login ? [`PermitRootLogin ${typeof s.permit_root_login.value === 'boolean' ? yn(s.permit_root_login.value) : s.permit_root_login.value}`] : []),
    ];
    if (lines.length > 0) {
      stages.push({ name: 'sshd', rule: 'files.write', options: { files: [{ path: '/etc/ssh/sshd_config.d/imgmake.conf', content: `${lines.join('\n')}\n` }] }, from: s.loc });
    }
  }

  const enable: string[] = [];
  const fw = c.firewall;
  const fwServices = { enabled: fw?.services?.enabled ?? [], disabled: fw?.services?.disabled ?? [] };
  if (fw && fw.ports.length + fwServices.enabled.length + fwServices.disabled.length > 0) {
    const ports: PortRule[] = fw.ports.map((p) => {
      const port = parsePort(p.value);
      if (!port.ok) throw new Error(`Internal error: port ${p.value} passed the blueprint check`);
      return { protocol: port.protocol as PortRule['protocol'], port: port.from === port.to ? String(port.from) : `${port.from}-${port.to}` };
    });
    for (const s of [...fwServices.enabled, ...fwServices.disabled]) {
      if (!SERVICES[s.value]) {
        errors.push(diagnostic('invalid-value', `firewall service ${JSON.stringify(s.value)} is not one imgmake knows the ports of`, s.loc, `write its ports under ports instead ("8080:tcp"), or use one of ${listOf(Object.keys(SERVICES))}`));
      }
    }
    addPackage(FIREWALL_PACKAGE);
    enable.push('nftables.service');
    const content = nftablesConf({ ports, enabled: fwServices.enabled.map((s) => s.value), disabled: fwServices.disabled.map((s) => s.value) });
    stages.push({ name: 'firewall', rule: 'files.write', options: { files: [{ path: '/etc/nftables.conf', mode: '0755', content }] }, from: fw.loc });
  }

  const firstboot = firstbootUnits(c.firstboot?.scripts ?? [], errors);
  if (firstboot.length > 0) {
    stages.push({ name: 'firstboot', rule: 'files.write', options: { files: firstboot.flatMap((f) => f.files) }, from: c.firstboot!.loc });
    enable.push(...firstboot.map((f) => f.unit));
  }

  const unit = (p: Pos<string>): string => (/\.[a-z]+$/.test(p.value) ? p.value : `${p.value}.service`);
  const svc = c.services;
  if (enable.length > 0 || (svc && svc.enabled.length + svc.disabled.length + svc.masked.length > 0)) {
    const en = [...(svc?.enabled.map(unit) ?? []), ...enable];
    stages.push({
      name: 'services',
      rule: 'systemd.units',
      options: {
        ...(en.length ? { enable: [...new Set(en)] } : {}),
        ...(svc?.disabled.length ? { disable: [...new Set(svc.disabled.map(unit))] } : {}),
        ...(svc?.masked.length ? { mask: [...new Set(svc.masked.map(unit))] } : {}),
      },
      from: svc?.loc ?? c.firewall?.loc ?? c.firstboot!.loc,
    });
  }
  for (const f of c.filesystem) {
    const m = f.mountpoint.value.replace(/\/+$/, '') || '/';
    if (m === '/') {
      errors.push(diagnostic('invalid-value', 'the root filesystem fills the rest of the disk; its size is not set here', f.mountpoint.loc, 'leave / out: list the other mountpoints'));
      continue;
    }
    const MiB = 1024 * 1024;
    filesystems.push({
      mountpoint: m,
      size: Math.ceil(f.minsize.value / MiB) * MiB,
      partition: m.slice(1).replace(/[^A-Za-z0-9._+-]+/g, '-').slice(0, 36),
      uuid: uuidOf(`filesystem:${m}`),
      partuuid: uuidOf(`partition:${m}`),
      from: f.loc,
    });
  }
  if (filesystems.length > 0) {
    // Mountpoints exist in the root filesystem, before anything else is written (it may go into them).
    stages.unshift({ name: 'mountpoints', rule: 'files.mkdir', options: { paths: filesystems.map((f) => ({ path: f.mountpoint })) }, from: c.filesystem[0]!.loc });
  }
  return errors.length ? fail(sortDiagnostics(errors)) : ok({ packages, vars, stages, filesystems, ...(kernel ? { kernel } : {}), ...(packageOptions ? { packageOptions } : {}) });
}

/** A fixed UUID from a name (the shape of a version-4 UUID; never random). */
export function uuidOf(name: string): string {
  const h = createHash('sha256').update(`imgmake:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[parseInt(h[16]!, 16) % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * users.add's entry for a blueprint user. A password that is not already a crypt(3) hash is
 * hashed here (crypt.ts: SHA-512-crypt, salt derived from the blueprint's and the user's names),
 * so the plain text never reaches the composed definition, the manifest or a cache key.
 */
function userEntry(u: User, blueprint: string): Record<string, unknown> {
  const password = u.password && (isCryptHash(u.password.value) ? u.password.value : hashPassword(u.password.value, blueprint, u.name.value));
  return {
    name: u.name.value,
    ...(u.description ? { gecos: u.description.value } : {}),
    ...(password ? { password_hash: password } : {}),
    ...(u.key ? { ssh_keys: keyLines(u.key.value) } : {}),
    ...(u.home ? { home: u.home.value } : {}),
    ...(u.shell ? { shell: u.shell.value } : {}),
    ...(u.groups.length ? { groups: [...new Set(u.groups.map((g) => g.value))] } : {}),
    ...(u.uid ? { uid: u.uid.value } : {}),
    ...(u.gid ? { gid: u.gid.value } : {}),
  };
}

const keyLines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/**
 * `UID:GID` for files.write and files.mkdir, which take numbers: a name must be root or a user
 * (group) the blueprint gives an id. An owner without a group takes the user's own group.
 */
function owner(user: Pos<Owner> | undefined, group: Pos<Owner> | undefined, uids: Map<string, number>, gids: Map<string, number>, errors: Diagnostic[]): string {
  const id = (p: Pos<Owner> | undefined, ids: Map<string, number>, what: string, fallback: number): number => {
    if (!p) return fallback;
    if (typeof p.value === 'number') return p.value;
    const n = ids.get(p.value);
    if (n !== undefined) return n;
    errors.push(
      diagnostic('invalid-value', `${what} ${JSON.stringify(p.value)} has no id the blueprint gives`, p.loc, `write a number, or give the ${what} one in the blueprint (${what === 'user' ? 'uid in [[customizations.user]]' : 'gid in [[customizations.group]]'})`),
    );
    return 0;
  };
  const u = id(user, uids, 'user', 0);
  const userName = user && typeof user.value === 'string' ? user.value : undefined;
  const g = id(group, gids, 'group', userName !== undefined ? (gids.get(userName) ?? u) : typeof user?.value === 'number' ? u : 0);
  return `${u}:${g}`;
}

/**
 * Each certificate of a PEM bundle as one normalized PEM (its base64 re-wrapped at 64
 * characters, LF line ends), so the same certificates give the same files whatever the
 * blueprint's line ends or indentation.
 */
export function pemCerts(pem: string): string[] {
  const out: string[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    const b64 = m[1]!.replace(/\s+/g, '');
    out.push(`-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`);
  }
  return out;
}

/** Where first-boot scripts and their stamps live in the image. */
export const FIRSTBOOT_DIR = '/usr/local/libexec/imgmake/firstboot';
export const FIRSTBOOT_STAMPS = '/var/lib/imgmake/firstboot';

/**
 * composer's custom first-boot scripts → a script file each and a oneshot unit that runs it
 * once: the unit is skipped when its stamp exists and writes the stamp after the script (with
 * ignore_failure, whether it failed or not; without, a failed script runs again at the next boot).
 * `satellite` and `aap` scripts register with Red Hat services and are refused.
 */
function firstbootUnits(scripts: FirstbootScript[], errors: Diagnostic[]): { unit: string; files: Record<string, unknown>[] }[] {
  const out: { unit: string; files: Record<string, unknown>[] }[] = [];
  scripts.forEach((s, i) => {
    if (s.type.value !== 'custom') {
      errors.push(diagnostic('invalid-value', `firstboot script type ${JSON.stringify(s.type.value)} registers with a Red Hat service (${s.type.value === 'aap' ? 'Ansible Automation Platform' : 'Satellite'}), which imgmake's images do not have`, s.type.loc, 'use type = "custom" with the commands to run in contents'));
      return;
    }
    const name = s.name?.value ?? String(i + 1);
    const unit = `imgmake-firstboot-${name}.service`;
    const script = `${FIRSTBOOT_DIR}/${name}`;
    const stamp = `${FIRSTBOOT_STAMPS}/${name}.done`;
    const body = s.contents?.value ?? '';
    const after = s.after.map((u) => u.value);
    const lines = [
      '[Unit]',
      `Description=imgmake first-boot script ${name} (runs once)`,
      `ConditionPathExists=!${stamp}`,
      ...(after.length ? [`After=${after.join(' ')}`] : []),
      // After= alone orders without starting: a script that waits for the network also pulls it in.
      ...(after.includes('network-online.target') ? ['Wants=network-online.target'] : []),
      ...(s.before.length ? [`Before=${s.before.map((u) => u.value).join(' ')}`] : []),
      '',
      '[Service]',
      'Type=oneshot',
      'RemainAfterExit=yes',
      `ExecStart=${s.ignore_failure?.value ? '-' : ''}${script}`,
      `ExecStartPost=/bin/sh -c 'mkdir -p ${FIRSTBOOT_STAMPS} && touch ${stamp}'`,
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ];
    out.push({
      unit,
      files: [
        { path: script, mode: '0755', content: `${body.startsWith('#!') ? '' : '#!/bin/sh\n'}${body}${body.endsWith('\n') ? '' : '\n'}` },
        { path: `/etc/systemd/system/${unit}`, content: lines.join('\n') },
      ],
    });
  });
  return out;
}
