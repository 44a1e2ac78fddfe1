/**
 * Blueprints (src/blueprint/): the three formats give the same Blueprint; every field is read
 * with its position; every diagnostic (unknown field, wrong type, bad value, path policy,
 * duplicate, unsupported option) fires at the field that caused it; the examples are valid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  checkPath,
  checkSupport,
  FILES_POLICY,
  IMAGE_TYPES,
  isCryptHash,
  MOUNTPOINT_POLICY,
  OPTIONS,
  optionOf,
  parseBlueprint,
  parseDataSize,
  parsePort,
  readBlueprint,
  SUPPORT,
  type Blueprint,
  type Pos,
} from '../src/blueprint/index.js';
import { parseJson } from '../src/blueprint/json.js';
import { optionPaths, TOP } from '../src/blueprint/schema.js';
import type { Diagnostic } from '../src/diagnostic.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const temps: string[] = [];
after(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

function ok(text: string, file = '/bp/b.toml'): Blueprint {
  const r = parseBlueprint(text, file);
  if (!r.ok) assert.fail(r.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`).join('\n'));
  return r.value;
}

function errs(text: string, file = '/bp/b.toml'): Diagnostic[] {
  const r = parseBlueprint(text, file);
  assert.equal(r.ok, false, 'the blueprint was accepted');
  return r.ok ? [] : r.error;
}

/** The one diagnostic of `text`, checked for reason and position. */
function one(text: string, reason: Diagnostic['reason'], pos: string, re: RegExp, file = '/bp/b.toml'): Diagnostic {
  const ds = errs(text, file);
  assert.equal(ds.length, 1, ds.map((d) => d.message).join('\n'));
  const d = ds[0]!;
  assert.equal(d.reason, reason, d.message);
  assert.equal(`${d.loc?.line}:${d.loc?.col}`, pos, d.message);
  assert.match(d.message, re);
  assert.ok(d.hint, 'has a hint');
  return d;
}

const at = (p: Pos<unknown> | undefined) => (p ? `${p.loc.line}:${p.loc.col}` : 'absent');
const vals = <T>(ps: Pos<T>[]) => ps.map((p) => p.value);

// ---- the same blueprint in three formats ----

const TOML = `name = "web"
description = "d"
version = "1.2.3"
distro = "debian-12"

[[packages]]
name = "nginx"
version = "1.22.*"

[customizations]
hostname = "web1"

[customizations.kernel]
name = "linux-image-amd64"
append = "quiet"

[[customizations.user]]
name = "admin"
password = "secret"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA admin@x"
groups = ["sudo", "adm"]
uid = 1001
gid = 1001
home = "/home/admin"
shell = "/bin/bash"

[[customizations.sshkey]]
user = "root"
key = "ssh-rsa AAAAB3NzaC1yc2E root@x"

[[customizations.group]]
name = "web"
gid = 2000

[customizations.timezone]
timezone = "Europe/Berlin"
ntpservers = ["time.example"]

[customizations.locale]
languages = ["en_US.UTF-8"]
keyboard = "us"

[customizations.services]
enabled = ["nginx"]
disabled = ["apache2.service"]
masked = ["fstrim.timer"]

[customizations.firewall]
ports = ["80:tcp", "8000-8080:udp", "https:tcp"]
[customizations.firewall.services]
enabled = ["http"]

[[customizations.filesystem]]
mountpoint = "/var/log"
minsize = "2 GiB"

[[customizations.directories]]
path = "/srv/www"
user = "www-data"
group = 33
mode = "0755"
ensure_parents = true

[[customizations.files]]
path = "/srv/www/index.html"
mode = "644"
data = "hi"

[[customizations.repositories]]
id = "extra"
baseurls = ["https://repo.example/debian bookworm main"]
gpgkeys = ["https://repo.example/key.asc"]
gpgcheck = true

[customizations.cacerts]
pem_certs = ["-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----"]

[[customizations.firstboot.scripts]]
type = "custom"
name = "hello"
contents = "echo hi"
after = ["network-online.target"]

[customizations.sshd]
password_authentication = false
client_alive_interval = 60
permit_root_login = "prohibit-password"
`;

