/**
 * What a blueprint may hold: composer's fields, each with the kind of value it takes. One
 * declarative table drives the decoder (decode.ts), the "did you mean" of unknown keys and the
 * option paths that support.ts refers to, so a field is named in one place.
 *
 * `unmapped` marks a field composer knows but imgmake maps onto nothing yet: it is accepted by
 * the reader (so it is not reported as a typo) and refused by `checkSupport` for every image
 * type, with its position. Nothing is silently ignored.
 */

export type Field =
  | { kind: 'string' }
  | { kind: 'integer'; min?: number; max?: number }
  | { kind: 'boolean' }
  /** Bytes: an integer, or a string with a unit ("10 GiB", "512 MB"). */
  | { kind: 'size' }
  /** A user or group: a name or a numeric id. */
  | { kind: 'owner' }
  /** An octal permission string, "0755" or "755". */
  | { kind: 'mode' }
  | { kind: 'boolOrString' }
  | { kind: 'strings' }
  | { kind: 'table'; fields: Fields; required?: readonly string[] }
  | { kind: 'tables'; fields: Fields; required?: readonly string[]; what: string }
  | { kind: 'unmapped' };

export type Fields = Readonly<Record<string, Field>>;

const string = { kind: 'string' } as const;
const boolean = { kind: 'boolean' } as const;
const strings = { kind: 'strings' } as const;
const unmapped = { kind: 'unmapped' } as const;
/** uid/gid: 0 … 2^32-2 (2^32-1 is "no id"). */
const id = { kind: 'integer', min: 0, max: 4294967294 } as const;

const pkg = { name: string, version: string } as const;

export const CUSTOMIZATIONS: Fields = {
  hostname: string,
  kernel: { kind: 'table', fields: { name: string, append: string } },
  user: {
    kind: 'tables',
    what: 'user',
    required: ['name'],
    fields: {
      name: string,
      description: string,
      password: string,
      key: string,
      home: string,
      shell: string,
      groups: strings,
      uid: id,
      gid: id,
      expiredate: unmapped,
      force_password_reset: unmapped,
    },
  },
  sshkey: { kind: 'tables', what: 'sshkey', required: ['user', 'key'], fields: { user: string, key: string } },
  group: { kind: 'tables', what: 'group', required: ['name'], fields: { name: string, gid: id } },
  timezone: { kind: 'table', fields: { timezone: string, ntpservers: strings } },
  locale: { kind: 'table', fields: { languages: strings, keyboard: string } },
  services: { kind: 'table', fields: { enabled: strings, disabled: strings, masked: strings } },
  firewall: {
    kind: 'table',
    fields: {
      ports: strings,
      services: { kind: 'table', fields: { enabled: strings, disabled: strings } },
      zones: unmapped,
    },
  },
  filesystem: {
    kind: 'tables',
    what: 'filesystem',
    required: ['mountpoint'],
    fields: { mountpoint: string, minsize: { kind: 'size' }, size: { kind: 'size' } },
  },
  directories: {
    kind: 'tables',
    what: 'directory',
    required: ['path'],
    fields: { path: string, user: { kind: 'owner' }, group: { kind: 'owner' }, mode: { kind: 'mode' }, ensure_parents: boolean },
  },
  files: {
    kind: 'tables',
    what: 'file',
    required: ['path'],
    fields: { path: string, user: { kind: 'owner' }, group: { kind: 'owner' }, mode: { kind: 'mode' }, data: string },
  },
  repositories: {
    kind: 'tables',
    what: 'repository',
    required: ['id'],
    fields: {
      id: string,
      name: string,
      filename: string,
      baseurls: strings,
      gpgkeys: strings,
      gpgcheck: boolean,
      enabled: boolean,
      priority: { kind: 'integer', min: 1, max: 99 },
      sslverify: boolean,
      mirrorlist: unmapped,
      metalink: unmapped,
      repo_gpgcheck: unmapped,
      module_hotfixes: unmapped,
      install_from: boolean,
      ssl_ca_cert: unmapped,
      ssl_client_key: unmapped,
      ssl_client_cert: unmapped,
    },
  },
  cacerts: { kind: 'table', fields: { pem_certs: strings } },
  firstboot: {
    kind: 'table',
    fields: {
      scripts: {
        kind: 'tables',
        what: 'firstboot script',
        required: ['type'],
        fields: {
          type: string,
          name: string,
          contents: string,
          after: strings,
          before: strings,
          ignore_failure: boolean,
          command: unmapped,
          job_template_url: unmapped,
          host_config_key: unmapped,
          cacerts: unmapped,
        },
      },
    },
  },
  sshd: {
    kind: 'table',
    fields: {
      password_authentication: boolean,
      challenge_response_authentication: boolean,
      client_alive_interval: { kind: 'integer', min: 0, max: 2147483647 },
      permit_root_login: { kind: 'boolOrString' },
    },
  },
  // composer fields with no meaning for the distributions imgmake builds yet.
  disk: unmapped,
  installation_device: unmapped,
  partitioning_mode: unmapped,
  fdo: unmapped,
  openscap: unmapped,
  ignition: unmapped,
  fips: unmapped,
  installer: unmapped,
  rpm: unmapped,
  rhsm: unmapped,
  'containers-storage': unmapped,
  dnf: unmapped,
  iso: unmapped,
};

export const TOP: Fields = {
  name: string,
  description: string,
  version: string,
  distro: string,
  architecture: string,
  packages: { kind: 'tables', what: 'package', required: ['name'], fields: pkg },
  modules: { kind: 'tables', what: 'module', required: ['name'], fields: pkg },
  groups: { kind: 'tables', what: 'group', required: ['name'], fields: { name: string } },
  customizations: { kind: 'table', fields: CUSTOMIZATIONS },
  enabled_modules: unmapped,
  containers: unmapped,
  minimal: unmapped,
};

/** Every option path the schema knows (`customizations.kernel.append`), in schema order. */
export function optionPaths(fields: Fields = TOP, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, f] of Object.entries(fields)) {
    const p = prefix ? `${prefix}.${k}` : k;
    out.push(p);
    if (f.kind === 'table' || f.kind === 'tables') out.push(...optionPaths(f.fields, p));
  }
  return out;
}
