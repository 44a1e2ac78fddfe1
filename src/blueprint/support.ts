/**
 * Which blueprint options each image type supports: ONE table, read by `checkSupport` (an error
 * at the field for anything else), by docs/blueprint.md (generated from it: see doc.ts) and,
 * later, by `imgmake list --json`. An option that is not supported is never silently ignored.
 *
 * Two tables, both here:
 * - `OPTIONS`: every option a blueprint can hold, by its path of composer keys, what it does,
 *   and whether imgmake maps it onto anything at all (`mapped: false`: composer knows it,
 *   imgmake has no mapping yet, every image type refuses it);
 * - `SUPPORT`: for each image type, the options it supports. The catalog adds image types by
 *   adding rows (or passes its own table to `checkSupport`).
 *
 * A field belongs to the most specific OPTIONS row whose path is a prefix of it
 * (`customizations.user.groups` → `customizations.user`; `customizations.user.expiredate` has
 * its own row).
 */
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { listOf } from '../load/suggest.js';
import type { Blueprint } from './types.js';

export interface OptionInfo {
  /** Path of composer keys: `customizations.kernel.append`. */
  option: string;
  /** One line for the docs and `list`. */
  summary: string;
  /**
   * false: composer's field with no mapping in imgmake yet (refused by every image type).
   * true: src/catalog/customize.ts maps it onto the catalog definition's packages, variables or
   * stages, so an image type may list it in SUPPORT (test/catalog-customize.test.ts shows each).
   */
  mapped: boolean;
}

const o = (option: string, summary: string, mapped = true): OptionInfo => ({ option, summary, mapped });

export const OPTIONS: readonly OptionInfo[] = [
  o('name', 'the blueprint\'s name'),
  o('description', 'free text'),
  o('version', 'semantic version of the blueprint'),
  o('distro', 'the distribution to build (a catalog name such as debian-12)'),
  o('architecture', 'the architecture to build (x86_64, aarch64)'),
  o('packages', 'packages to install, with an optional version glob'),
  o('modules', 'packages to install (composer installs modules the same way)'),
  o('groups', 'package groups, dnf\'s @group (apt has none)', false),
  o('enabled_modules', 'dnf module streams', false),
  o('containers', 'container images embedded in the image', false),
  o('minimal', 'composer\'s experimental minimal install', false),
  o('customizations', 'the section holding the options below'),
  o('customizations.hostname', '/etc/hostname'),
  o('customizations.kernel', 'the kernel section'),
  o('customizations.kernel.name', 'the kernel package, in place of the distribution\'s (linux-image-cloud-amd64)'),
  o('customizations.kernel.append', 'arguments appended to the kernel command line (needs a bootloader)'),
  o('customizations.user', 'users: description, password (a crypt hash, or plain text hashed reproducibly), SSH key, home, shell, groups, uid, gid'),
  o('customizations.user.expiredate', 'account expiry date', false),
  o('customizations.user.force_password_reset', 'force a password change at first login', false),
  o('customizations.sshkey', 'an SSH key for an existing user'),
  o('customizations.group', 'groups, with an optional gid'),
  o('customizations.timezone', 'time zone and NTP servers'),
  o('customizations.locale', 'system locale (the first language), every language generated (adds the locales package), keyboard layout (adds console-setup)'),
  o('customizations.services', 'systemd units enabled, disabled or masked'),
  o('customizations.firewall', 'the firewall section'),
  o('customizations.firewall.ports', 'ports opened in the firewall'),
  o('customizations.firewall.services', 'firewalld service names opened (enabled) or closed (disabled), as their ports'),
  o('customizations.firewall.zones', 'firewalld zones with sources (imgmake\'s firewall is one nftables input chain, without zones)', false),
  o('customizations.filesystem', 'extra filesystems (mountpoint, minsize): partitions, fstab, disk size (needs a disk)'),
  o('customizations.directories', 'directories to create, with owner and mode'),
  o('customizations.files', 'files to write, with owner, mode and contents'),
  o('customizations.repositories', 'extra apt sources in the image (baseurls "URL SUITE COMPONENT…", armoured gpgkeys, gpgcheck, enabled); with install_from = true the build installs from it too (the lock resolves from it, its signature checked against gpgkeys)'),
  o('customizations.repositories.mirrorlist', 'a dnf mirror list', false),
  o('customizations.repositories.metalink', 'a dnf metalink', false),
  o('customizations.repositories.repo_gpgcheck', 'check the repository metadata signature (dnf)', false),
  o('customizations.repositories.module_hotfixes', 'dnf module hotfixes', false),
  o('customizations.repositories.ssl_ca_cert', 'TLS client settings of a repository', false),
  o('customizations.repositories.ssl_client_key', 'TLS client settings of a repository', false),
  o('customizations.repositories.ssl_client_cert', 'TLS client settings of a repository', false),
  o('customizations.cacerts', 'CA certificates added to the trust store (adds the ca-certificates package)'),
  o('customizations.firstboot', 'custom scripts run once at first boot, by a oneshot unit each'),
  o('customizations.firstboot.scripts.command', 'satellite registration (Red Hat)', false),
  o('customizations.firstboot.scripts.job_template_url', 'Ansible Automation Platform callback (Red Hat)', false),
  o('customizations.firstboot.scripts.host_config_key', 'Ansible Automation Platform callback (Red Hat)', false),
  o('customizations.firstboot.scripts.cacerts', 'CA certificates for satellite or AAP (Red Hat)', false),
  o('customizations.sshd', 'sshd options: password and challenge-response authentication, client alive interval, root login'),
  o('customizations.disk', 'the full partitioning form (partitions, LVM, btrfs)', false),
  o('customizations.installation_device', 'installer target device', false),
  o('customizations.partitioning_mode', 'LVM or raw partitioning', false),
  o('customizations.fdo', 'FIDO device onboarding', false),
  o('customizations.openscap', 'OpenSCAP remediation', false),
  o('customizations.ignition', 'Ignition provisioning', false),
  o('customizations.fips', 'FIPS mode', false),
  o('customizations.installer', 'Anaconda installer settings', false),
  o('customizations.rpm', 'RPM key imports', false),
  o('customizations.rhsm', 'Red Hat subscription manager', false),
  o('customizations.containers-storage', 'container storage location', false),
  o('customizations.dnf', 'dnf configuration', false),
  o('customizations.iso', 'installer ISO settings', false),
];