const JSON_TEXT = JSON.stringify({
  name: 'web', description: 'd', version: '1.2.3', distro: 'debian-12',
  packages: [{ name: 'nginx', version: '1.22.*' }],
  customizations: {
    hostname: 'web1',
    kernel: { name: 'linux-image-amd64', append: 'quiet' },
    user: [{ name: 'admin', password: 'secret', key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA admin@x', groups: ['sudo', 'adm'], uid: 1001, gid: 1001, home: '/home/admin', shell: '/bin/bash' }],
    sshkey: [{ user: 'root', key: 'ssh-rsa AAAAB3NzaC1yc2E root@x' }],
    group: [{ name: 'web', gid: 2000 }],
    timezone: { timezone: 'Europe/Berlin', ntpservers: ['time.example'] },
    locale: { languages: ['en_US.UTF-8'], keyboard: 'us' },
    services: { enabled: ['nginx'], disabled: ['apache2.service'], masked: ['fstrim.timer'] },
    firewall: { ports: ['80:tcp', '8000-8080:udp', 'https:tcp'], services: { enabled: ['http'] } },
    filesystem: [{ mountpoint: '/var/log', minsize: '2 GiB' }],
    directories: [{ path: '/srv/www', user: 'www-data', group: 33, mode: '0755', ensure_parents: true }],
    files: [{ path: '/srv/www/index.html', mode: '644', data: 'hi' }],
    repositories: [{ id: 'extra', baseurls: ['https://repo.example/debian bookworm main'], gpgkeys: ['https://repo.example/key.asc'], gpgcheck: true }],
    cacerts: { pem_certs: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'] },
    firstboot: { scripts: [{ type: 'custom', name: 'hello', contents: 'echo hi', after: ['network-online.target'] }] },
    sshd: { password_authentication: false, client_alive_interval: 60, permit_root_login: 'prohibit-password' },
  },
}, null, 2);

/** The blueprint without positions. */
function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('value' in o && 'loc' in o && Object.keys(o).length === 2) return o['value'];
    return Object.fromEntries(Object.entries(o).filter(([k]) => !['loc', 'file', 'format', 'used'].includes(k)).map(([k, x]) => [k, strip(x)]));
  }
  return v;
}

test('blueprint: TOML, JSON and YAML give the same blueprint', async () => {
  const { stringify } = await import('yaml');
  const fromToml = ok(TOML, '/bp/b.toml');
  const fromJson = ok(JSON_TEXT, '/bp/b.json');
  const fromYaml = ok(stringify(JSON.parse(JSON_TEXT)), '/bp/b.yaml');
  assert.deepEqual(strip(fromJson), strip(fromToml));
  assert.deepEqual(strip(fromYaml), strip(fromToml));
  assert.equal(fromToml.format, 'toml');
  assert.equal(fromJson.format, 'json');
  assert.equal(fromYaml.format, 'yaml');
});

test('blueprint: every field is read, with its value', () => {
  const b = ok(TOML);
  const c = b.customizations!;
  assert.equal(b.name.value, 'web');
  assert.equal(b.version!.value, '1.2.3');
  assert.equal(b.distro!.value, 'debian-12');
  assert.deepEqual(b.packages.map((p) => [p.name.value, p.version?.value]), [['nginx', '1.22.*']]);
  assert.deepEqual(b.modules, []);
  assert.equal(c.hostname!.value, 'web1');
  assert.equal(c.kernel!.append!.value, 'quiet');
  const u = c.user[0]!;
  assert.deepEqual([u.name.value, u.password!.value, vals(u.groups), u.uid!.value, u.gid!.value, u.home!.value, u.shell!.value], ['admin', 'secret', ['sudo', 'adm'], 1001, 1001, '/home/admin', '/bin/bash']);
  assert.equal(c.sshkey[0]!.user.value, 'root');
  assert.deepEqual([c.group[0]!.name.value, c.group[0]!.gid!.value], ['web', 2000]);
  assert.deepEqual([c.timezone!.timezone!.value, vals(c.timezone!.ntpservers)], ['Europe/Berlin', ['time.example']]);
  assert.deepEqual([vals(c.locale!.languages), c.locale!.keyboard!.value], [['en_US.UTF-8'], 'us']);
  assert.deepEqual([vals(c.services!.enabled), vals(c.services!.disabled), vals(c.services!.masked)], [['nginx'], ['apache2.service'], ['fstrim.timer']]);
  assert.deepEqual(vals(c.firewall!.ports), ['80:tcp', '8000-8080:udp', 'https:tcp']);
  assert.deepEqual(vals(c.firewall!.services!.enabled), ['http']);
  assert.deepEqual(c.firewall!.services!.disabled, []);
  assert.deepEqual([c.filesystem[0]!.mountpoint.value, c.filesystem[0]!.minsize.value], ['/var/log', 2 * 1024 ** 3]);
  const dir = c.directories[0]!;
  assert.deepEqual([dir.path.value, dir.user!.value, dir.group!.value, dir.mode!.value, dir.ensure_parents!.value], ['/srv/www', 'www-data', 33, 0o755, true]);
  assert.deepEqual([c.files[0]!.mode!.value, c.files[0]!.data!.value], [0o644, 'hi']);
  const r = c.repositories[0]!;
  assert.deepEqual([r.id.value, vals(r.baseurls), vals(r.gpgkeys), r.gpgcheck!.value], ['extra', ['https://repo.example/debian bookworm main'], ['https://repo.example/key.asc'], true]);
  assert.equal(c.cacerts!.pem_certs.length, 1);
  const s = c.firstboot!.scripts[0]!;
  assert.deepEqual([s.type.value, s.name!.value, s.contents!.value, vals(s.after), vals(s.before)], ['custom', 'hello', 'echo hi', ['network-online.target'], []]);
  assert.deepEqual([c.sshd!.password_authentication!.value, c.sshd!.client_alive_interval!.value, c.sshd!.permit_root_login!.value], [false, 60, 'prohibit-password']);
});

test('blueprint: values keep their positions in TOML', () => {
  const b = ok(TOML);
  const c = b.customizations!;
  assert.equal(at(b.name), '1:8');
  assert.equal(at(b.packages[0]!.version), '8:11');
  assert.equal(at(c.hostname), '11:12');
  assert.equal(at(c.user[0]!.groups[1]), '21:19');
  assert.equal(`${c.user[0]!.loc.line}:${c.user[0]!.loc.col}`, '17:1');
  assert.equal(at(c.filesystem[0]!.minsize), '55:11');
  assert.equal(c.filesystem[0]!.minsize.loc.file, '/bp/b.toml');
});

test('blueprint: values keep their positions in JSON and YAML', () => {
  const j = ok('{\n  "name": "x",\n  "customizations": {\n    "hostname": "h"\n  }\n}\n', '/bp/b.json');
  assert.equal(at(j.name), '2:11');
  assert.equal(at(j.customizations!.hostname), '4:17');
  const y = ok('name: x\ncustomizations:\n  hostname: h\n  user:\n    - name: u\n', '/bp/b.yaml');
  assert.equal(at(y.customizations!.hostname), '3:13');
  assert.equal(at(y.customizations!.user[0]!.name), '5:13');
});

test('blueprint: used lists every field with the position of its key', () => {
  const b = ok('name = "x"\n[customizations.kernel]\nappend = "quiet"\n');
  assert.deepEqual(b.used.map((u) => `${u.option}@${u.loc.line}:${u.loc.col}`), ['name@1:1', 'customizations@2:2', 'customizations.kernel@2:17', 'customizations.kernel.append@3:1']);
});

test('blueprint: modules and groups, dotted package lists', () => {
  const b = ok('name = "x"\nmodules = [{ name = "m" }]\npackages = [{ name = "a" }, { name = "b", version = "*" }]\n');
  assert.deepEqual(b.modules.map((m) => m.name.value), ['m']);
  assert.deepEqual(b.packages.map((m) => m.name.value), ['a', 'b']);
});

test('blueprint: filesystem size as a number, a string, and composer\'s old "size"', () => {
  const b = ok('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = 1024\n[[customizations.filesystem]]\nmountpoint = "/b"\nsize = "1 MB"\n');
  assert.deepEqual(b.customizations!.filesystem.map((f) => f.minsize.value), [1024, 1_000_000]);
  assert.equal('size' in b.customizations!.filesystem[1]!, false);
});

test('blueprint: parseDataSize reads composer\'s units', () => {
  assert.equal(parseDataSize('10 GiB'), 10 * 1024 ** 3);
  assert.equal(parseDataSize('10GiB'), 10 * 1024 ** 3);
  assert.equal(parseDataSize('2 GB'), 2e9);
  assert.equal(parseDataSize('512 mib'), 512 * 1024 ** 2);
  assert.equal(parseDataSize('1 kB'), 1000);
  assert.equal(parseDataSize('1 KiB'), 1024);
  assert.equal(parseDataSize('4096'), 4096);
  assert.equal(parseDataSize('1 TiB'), 1024 ** 4);
  assert.equal(parseDataSize('1.5 GiB'), undefined);
  assert.equal(parseDataSize('10 GIGS'), undefined);
  assert.equal(parseDataSize(''), undefined);
});

test('blueprint: isCryptHash tells hashes from plain text', () => {
  assert.ok(isCryptHash('$6$salt$abcdefghijklmnop'));
  assert.ok(isCryptHash('$y$j9T$abc$def'));
  assert.ok(isCryptHash('$2b$10$abcdef'));
  assert.ok(isCryptHash('$5$rounds=1000$x$y'));
  assert.ok(!isCryptHash('secret'));
  assert.ok(!isCryptHash('$notahash'));
  assert.ok(!isCryptHash('$6$'));
});

test('blueprint: parsePort', () => {
  assert.deepEqual(parsePort('22:tcp'), { ok: true, from: 22, to: 22, protocol: 'tcp' });
  assert.deepEqual(parsePort('8000-8080:udp'), { ok: true, from: 8000, to: 8080, protocol: 'udp' });
  assert.deepEqual(parsePort('imap:tcp'), { ok: true, from: 'imap', to: 'imap', protocol: 'tcp' });
  for (const bad of ['22', '22:icmp', '0:tcp', '70000:tcp', '9-1:tcp', ':tcp', 'a b:tcp']) assert.equal(parsePort(bad).ok, false, bad);
});

test('blueprint: path policies are composer\'s', () => {
  const allowed = (p: string) => checkPath(FILES_POLICY, p).ok;
  assert.ok(allowed('/etc/motd'));
  assert.ok(allowed('/usr/local/bin/x'));
  assert.ok(allowed('/etc/fstab.d'));
  assert.ok(allowed('/opt/app/conf'));
  for (const p of ['/usr/bin/x', '/usr', '/boot/grub/grub.cfg', '/etc/fstab', '/etc/passwd', '/etc/shadow', '/etc/group', '/tmp/x', '/var/tmp/x', '/var/run/x', '/proc/x', '/bin/sh', '/lib64/x', '/efi/x', '/sysroot/x']) {
    assert.equal(allowed(p), false, p);
  }
  assert.deepEqual(checkPath(FILES_POLICY, 'etc/x'), { ok: false, why: 'relative' });
  assert.deepEqual(checkPath(FILES_POLICY, '/etc//x/'), { ok: false, why: 'not-canonical', canonical: '/etc/x' });
  assert.deepEqual(checkPath(FILES_POLICY, '/etc/../usr/x'), { ok: false, why: 'not-canonical', canonical: '/usr/x' });
  const mount = (p: string) => checkPath(MOUNTPOINT_POLICY, p).ok;
  assert.ok(mount('/var/log'));
  assert.ok(mount('/home'));
  assert.ok(mount('/usr'));
  assert.ok(mount('/boot'));
  for (const p of ['/usr/local', '/etc', '/etc/x', '/proc', '/boot/efi', '/var/run', '/var/lock', '/lost+found']) assert.equal(mount(p), false, p);
});

// ---- diagnostics, one per kind, at the field ----

test('diagnostic: unknown field, with did-you-mean and the allowed fields', () => {
  const d = one('name = "x"\n[customizations]\nhostnme = "h"\n', 'unknown-key', '3:1', /unknown field "hostnme" in "customizations"/);
  assert.match(d.hint!, /did you mean "hostname"\?/);
  const top = one('nmae = "x"\nname = "y"\n', 'unknown-key', '1:1', /unknown field "nmae" in the blueprint/);
  assert.match(top.hint!, /did you mean "name"\?/);
  const u = one('name = "x"\n[[customizations.user]]\nname = "a"\ngroup = ["b"]\n', 'unknown-key', '4:1', /unknown field "group" in user entry/);
  assert.match(u.hint!, /did you mean "groups"\?/);
});

test('diagnostic: unknown field in JSON and YAML point at the key', () => {
  one('{"name": "x", "customizations": {"hostnam": "h"}}', 'unknown-key', '1:34', /hostnam/, '/bp/b.json');
  one('name: x\ncustomizations:\n  sevices: {}\n', 'unknown-key', '3:3', /sevices/, '/bp/b.yaml');
});

test('diagnostic: missing name and missing required keys', () => {
  one('description = "x"\n', 'missing-key', '1:1', /the blueprint has no "name"/);
  one('name = "x"\n[[packages]]\nversion = "1"\n', 'missing-key', '2:1', /package entry has no "name"/);
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/a"\n', 'missing-key', '2:1', /filesystem entry has no "minsize"/);
  one('name = "x"\n[[customizations.sshkey]]\nuser = "a"\n', 'missing-key', '2:1', /sshkey entry has no "key"/);
});

test('diagnostic: wrong types', () => {
  one('name = 1\n', 'wrong-type', '1:8', /"name" of the blueprint must be a string, not an integer \(1\)/);
  one('name = "x"\n[[customizations.user]]\nname = "a"\nuid = "1000"\n', 'wrong-type', '4:7', /"uid" of user entry must be an integer/);
  one('name = "x"\n[customizations]\nhostname = ["a"]\n', 'wrong-type', '3:12', /must be a string, not an array/);
  one('name = "x"\n[customizations.services]\nenabled = "nginx"\n', 'wrong-type', '3:11', /must be an array of strings/);
  one('name = "x"\n[customizations.services]\nenabled = ["a", 1]\n', 'wrong-type', '3:17', /each item of "enabled"/);
  one('name = "x"\n[customizations.user]\nname = "a"\n', 'wrong-type', '2:1', /"user" of "customizations" must be an array of tables/);
  one('name = "x"\ncustomizations = 3\n', 'wrong-type', '2:18', /must be a table/);
  one('name = "x"\n[[customizations.files]]\npath = "/etc/x"\nmode = 644\n', 'wrong-type', '4:8', /must be an octal string/);
  one('name = "x"\n[customizations.sshd]\npassword_authentication = "no"\n', 'wrong-type', '3:27', /must be true or false/);
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = 1.5\n', 'wrong-type', '4:11', /must be a size/);
  one('{"name": null}', 'wrong-type', '1:10', /must be a string, not empty \(null\)/, '/bp/b.json');
});

test('diagnostic: values out of range or unreadable', () => {
  one('name = "x"\n[[customizations.user]]\nname = "a"\nuid = -1\n', 'invalid-value', '4:7', /between 0 and 4294967294/);
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = "ten gigs"\n', 'invalid-value', '4:11', /is not a size/);
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = 0\n', 'invalid-value', '4:11', /more than 0 bytes/);
  one('name = "x"\n[[customizations.files]]\npath = "/etc/x"\nmode = "0999"\n', 'invalid-value', '4:8', /not an octal mode/);
  one('name = "x"\nversion = "1.0"\n', 'invalid-value', '2:11', /the version "1.0" is not valid/);
  one('name = "my blueprint"\n', 'invalid-value', '1:8', /the blueprint name/);
  one('name = "x"\n[[packages]]\nname = "-bad"\n', 'invalid-value', '3:8', /the package name/);
});

test('diagnostic: invalid names of users, groups, services, hosts, zones, locales', () => {
  one('name = "x"\n[[customizations.user]]\nname = "Admin"\n', 'invalid-value', '3:8', /the user name "Admin"/);
  one('name = "x"\n[[customizations.user]]\nname = "a"\ngroups = ["wheel group"]\n', 'invalid-value', '4:11', /the group name "wheel group"/);
  one('name = "x"\n[[customizations.group]]\nname = "1abc"\n', 'invalid-value', '3:8', /the group name/);
  one('name = "x"\n[customizations.services]\nenabled = ["ngi nx"]\n', 'invalid-value', '3:12', /the unit name "ngi nx"/);
  one('name = "x"\n[customizations.services]\nenabled = ["../etc/x"]\n', 'invalid-value', '3:12', /the unit name/);
  one('name = "x"\n[customizations]\nhostname = "web_1"\n', 'invalid-value', '3:12', /the hostname "web_1"/);
  one('name = "x"\n[customizations]\nhostname = "-web"\n', 'invalid-value', '3:12', /the hostname/);
  one('name = "x"\n[customizations.timezone]\ntimezone = "Europe Berlin"\n', 'invalid-value', '3:12', /the timezone/);
  one('name = "x"\n[customizations.locale]\nlanguages = ["english"]\n', 'invalid-value', '3:14', /the language "english"/);
  one('name = "x"\n[customizations.firewall]\nports = ["22"]\n', 'invalid-value', '3:10', /the firewall port "22"/);
  one('name = "x"\n[customizations.sshd]\npermit_root_login = "maybe"\n', 'invalid-value', '3:21', /permit_root_login "maybe"/);
  one('name = "x"\n[[customizations.user]]\nname = "a"\nkey = "not a key"\n', 'invalid-value', '4:7', /not an OpenSSH public key/);
  one('name = "x"\n[[customizations.user]]\nname = "a"\nhome = "home/a"\n', 'invalid-value', '4:8', /not an absolute path/);
  one('name = "x"\n[customizations.cacerts]\npem_certs = ["hello"]\n', 'invalid-value', '3:14', /not a PEM certificate/);
  one('name = "x"\n[[customizations.firstboot.scripts]]\ntype = "ansible"\n', 'invalid-value', '3:8', /unknown firstboot script type/);
  one('name = "x"\n[[customizations.firstboot.scripts]]\ntype = "custom"\n', 'missing-key', '2:1', /has no "contents"/);
});

test('diagnostic: repositories', () => {
  one('name = "x"\n[[customizations.repositories]]\nid = "r"\n', 'missing-key', '2:1', /repository "r" has no "baseurls"/);
  one('name = "x"\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["repo.example/debian"]\n', 'invalid-value', '4:13', /is not a URL/);
  one('name = "x"\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["https://r.example/"]\ngpgcheck = true\n', 'missing-key', '5:12', /no "gpgkeys"/);
  one('name = "x"\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["https://r.example/"]\ngpgkeys = ["xyz"]\n', 'invalid-value', '5:12', /neither a URL nor an armoured key/);
});

test('diagnostic: paths outside the policy, with the reason and where to go instead', () => {
  const d = one('name = "x"\n[[customizations.files]]\npath = "/usr/bin/tool"\n', 'path-policy', '3:8', /file "\/usr\/bin\/tool" is not allowed: nothing under \/usr may be written by a blueprint \(except under \/usr\/local\)/);
  assert.match(d.hint!, /\/usr\/local/);
  const f = one('name = "x"\n[[customizations.files]]\npath = "/etc/fstab"\n', 'path-policy', '3:8', /\/etc\/fstab may not be written/);
  assert.match(f.hint!, /written by the build from other fields/);
  one('name = "x"\n[[customizations.directories]]\npath = "/boot/x"\n', 'path-policy', '3:8', /directory "\/boot\/x" is not allowed/);
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/etc"\nminsize = 1\n', 'path-policy', '3:14', /mountpoint "\/etc" is not allowed/);
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/usr/share"\nminsize = 1\n', 'path-policy', '3:14', /only \/usr itself may be a mountpoint/);
  one('name = "x"\n[[customizations.files]]\npath = "etc/motd"\n', 'invalid-value', '3:8', /not an absolute path/);
  one('name = "x"\n[[customizations.files]]\npath = "/etc/./motd"\n', 'invalid-value', '3:8', /not in canonical form/);
});

test('diagnostic: names given twice point at both', () => {
  const cases: [string, string, RegExp][] = [
    ['[[customizations.user]]\nname = "a"\n[[customizations.user]]\nname = "a"\n', '5:8', /the user "a" is given twice/],
    ['[[customizations.user]]\nname = "a"\nuid = 5\n[[customizations.user]]\nname = "b"\nuid = 5\n', '7:7', /the uid 5 is given twice/],
    ['[[customizations.group]]\nname = "g"\n[[customizations.group]]\nname = "g"\n', '5:8', /the group "g" is given twice/],
    ['[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = 1\n[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = 2\n', '6:14', /the mountpoint "\/a" is given twice/],
    ['[[customizations.directories]]\npath = "/opt/a"\n[[customizations.files]]\npath = "/opt/a"\n', '5:8', /the path "\/opt\/a" is given twice/],
    ['[customizations.services]\nenabled = ["nginx"]\ndisabled = ["nginx.service"]\n', '4:13', /the unit "nginx.service" is both enabled and disabled/],
    ['[[packages]]\nname = "vim"\n[[packages]]\nname = "vim"\n', '5:8', /the package "vim" is given twice/],
    ['[[customizations.repositories]]\nid = "r"\nbaseurls = ["https://a/"]\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["https://b/"]\n', '6:6', /the repository id "r" is given twice/],
  ];
  for (const [text, pos, re] of cases) {
    const d = one(`name = "x"\n${text}`, 'duplicate', pos, re);
    assert.equal(d.related?.length, 1, 'the first one is shown too');
  }
  one('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/a"\nminsize = 1\nsize = 2\n', 'duplicate', '5:8', /both "size" and "minsize"/);
});

test('diagnostic: every mistake in a file is reported, in file order', () => {
  const ds = errs('name = "x"\n[customizations]\nhostnme = "h"\n[customizations.services]\nenabled = "a"\n[[customizations.user]]\nuid = "1"\n');
  assert.deepEqual(ds.map((d) => `${d.reason}@${d.loc?.line}`), ['unknown-key@3', 'wrong-type@5', 'missing-key@6', 'wrong-type@7']);
});

test('diagnostic: syntax errors of each format', () => {
  one('name = "x\n', 'toml-syntax', '1:8', /unterminated string/);
  one('{"name": "x",}', 'json-syntax', '1:13', /trailing comma/, '/bp/b.json');
  one('{"name": "x" "d": 1}', 'json-syntax', '1:14', /expected "," or "}"/, '/bp/b.json');
  one('{"name": "x", "name": "y"}', 'duplicate', '1:15', /the key "name" is given twice/, '/bp/b.json');
  one('[1]', 'wrong-type', '1:1', /must be a JSON object/, '/bp/b.json');
  const y = errs('name: x\n  bad: [\n', '/bp/b.yaml');
  assert.equal(y[0]!.reason, 'yaml-syntax');
  one('name: x\nname: y\n', 'duplicate', '2:1', /unique/i, '/bp/b.yaml');
  const f = errs('name = "x"', '/bp/b.ini');
  assert.equal(f[0]!.reason, 'bad-file');
});

test('json: the scanner reads every JSON value', () => {
  const r = parseJson('{"s": "a\\u00e9\\n", "i": -12, "f": 1.5e2, "t": true, "n": null, "a": [1, [2], {}], "o": {"k": false}}', 'f');
  assert.ok(r.ok);
  const e = r.value.entries;
  assert.equal((e.get('s')!.value as { value: string }).value, 'aé\n');
  assert.equal(e.get('i')!.value.type, 'integer');
  assert.equal(e.get('f')!.value.type, 'float');
  assert.equal(e.get('n')!.value.type, 'null');
  for (const bad of ['{"a": 01}', '{"a": .5}', "{'a': 1}", '{"a": 1} x', '{"a": [1,]}', '{a: 1}', '{"a": "\\x"}', '{"a": tru}', '{"a": 1 // c\n}']) {
    assert.equal(parseJson(bad, 'f').ok, false, bad);
  }
});

// ---- support per image type ----

test('support: tar refuses filesystem and kernel append, at the field, naming the type and what it supports', () => {
  const b = ok('name = "x"\n[customizations.kernel]\n\nappend = "quiet"\n[[customizations.filesystem]]\nmountpoint = "/var"\nminsize = "1 GiB"\n');
  assert.deepEqual(checkSupport(b, 'qcow2'), []);
  assert.deepEqual(checkSupport(b, 'raw'), []);
  const ds = checkSupport(b, 'tar');
  assert.deepEqual(ds.map((d) => `${d.reason}@${d.loc?.line}:${d.loc?.col}`), ['unsupported-option@4:1', 'unsupported-option@5:18']);
  assert.match(ds[0]!.message, /image type "tar" does not support "kernel.append": a tar archive has no bootloader/);
  assert.match(ds[1]!.message, /image type "tar" does not support "filesystem": a tar archive has no disk/);
  assert.match(ds[1]!.hint!, /supported by qcow2, raw, vmdk, vhd, gce, raw\.xz and raw\.zst/);
  assert.match(ds[1]!.hint!, /"tar" supports: .*hostname, kernel\.name, user/);
  assert.doesNotMatch(ds[1]!.hint!, /filesystem/);
});

test('support: a field with no mapping is refused by every type, once per option', () => {
  const b = ok('name = "x"\n[[groups]]\nname = "base"\n[customizations]\nfips = true\n[[customizations.user]]\nname = "a"\nexpiredate = 12345\n[[customizations.user]]\nname = "b"\nexpiredate = 1\n');
  for (const t of IMAGE_TYPES) {
    const ds = checkSupport(b, t);
    assert.deepEqual(ds.map((d) => `${d.loc?.line}:${d.loc?.col}`), ['2:3', '5:1', '8:1'], t);
    assert.match(ds[1]!.message, /"fips" has no mapping in imgmake yet: FIPS mode/);
    assert.match(ds[2]!.message, /"user.expiredate"/);
  }
});

test('support: every field of the schema belongs to an option row, and unmapped fields to unmapped rows', () => {
  for (const path of optionPaths(TOP)) assert.ok(optionOf(path), `no OPTIONS row for ${path}`);
  const walk = (fields: typeof TOP, prefix: string) => {
    for (const [k, f] of Object.entries(fields)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (f.kind === 'unmapped') assert.equal(optionOf(p)!.mapped, false, `${p} is unmapped in the schema but mapped in OPTIONS`);
      if (f.kind === 'table' || f.kind === 'tables') walk(f.fields, p);
    }
  };
  walk(TOP, '');
  for (const row of OPTIONS) {
    for (const t of Object.keys(SUPPORT)) if (!row.mapped) assert.ok(!SUPPORT[t]!.includes(row.option), `${t} supports unmapped ${row.option}`);
  }
});

// ---- files and examples ----

test('readBlueprint: the examples are valid and build every disk type', async () => {
  for (const name of ['web.toml', 'dev.toml']) {
    const r = await readBlueprint(join(repo, 'examples', 'blueprints', name));
    assert.ok(r.ok, r.ok ? '' : r.error.map((d) => d.message).join('\n'));
    assert.deepEqual(checkSupport(r.value, 'qcow2'), [], name);
    assert.deepEqual(checkSupport(r.value, 'raw'), [], name);
  }
  const web = await readBlueprint(join(repo, 'examples', 'blueprints', 'web.toml'));
  assert.ok(web.ok);
  const c = web.value.customizations!;
  assert.ok(web.value.packages.some((p) => p.name.value === 'nginx'));
  assert.ok(c.user[0]!.key && c.user[0]!.groups.length > 0);
  assert.ok(c.services!.enabled.length > 0 && c.firewall!.ports.length > 0 && c.files.length > 0);
  assert.deepEqual(checkSupport(web.value, 'tar'), [], 'web.toml builds a tar too');
});

test('readBlueprint: missing file, directory, bad UTF-8, unknown extension', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-bp-'));
  temps.push(dir);
  const missing = await readBlueprint(join(dir, 'nope.toml'));
  assert.ok(!missing.ok && missing.error[0]!.reason === 'bad-file' && /does not exist/.test(missing.error[0]!.message));
  const isDir = await readBlueprint(dir);
  assert.ok(!isDir.ok && isDir.error[0]!.reason === 'bad-file');
  writeFileSync(join(dir, 'bin.toml'), Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x20, 0x3d, 0x20, 0x22, 0xff, 0x22]));
  const bin = await readBlueprint(join(dir, 'bin.toml'));
  assert.ok(!bin.ok && bin.error[0]!.reason === 'bad-encoding');
  writeFileSync(join(dir, 'b.txt'), 'name = "x"\n');
  const ext = await readBlueprint(join(dir, 'b.txt'));
  assert.ok(!ext.ok && ext.error[0]!.reason === 'bad-file');
  const forced = await readBlueprint(join(dir, 'b.txt'), 'toml');
  assert.ok(forced.ok);
  assert.equal(forced.value.file, join(dir, 'b.txt'));
});

