/**
 * The typed blueprint. Property names are composer's keys as written in the file
 * (`ensure_parents`, `pem_certs`), so the file, the docs and the code use one name for a field.
 * Every value is a `Pos<T>` and every section has a `loc`: whatever later stage maps a field onto
 * a rule can point a failure back at the line that asked for it.
 *
 * Fields that composer knows but imgmake maps onto nothing yet are not in these types: they are
 * listed in `Blueprint.used` (with their positions) and refused by `checkSupport` for every image
 * type; support.ts is the table that says which.
 */
import type { Loc } from '../diagnostic.js';

/** A value and where it was written. */
export interface Pos<T> {
  value: T;
  loc: Loc;
}

export type BlueprintFormat = 'toml' | 'json' | 'yaml';

/** One field present in the blueprint, by its option path (`customizations.kernel.append`), for support checks. */
export interface OptionUse {
  /** Dotted path of composer keys, array entries without index: `customizations.user.groups`. */
  option: string;
  /** Where its key was written. */
  loc: Loc;
}

export interface Blueprint {
  /** Absolute path of the file it was read from. */
  file: string;
  format: BlueprintFormat;
  /** The whole document (its first line). */
  loc: Loc;
  name: Pos<string>;
  description?: Pos<string>;
  /** Semantic version, `MAJOR.MINOR.PATCH`; composer defaults it to 0.0.0. */
  version?: Pos<string>;
  /** Which distribution's definition to use (`debian-12`); the catalog decides what names it knows. */
  distro?: Pos<string>;
  architecture?: Pos<string>;
  packages: PackageSpec[];
  /** composer's "modules" are packages too (it installs both the same way). */
  modules: PackageSpec[];
  /** Package groups (`@name` in dnf). No mapping for apt: refused by `checkSupport`. */
  groups: PackageGroup[];
  customizations?: Customizations;
  /** Every field present, in file order, including those with no mapping yet. */
  used: OptionUse[];
}

export interface PackageSpec {
  loc: Loc;
  name: Pos<string>;
  /** A version or glob (`1.22.*`, `*`); absent or `*` means any version. */
  version?: Pos<string>;
}

export interface PackageGroup {
  loc: Loc;
  name: Pos<string>;
}

export interface Customizations {
  loc: Loc;
  hostname?: Pos<string>;
  kernel?: Kernel;
  user: User[];
  sshkey: SshKey[];
  group: Group[];
  timezone?: Timezone;
  locale?: Locale;
  services?: Services;
  firewall?: Firewall;
  filesystem: Filesystem[];
  directories: Directory[];
  files: File[];
  repositories: Repository[];
  cacerts?: CACerts;
  firstboot?: Firstboot;
  sshd?: Sshd;
}

export interface Kernel {
  loc: Loc;
  /** The kernel package (composer: `kernel`; Debian: `linux-image-amd64`). */
  name?: Pos<string>;
  /** Appended to the kernel command line. */
  append?: Pos<string>;
}

export interface User {
  loc: Loc;
  name: Pos<string>;
  description?: Pos<string>;
  /** A crypt(3) hash (`$6$…`, `$y$…`) or plain text, to be hashed reproducibly by the mapping; see `isCryptHash`. */
  password?: Pos<string>;
  /** One or more SSH public keys, one per line. */
  key?: Pos<string>;
  home?: Pos<string>;
  shell?: Pos<string>;
  groups: Pos<string>[];
  uid?: Pos<number>;
  gid?: Pos<number>;
}

/** composer's older form of "a user with a key": the user must exist (in the image or in `user`). */
export interface SshKey {
  loc: Loc;
  user: Pos<string>;
  key: Pos<string>;
}

export interface Group {
  loc: Loc;
  name: Pos<string>;
  gid?: Pos<number>;
}

export interface Timezone {
  loc: Loc;
  /** An IANA zone name: `Europe/Berlin`, `UTC`. */
  timezone?: Pos<string>;
  ntpservers: Pos<string>[];
}

export interface Locale {
  loc: Loc;
  /** The first is the system locale (`en_US.UTF-8`); all are generated. */
  languages: Pos<string>[];
  /** A console keymap (`us`, `de-nodeadkeys`). */
  keyboard?: Pos<string>;
}

export interface Services {
  loc: Loc;
  /** systemd unit names; without a suffix, `.service` is meant. */
  enabled: Pos<string>[];
  disabled: Pos<string>[];
  masked: Pos<string>[];
}

export interface Firewall {
  loc: Loc;
  /** `PORT:PROTO`, `FROM-TO:PROTO` or `SERVICE:PROTO` (`22:tcp`, `8000-8080:udp`); see `parsePort`. */
  ports: Pos<string>[];
  services?: { loc: Loc; enabled: Pos<string>[]; disabled: Pos<string>[] };
}

export interface Filesystem {
  loc: Loc;
  mountpoint: Pos<string>;
  /** Bytes; written as a number or a string such as "10 GiB" (composer's `size` is an alias). */
  minsize: Pos<number>;
}

/** A user or group as a name or a numeric id. */
export type Owner = string | number;

export interface Directory {
  loc: Loc;
  path: Pos<string>;
  user?: Pos<Owner>;
  group?: Pos<Owner>;
  /** Permission bits, parsed from the octal string (`"0755"` → 493). */
  mode?: Pos<number>;
  ensure_parents?: Pos<boolean>;
}

export interface File {
  loc: Loc;
  path: Pos<string>;
  user?: Pos<Owner>;
  group?: Pos<Owner>;
  mode?: Pos<number>;
  data?: Pos<string>;
}

export interface Repository {
  loc: Loc;
  id: Pos<string>;
  name?: Pos<string>;
  filename?: Pos<string>;
  /** URLs of the repository; for apt, `URL SUITE COMPONENT…` (see docs/blueprint.md). */
  baseurls: Pos<string>[];
  /** URLs of signing keys, or ASCII-armoured keys inline. */
  gpgkeys: Pos<string>[];
  gpgcheck?: Pos<boolean>;
  enabled?: Pos<boolean>;
  priority?: Pos<number>;
  sslverify?: Pos<boolean>;
  /** composer's: the image's packages are also resolved from it (the lock), not only its source file written. */
  install_from?: Pos<boolean>;
}

export interface CACerts {
  loc: Loc;
  /** PEM bundles, each one or more `-----BEGIN CERTIFICATE-----` blocks. */
  pem_certs: Pos<string>[];
}

export interface Firstboot {
  loc: Loc;
  scripts: FirstbootScript[];
}

export interface FirstbootScript {
  loc: Loc;
  /** Only `custom` has a mapping; `satellite` and `aap` are Red Hat services. */
  type: Pos<string>;
  name?: Pos<string>;
  contents?: Pos<string>;
  after: Pos<string>[];
  before: Pos<string>[];
  ignore_failure?: Pos<boolean>;
}

export interface Sshd {
  loc: Loc;
  password_authentication?: Pos<boolean>;
  challenge_response_authentication?: Pos<boolean>;
  client_alive_interval?: Pos<number>;
  /** `true`, `false`, or one of sshd's words: `yes`, `no`, `prohibit-password`, `forced-commands-only`. */
  permit_root_login?: Pos<boolean | string>;
}