/** Rows that only hold other options: a type's list names the options in them, not the section. */
export const SECTIONS = ['customizations', 'customizations.kernel', 'customizations.firewall'];

/** Fields every type takes that say nothing about the image's contents; left out of hints. */
export const METADATA = ['name', 'description', 'version', 'distro', 'architecture'];

/** The image types this table knows today; the catalog adds more. */
export const IMAGE_TYPES = ['qcow2', 'raw', 'tar',
  // Image formats (catalog/debian-12/formats.yaml): disks, and the tree as a container.
  'vmdk', 'vhd', 'gce', 'raw.xz', 'raw.zst', 'oci'] as const;

const mapped = OPTIONS.filter((x) => x.mapped).map((x) => x.option);
/** Options that need a disk (partitions) or a bootloader: not for an archive of the tree. */
const DISK_ONLY = ['customizations.filesystem', 'customizations.kernel.append'];

/** Options no ostree type takes (WHY_NOT says why). */
const OSTREE_NOT = ['customizations.filesystem', 'customizations.repositories'];

/** Image type → the options it supports. */
export const SUPPORT: Readonly<Record<string, readonly string[]>> = {
  qcow2: mapped,
  raw: mapped,
  tar: mapped.filter((x) => !DISK_ONLY.includes(x)),
  // A live ISO has a bootloader (kernel.append goes to its GRUB) but no disk to partition.
  iso: mapped.filter((x) => x !== 'customizations.filesystem'),
  // Image formats: a disk converted supports what the disk does; a container what the tree does.
  vmdk: mapped,
  vhd: mapped,
  gce: mapped,
  'raw.xz': mapped,
  'raw.zst': mapped,
  oci: mapped.filter((x) => !DISK_ONLY.includes(x)),
  // ostree (catalog/debian-12/ostree.yaml): the blueprint's stages act on the tree before
  // ostree.layout; users and keys arrive at boot (users.firstboot), never baked into /usr.
  'ostree-commit': mapped.filter((x) => !OSTREE_NOT.includes(x) && !DISK_ONLY.includes(x)),
  'ostree-raw': mapped.filter((x) => !OSTREE_NOT.includes(x)),
  'ostree-qcow2': mapped.filter((x) => !OSTREE_NOT.includes(x)),
};