// ---- YAML specifics ----

test('yaml: an empty value is null, and reported as such', () => {
  one('name: x\ncustomizations:\n  hostname:\n', 'wrong-type', '3:3', /"hostname" of "customizations" must be a string, not empty \(null\)/, '/bp/b.yaml');
});

test('yaml: aliases are resolved', () => {
  const b = ok('name: x\ncustomizations:\n  services:\n    enabled: &units [nginx, ssh]\n    masked: []\n  firstboot:\n    scripts:\n      - type: custom\n        contents: echo\n        after: *units\n', '/bp/b.yaml');
  assert.deepEqual(vals(b.customizations!.firstboot!.scripts[0]!.after), ['nginx', 'ssh']);
});

test('yaml: numbers that look like strings stay typed as the user wrote them', () => {
  one('name: x\nversion: 1.0\n', 'wrong-type', '2:10', /must be a string, not a number \(1\)/, '/bp/b.yaml');
  const b = ok('name: x\ncustomizations:\n  user:\n    - name: a\n      uid: 0x10\n', '/bp/b.yml');
  assert.equal(b.customizations!.user[0]!.uid!.value, 16);
});

test('yaml: the top level must be a mapping; an empty file has no name', () => {
  one('- a\n- b\n', 'wrong-type', '1:1', /must be a YAML mapping, not a list/, '/bp/b.yaml');
  one('', 'missing-key', '1:1', /the blueprint has no "name"/, '/bp/b.yaml');
  one('? [a]\n: 1\nname: x\n', 'wrong-type', '1:3', /a key of a blueprint must be a plain name/, '/bp/b.yaml');
});