/** Why an image type lacks an option, where there is a reason worth telling. */
export const WHY_NOT: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  tar: {
    'customizations.filesystem': 'a tar archive has no disk, so no partitions or sizes',
    'customizations.kernel.append': 'a tar archive has no bootloader, so no kernel command line',
  },
  iso: {
    'customizations.filesystem': 'a live ISO has no disk: its root is a squashfs under a tmpfs overlay, so no partitions or sizes',
  },
  oci: {
    'customizations.filesystem': 'a container image has no disk, so no partitions or sizes',
    'customizations.kernel.append': 'a container image has no kernel or bootloader, so no kernel command line',
  },
  ...Object.fromEntries(
    ['ostree-commit', 'ostree-raw', 'ostree-qcow2'].map((t) => [
      t,
      {
        'customizations.filesystem':
          t === 'ostree-commit'
            ? 'a commit has no disk, so no partitions or sizes'
            : 'an ostree disk holds the physical root (/boot, /ostree) that deployments share, and its /var is the deployments\' state: extra partitions and fstab entries in the commit are not mapped yet',
        'customizations.repositories': 'an ostree image\'s /usr is read-only: nothing is installed on the device with apt, so apt sources are of no use (list the packages in the blueprint instead)',
        ...(t === 'ostree-commit' ? { 'customizations.kernel.append': 'a commit has no bootloader: kernel arguments belong to a deployment (ostree-raw and ostree-qcow2 take them)' } : {}),
      },
    ]),
  ),
};

/** The OPTIONS row a field belongs to: the longest row path that is the field's path or a prefix of it. */
export function optionOf(path: string): OptionInfo | undefined {
  let best: OptionInfo | undefined;
  for (const row of OPTIONS) {
    if ((path === row.option || path.startsWith(`${row.option}.`)) && (!best || row.option.length > best.option.length)) best = row;
  }
  return best;
}

/** `customizations.kernel.append` → `kernel.append`: how options are named in messages. */
export function shortName(option: string): string {
  return option.startsWith('customizations.') ? option.slice('customizations.'.length) : option;
}

export interface SupportOptions {
  /** The table to use (default SUPPORT); the catalog passes its own when it adds image types. */
  support?: Readonly<Record<string, readonly string[]>>;
  whyNot?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * One `unsupported-option` diagnostic per option the blueprint uses that `type` does not
 * support (at the first place the option is written), in file order. An unknown `type` is an
 * Internal error: the caller picked it from the same table.
 */
export function checkSupport(bp: Blueprint, type: string, opts: SupportOptions = {}): Diagnostic[] {
  const table = opts.support ?? SUPPORT;
  const whyNot = opts.whyNot ?? WHY_NOT;
  const supported = table[type];
  if (!supported) throw new Error(`Internal error: no support table for image type "${type}"`);
  const out: Diagnostic[] = [];
  const reported = new Set<string>();
  for (const use of bp.used) {
    const row = optionOf(use.option);
    if (!row) throw new Error(`Internal error: blueprint field "${use.option}" has no row in OPTIONS`);
    if (supported.includes(row.option) || reported.has(row.option)) continue;
    reported.add(row.option);
    const name = shortName(row.option);
    if (!row.mapped) {
      out.push(diagnostic('unsupported-option', `"${name}" has no mapping in imgmake yet: ${row.summary}`, use.loc, `remove it: no image type supports it. Image type "${type}" supports: ${summary(supported)}.`));
      continue;
    }
    const why = whyNot[type]?.[row.option];
    const others = Object.keys(table).filter((t) => t !== type && table[t]!.includes(row.option));
    const elsewhere = others.length > 0 ? ` It is supported by ${listOf(others)}.` : '';
    out.push(
      diagnostic(
        'unsupported-option',
        `image type "${type}" does not support "${name}"${why ? `: ${why}` : ''}`,
        use.loc,
        `remove it, or build another image type.${elsewhere} "${type}" supports: ${summary(supported)}.`,
      ),
    );
  }
  return out;
}

/** The supported options as short names, leaving out the container rows (`customizations`, `kernel`). */
function summary(options: readonly string[]): string {
  const shown = options.filter((x) => !METADATA.includes(x) && !SECTIONS.includes(x));
  return listOf(shown.map(shortName));
}
