/**
 * The built-in catalog (src/catalog/, catalog/): the index agrees with the definitions it names;
 * `imgmake list` and its filters; a blueprint mapped onto stages in the order an OS needs them,
 * values it cannot honour refused at their file:line:column; the composed definition loads with
 * the ordinary loader; and how `build`/`plan` choose between a project and the catalog. No
 * stage runs here (test/catalog-e2e.test.ts builds and boots).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { parseBlueprint, type Blueprint } from '../src/blueprint/index.js';
import { compose } from '../src/catalog/compose.js';
import { mapBlueprint, xkbOf, type Customization } from '../src/catalog/customize.js';
import { installFrom, repositoryFiles } from '../src/packages/apt/repositories.js';

/** The catalog's mapping as the CLI composes it for a Debian image (apt sources for repositories, and the lock's for install_from). */
const mapDebian = (b: Parameters<typeof mapBlueprint>[0]) => mapBlueprint(b, { repositories: repositoryFiles, installFrom });
import { passwordSalt, sha512Crypt } from '../src/catalog/crypt.js';
import { SERVICES } from '../src/catalog/firewall.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { CATALOG_DIR, globMatch, listRows, parseFilter, pickImage, readCatalog, userCacheDir } from '../src/catalog/index.js';
import { hostDefaults } from '../src/cli/context.js';
import { load } from '../src/load/index.js';
import { loadRules } from '../src/rule.js';
import { imgmake, repoRoot, tempProject } from './helpers/cli.js';

const temps: string[] = [];
after(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'imgmake-catalog-'));
  temps.push(d);
  return d;
};

function bp(text: string, file = '/bp/b.toml'): Blueprint {
  const r = parseBlueprint(text, file);
  if (!r.ok) assert.fail(r.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`).join('\n'));
  return r.value;
}

function mapped(text: string): Customization {
  const r = mapDebian(bp(text));
  if (!r.ok) assert.fail(r.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`).join('\n'));
  return r.value;
}

test('the index agrees with each definition it names: its targets, their files, the disk size', async () => {
  const images = await readCatalog();
  assert.ok(images.some((i) => i.distro === 'debian-12' && i.arch === 'x86_64'));
  const rules = await loadRules();
  for (const img of images) {
    const def = await load({ file: img.definition, rules, hostDefaults: await hostDefaults() });
    assert.ok(def.ok, def.ok ? '' : def.error.map((d) => d.message).join('\n'));
    assert.deepEqual([...def.value.targets.keys()].sort(), img.types.map((t) => t.name).sort());
    for (const t of img.types) {
      // The file `imgmake list` names is the one the target exports first (ostree-commit: its repository, then ostree-commit.json).
      assert.equal(def.value.targets.get(t.name)!.export[0], t.filename, `${img.distro} ${t.name}`);
      if (t.size) assert.equal(def.value.vars['disk_size'], t.size);
    }
    const stage = def.value.pipelines.get(img.packages.pipeline as never)?.stages.find((s) => s.id === img.packages.stage);
    assert.ok(stage && Array.isArray(stage.options['packages']), 'the package stage the index names exists');
  }
});

test('list rows: every distro × arch × type, filtered by globs on distro, arch and type', async () => {
  const images = await readCatalog();
  const all = listRows(images);
  assert.deepEqual(all.map((r) => r.type), ['qcow2', 'raw', 'tar', 'iso', 'vmdk', 'vhd', 'gce', 'raw.xz', 'raw.zst', 'oci', 'ostree-commit', 'ostree-raw', 'ostree-qcow2']);
  assert.deepEqual(all.find((r) => r.type === 'iso'), {
    distro: 'debian-12', arch: 'x86_64', type: 'iso', filename: 'live.iso',
    options: all.find((r) => r.type === 'qcow2')!.options.filter((o) => o !== 'filesystem'),
  }, 'a bootloader (kernel.append), no disk (filesystem)');
  assert.ok(all.find((r) => r.type === 'iso')!.options.includes('kernel.append'));
  assert.deepEqual(all.find((r) => r.type === 'oci')!.options, all.find((r) => r.type === 'tar')!.options, 'a container: no disk, no bootloader');
  for (const t of ['vmdk', 'vhd', 'gce', 'raw.xz', 'raw.zst']) assert.deepEqual(all.find((r) => r.type === t)!.options, all.find((r) => r.type === 'raw')!.options, t);
  assert.deepEqual(all.find((r) => r.type === 'qcow2'), {
    distro: 'debian-12', arch: 'x86_64', type: 'qcow2', filename: 'disk.qcow2', size: '3G',
    options: ['packages', 'modules', 'hostname', 'kernel.name', 'kernel.append', 'user', 'sshkey', 'group', 'timezone', 'locale', 'services', 'firewall.ports', 'firewall.services', 'filesystem', 'directories', 'files', 'repositories', 'cacerts', 'firstboot', 'sshd'],
  });
  assert.deepEqual(all.find((r) => r.type === 'tar')!.options, ['packages', 'modules', 'hostname', 'kernel.name', 'user', 'sshkey', 'group', 'timezone', 'locale', 'services', 'firewall.ports', 'firewall.services', 'directories', 'files', 'repositories', 'cacerts', 'firstboot', 'sshd'], 'no disk, no bootloader');
  const f = (...xs: string[]) => xs.map((x) => { const p = parseFilter(x); assert.ok(p.ok); return p.value; });
  assert.deepEqual(listRows(images, f('type:q*')).map((r) => r.type), ['qcow2']);
  assert.deepEqual(listRows(images, f('type:tar', 'type:raw')).map((r) => r.type), ['raw', 'tar'], 'two filters on one key: either');
  assert.deepEqual(listRows(images, f('type:raw.*')).map((r) => r.type), ['raw.xz', 'raw.zst']);
  assert.deepEqual(listRows(images, f('distro:debian-*', 'arch:x86_64', 'type:ra?')).map((r) => r.type), ['raw']);
  assert.deepEqual(listRows(images, f('distro:fedora-*')), []);
  assert.ok(globMatch('debian-1?', 'debian-12') && !globMatch('debian', 'debian-12') && globMatch('a.b', 'a.b') && !globMatch('a.b', 'axb'));
  const bad = parseFilter('typ:qcow2');
  assert.ok(!bad.ok && /KEY one of distro, arch and type/.test(bad.error.message) && /did you mean type:qcow2/.test(bad.error.hint!));
  assert.ok(!parseFilter('type:').ok);
});

test('imgmake list: a table, --json, --filter; a bad filter is exit 2', async () => {
  const table = await imgmake(['list']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^DISTRO +ARCH +TYPE +FILENAME +SIZE +BLUEPRINT OPTIONS\n/);
  assert.match(table.stdout, /\ndebian-12 +x86_64 +qcow2 +disk\.qcow2 +3G +packages, modules, hostname, kernel\.name, kernel\.append, user,/);
  assert.match(table.stdout, /\ndebian-12 +x86_64 +tar +rootfs\.tar\.zst +- +packages/);
  const json = await imgmake(['list', '--json', '--filter', 'type:raw']);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.events.length, 1);
  assert.deepEqual({ ...json.events[0], options: undefined }, { type: 'image', distro: 'debian-12', arch: 'x86_64', imageType: 'raw', filename: 'disk.raw', size: '3G', options: undefined });
  assert.ok(json.events[0]!['options'].includes('filesystem') && !json.events[0]!['options'].includes('openscap'), 'the support table, as mapped');
  const bad = await imgmake(['list', '--filter', 'colour:red']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--filter colour:red: not KEY:VALUE/);
});

test('pickImage: defaults debian-12 x86_64; an unknown distro, arch or type names the known ones', async () => {
  const images = await readCatalog();
  const p = pickImage(images, { type: 'tar' });
  assert.ok(p.ok && p.value.image.distro === 'debian-12' && p.value.type.filename === 'rootfs.tar.zst');
  const d = pickImage(images, { type: 'qcow2', distro: 'debian-13' });
  assert.ok(!d.ok && /no distro "debian-13"/.test(d.error.message) && /did you mean debian-12/.test(d.error.hint!));
  const a = pickImage(images, { type: 'qcow2', arch: 'aarch64' });
  assert.ok(!a.ok && /no architecture for debian-12 "aarch64"/.test(a.error.message));
  const t = pickImage(images, { type: 'qcow' });
  assert.ok(!t.ok && /did you mean qcow2/.test(t.error.hint!));
  assert.equal(userCacheDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/imgmake');
  assert.match(userCacheDir({}), /\/\.cache\/imgmake$/);
});

test('mapBlueprint: packages, variables, and stages in the order an OS needs them', () => {
  const c = mapped(`
name = "m"
packages = [{ name = "hello" }, { name = "curl", version = "*" }, { name = "jq", version = "1.6-2.1" }]
[customizations]
hostname = "web"
[[customizations.group]]
name = "ops"
gid = 2000
[[customizations.user]]
name = "alice"
key = "ssh-ed25519 AAAA alice"
groups = ["sudo", "ops"]
uid = 1500
password = "$6$salt$hash"
[[customizations.sshkey]]
user = "root"
key = "ssh-ed25519 BBBB root"
[customizations.timezone]
timezone = "Europe/Berlin"
ntpservers = ["ntp1", "ntp2"]
[customizations.locale]
languages = ["C.UTF-8"]
keyboard = "de"
[customizations.services]
enabled = ["cron", "fstrim.timer"]
disabled = ["apt-daily.timer"]
masked = ["ctrl-alt-del.target"]
[customizations.firewall]
ports = ["8080:tcp", "6000-6010:udp", "https:tcp"]
[[customizations.files]]
path = "/srv/x/index.html"
data = "hi \${HOME}"
user = "alice"
mode = "0640"
[[customizations.directories]]
path = "/srv/x"
user = "alice"
group = "ops"
mode = "0750"
ensure_parents = true
[customizations.sshd]
password_authentication = false
permit_root_login = "prohibit-password"
`);
  assert.deepEqual(c.packages, ['hello', 'curl', 'jq=1.6-2.1', 'console-setup', 'nftables']);
  assert.deepEqual(c.vars, { hostname: 'web', timezone: 'Europe/Berlin' });
  assert.deepEqual(c.stages.map((s) => `${s.name}:${s.rule}`), ['locale:system.locale', 'keyboard:system.keyboard', 'users:users.add', 'ntp:files.write', 'directories:files.mkdir', 'files:files.write', 'sshd:files.write', 'firewall:files.write', 'services:systemd.units']);
  const opt = (name: string) => c.stages.find((s) => s.name === name)!.options as Record<string, any>;
  assert.deepEqual(opt('locale'), { language: 'C.UTF-8', keymap: 'de' });
  assert.deepEqual(opt('keyboard'), { layout: 'de' });
  assert.deepEqual(opt('users'), {
    groups: [{ name: 'ops', gid: 2000 }],
    users: [
      { name: 'alice', password_hash: '$6$salt$hash', ssh_keys: ['ssh-ed25519 AAAA alice'], groups: ['sudo', 'ops'], uid: 1500 },
      { name: 'root', ssh_keys: ['ssh-ed25519 BBBB root'] },
    ],
  });
  assert.equal(opt('ntp').files[0].content, '[Time]\nNTP=ntp1 ntp2\n');
  assert.deepEqual(opt('directories').paths, [{ path: '/srv/x', mode: '0750', owner: '1500:2000', parents: true }]);
  assert.deepEqual(opt('files').files, [{ path: '/srv/x/index.html', content: 'hi ${HOME}', mode: '0640', owner: '1500:1500' }]);
  assert.equal(opt('sshd').files[0].content, 'PasswordAuthentication no\nPermitRootLogin prohibit-password\n');
  const nft = opt('firewall').files[0].content as string;
  assert.match(nft, /policy drop;[\s\S]*tcp dport 22 accept\n {4}tcp dport 8080 accept\n {4}udp dport 6000-6010 accept\n {4}tcp dport https accept\n/);
  assert.deepEqual(opt('services'), { enable: ['cron.service', 'fstrim.timer', 'nftables.service'], disable: ['apt-daily.timer'], mask: ['ctrl-alt-del.target'] });
  // Each stage says where in the blueprint it comes from.
  assert.equal(c.stages.find((s) => s.name === 'firewall')!.from.line, 28);
});

test('mapBlueprint: only what the blueprint uses makes a stage; nothing at all makes none', () => {
  assert.deepEqual(mapped('name = "x"'), { packages: [], vars: {}, stages: [], filesystems: [] });
  const h = mapped('name = "x"\n[customizations]\nhostname = "h"\n');
  assert.deepEqual(h, { packages: [], vars: { hostname: 'h' }, stages: [], filesystems: [] }, 'the hostname is a variable of the workload part: no stage of its own');
  assert.deepEqual(mapped('name = "x"\n[customizations.firewall]\nports = ["80:tcp"]\n').stages.map((s) => s.name), ['firewall', 'services']);
});

test('mapBlueprint: values it cannot honour are refused at their file:line:column', () => {
  const r = mapDebian(
    bp(`name = "x"
packages = [{ name = "nginx", version = "1.22.*" }]
[customizations.kernel]
name = "kernel"
[customizations.firewall.services]
enabled = ["http", "samba"]
[[customizations.files]]
path = "/etc/x"
user = "carol"
[[customizations.firstboot.scripts]]
type = "satellite"
`),
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.error.map((d) => `${d.loc!.line}:${d.loc!.col} ${d.message}`), [
    '2:41 version "1.22.*" of package nginx is a glob; Debian\'s package stage installs one exact version',
    '4:8 kernel "kernel" is not a Debian kernel package',
    '6:20 firewall service "samba" is not one imgmake knows the ports of',
    '9:8 user "carol" has no id the blueprint gives',
    '11:8 firstboot script type "satellite" registers with a Red Hat service (Satellite), which imgmake\'s images do not have',
  ]);
  assert.ok(r.error.every((d) => d.hint));
  assert.match(r.error[2]!.hint!, /ports instead \("8080:tcp"\), or use one of ssh, http, https/);
});

test('mapBlueprint: a plain-text password is hashed reproducibly with SHA-512-crypt; a hash is kept as written', () => {
  const text = (bpName: string, pw: string) => `name = "${bpName}"\n[[customizations.user]]\nname = "bob"\npassword = "${pw}"\n[[customizations.user]]\nname = "eve"\npassword = "${pw}"\n`;
  const hashes = (t: string) => (mapped(t).stages[0]!.options['users'] as { password_hash: string }[]).map((u) => u.password_hash);
  const [bob, eve] = hashes(text('web', 'correct horse'));
  assert.match(bob!, /^\$6\$rounds=50000\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
  assert.deepEqual(hashes(text('web', 'correct horse')), [bob, eve], 'the same blueprint, the same hashes');
  assert.notEqual(bob!.split('$')[3], eve!.split('$')[3], 'another user, another salt');
  assert.notEqual(hashes(text('db', 'correct horse'))[0]!.split('$')[3], bob!.split('$')[3], 'another blueprint, another salt');
  assert.notEqual(hashes(text('web', 'battery staple'))[0], bob, 'another password, another hash');
  // The hash is a real crypt(3) hash: the host's libcrypt (through python3's crypt) agrees.
  const check = execFileSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; h=sys.argv[1]; print(crypt.crypt(sys.argv[2], h) == h, crypt.crypt("wrong", h) == h)', bob!, 'correct horse'], { encoding: 'utf8' });
  assert.equal(check.trim(), 'True False');
  assert.equal(sha512Crypt('pw', 'abc'), execFileSync('openssl', ['passwd', '-6', '-salt', 'abc', 'pw'], { encoding: 'utf8' }).trim(), 'openssl agrees at crypt\'s default rounds');
  assert.equal(passwordSalt('web', 'bob'), bob!.split('$')[3]);
  // Plain text never reaches the composed definition.
  assert.doesNotMatch(JSON.stringify(mapped(text('web', 'correct horse'))), /correct horse/);
  assert.deepEqual(hashes(text('web', '$y$j9T$abc$def')), ['$y$j9T$abc$def', '$y$j9T$abc$def'], 'a crypt hash is used as written');
});

test('mapBlueprint: locales to generate add the locales package and a locale-gen stage before the locale; a keyboard adds console-setup', () => {
  const c = mapped('name = "x"\n[customizations.locale]\nlanguages = ["de_DE.UTF-8", "C.UTF-8", "en_US.UTF-8"]\nkeyboard = "de"\n');
  assert.deepEqual(c.packages, ['locales', 'console-setup']);
  assert.deepEqual(c.stages.map((s) => [s.name, s.rule, s.options]), [
    ['locale-gen', 'system.locale-gen', { locales: ['de_DE.UTF-8', 'en_US.UTF-8'] }],
    ['locale', 'system.locale', { language: 'de_DE.UTF-8', keymap: 'de' }],
    ['keyboard', 'system.keyboard', { layout: 'de' }],
  ]);
  // composer's keymap names (kbd's) as XKB layouts and variants for console-setup.
  assert.deepEqual(xkbOf('de-nodeadkeys'), { layout: 'de', variant: 'nodeadkeys' });
  assert.deepEqual(xkbOf('uk'), { layout: 'gb' });
  assert.deepEqual(xkbOf('de-latin1'), { layout: 'de' });
  assert.deepEqual(xkbOf('us'), { layout: 'us' });
  const bad = mapDebian(bp('name = "x"\n[customizations.locale]\nkeyboard = "de.x"\n'));
  assert.ok(!bad.ok && bad.error[0]!.message === 'keyboard "de.x" is not a layout name Debian\'s console-setup knows' && bad.error[0]!.loc!.line === 3);
  assert.deepEqual(mapped('name = "x"\n[customizations.locale]\nlanguages = ["C.UTF-8"]\n').packages, [], 'C.UTF-8 needs no generating');
  assert.deepEqual(mapped('name = "x"\n[customizations.locale]\nlanguages = ["en_US.utf8", "sr_RS.utf8@latin"]\n').stages[0]!.options, { locales: ['en_US.UTF-8', 'sr_RS.UTF-8@latin'] }, 'as SUPPORTED writes them');
});

test('mapBlueprint: firewall services open their ports; disabling ssh closes the base rule; services alone make the firewall', () => {
  const c = mapped('name = "x"\n[customizations.firewall]\nports = ["8080:tcp"]\n[customizations.firewall.services]\nenabled = ["https", "dns", "http"]\ndisabled = ["ssh", "telnet-unknown-but-closed"]\n'.replace(', "telnet-unknown-but-closed"', ''));
  const nft = (c.stages.find((s) => s.name === 'firewall')!.options['files'] as { content: string }[])[0]!.content;
  assert.match(nft, /udp dport \{ 68, 546 \} accept\n {4}tcp dport 8080 accept\n {4}tcp dport 443 accept\n {4}tcp dport 53 accept\n {4}udp dport 53 accept\n {4}tcp dport 80 accept\n {2}\}/);
  assert.doesNotMatch(nft, /dport 22 /, 'ssh disabled');
  const only = mapped('name = "x"\n[customizations.firewall.services]\nenabled = ["http"]\n');
  assert.deepEqual(only.packages, ['nftables']);
  assert.deepEqual(only.stages.map((s) => s.name), ['firewall', 'services']);
  assert.deepEqual(only.stages[1]!.options, { enable: ['nftables.service'] });
  for (const [name, ports] of Object.entries(SERVICES)) assert.ok(ports.length > 0 && ports.every((p) => /^\d+(-\d+)?$/.test(p.port)), name);
});

test('mapBlueprint: kernel.name, CA certificates and first-boot scripts', () => {
  const pem = 'MIIBszCCAVmgAwIBAgIUX'.repeat(5);
  const c = mapped(`name = "x"
[customizations.kernel]
name = "linux-image-cloud-amd64"
[customizations.cacerts]
pem_certs = ["""
  -----BEGIN CERTIFICATE-----\r
  ${pem.slice(0, 50)}\r
  ${pem.slice(50)}\r
  -----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
QUJD
-----END CERTIFICATE-----
"""]
[[customizations.firstboot.scripts]]
type = "custom"
name = "hello"
contents = "echo hi > /var/tmp/hi"
after = ["network-online.target"]
before = ["getty.target"]
ignore_failure = true
[[customizations.firstboot.scripts]]
type = "custom"
contents = "#!/usr/bin/python3\\nprint(1)\\n"
`);
  assert.deepEqual(c.kernel, { package: 'linux-image-cloud-amd64', from: c.kernel!.from });
  assert.equal(c.kernel!.from.line, 3);
  assert.deepEqual(c.packages, ['ca-certificates']);
  assert.deepEqual(c.stages.map((s) => `${s.name}:${s.rule}`), ['cacerts:system.ca-certificates', 'firstboot:files.write', 'services:systemd.units']);
  assert.deepEqual(c.stages[0]!.options, { certs: [`-----BEGIN CERTIFICATE-----\n${pem.slice(0, 64)}\n${pem.slice(64)}\n-----END CERTIFICATE-----\n`, '-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n'] });
  const files = c.stages[1]!.options['files'] as { path: string; content: string; mode?: string }[];
  assert.deepEqual(files.map((f) => `${f.path} ${f.mode ?? ''}`), [
    '/usr/local/libexec/imgmake/firstboot/hello 0755',
    '/etc/systemd/system/imgmake-firstboot-hello.service ',
    '/usr/local/libexec/imgmake/firstboot/2 0755',
    '/etc/systemd/system/imgmake-firstboot-2.service ',
  ]);
  assert.equal(files[0]!.content, '#!/bin/sh\necho hi > /var/tmp/hi\n');
  assert.equal(files[2]!.content, '#!/usr/bin/python3\nprint(1)\n');
  const unit = files[1]!.content;
  assert.match(unit, /\nConditionPathExists=!\/var\/lib\/imgmake\/firstboot\/hello\.done\nAfter=network-online\.target\nWants=network-online\.target\nBefore=getty\.target\n/);
  assert.match(unit, /\nExecStart=-\/usr\/local\/libexec\/imgmake\/firstboot\/hello\nExecStartPost=\/bin\/sh -c 'mkdir -p \/var\/lib\/imgmake\/firstboot && touch \/var\/lib\/imgmake\/firstboot\/hello\.done'\n/);
  assert.match(files[3]!.content, /\nExecStart=\/usr\/local\/libexec\/imgmake\/firstboot\/2\n/, 'a failure counts: no "-"');
  assert.deepEqual(c.stages[2]!.options, { enable: ['imgmake-firstboot-hello.service', 'imgmake-firstboot-2.service'] });
});

test('mapBlueprint: repositories become deb822 sources and keyrings in the image, which apt reads; what apt has no field for is refused', () => {
  const gnupg = tmp();
  const gpg = (...a: string[]) => execFileSync('gpg', ['--homedir', gnupg, '--batch', '--quiet', ...a], { encoding: 'utf8' });
  gpg('--passphrase', '', '--quick-gen-key', 'imgmake test repo <repo@example.invalid>', 'ed25519', 'sign', 'never');
  const key = gpg('--armor', '--export');
  execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']);
  const c = mapped(`name = "x"
[[customizations.repositories]]
id = "extra"
name = "Extra packages"
baseurls = ["https://repo.example.invalid/debian bookworm main contrib"]
gpgkeys = ["""${key}"""]
[[customizations.repositories]]
id = "local"
filename = "local-flat.sources"
baseurls = ["http://flat.example.invalid/ ./"]
gpgcheck = false
enabled = false
`);
  assert.deepEqual(c.packages, []);
  assert.deepEqual(c.stages.map((s) => `${s.name}:${s.rule}`), ['repositories:files.write']);
  const files = c.stages[0]!.options['files'] as { path: string; content: string }[];
  assert.deepEqual(files.map((f) => f.path), ['/etc/apt/keyrings/imgmake-extra-1.asc', '/etc/apt/sources.list.d/extra.sources', '/etc/apt/sources.list.d/local-flat.sources']);
  assert.equal(files[0]!.content, `${key.trim()}\n`);
  assert.equal(files[1]!.content, '# Written by imgmake from the blueprint\'s repository "extra".\nX-Repolib-Name: Extra packages\nTypes: deb\nURIs: https://repo.example.invalid/debian\nSuites: bookworm\nComponents: main contrib\nSigned-By: /etc/apt/keyrings/imgmake-extra-1.asc\n');
  assert.match(files[2]!.content, /\nSuites: \.\/\nEnabled: no\nTrusted: yes\n$/);
  // The host's apt parses what the image's apt will read (a malformed stanza is an "E:" line and exit 100).
  const etc = join(tmp(), 'etc/apt');
  for (const f of files) {
    const path = join(etc, f.path.replace('/etc/apt/', ''));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content);
  }
  writeFileSync(join(etc, 'sources.list'), '');
  const state = tmp();
  mkdirSync(join(state, 'lists/partial'), { recursive: true });
  const apt = spawnSync('apt-get', ['-o', `Dir::Etc=${etc}`, '-o', `Dir::State=${state}`, '-o', `Dir::Cache=${state}`, 'indextargets'], { encoding: 'utf8' });
  assert.equal(apt.status, 0, apt.stderr);
  assert.doesNotMatch(apt.stdout + apt.stderr, /^E:/m);

  // A catalog image whose package format writes no repository files refuses them at their line.
  const none = mapBlueprint(bp('name = "x"\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["http://r.example.invalid/ ./"]\n'));
  assert.ok(!none.ok);
  assert.deepEqual(none.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`), ['2:1 this catalog image\'s package format writes no repository files']);

  const r = mapDebian(
    bp(`name = "x"
[[customizations.repositories]]
id = "bad"
baseurls = ["https://repo.example.invalid/debian", "https://repo.example.invalid/debian bookworm"]
gpgkeys = ["https://repo.example.invalid/key.asc"]
priority = 10
sslverify = false
`),
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.error.map((d) => `${d.loc!.line}:${d.loc!.col} ${d.message}`), [
    '4:13 repository "bad": base URL "https://repo.example.invalid/debian" has no suite',
    '4:52 repository "bad": base URL "https://repo.example.invalid/debian bookworm" has no components',
    '5:12 repository "bad": a key by URL would be fetched at build time, unchecked',
    '6:12 repository "bad": priority is dnf\'s; apt orders sources by pin priority instead',
    '7:13 repository "bad": apt has no per-source switch to skip TLS verification',
  ]);
});

test('mapBlueprint: a repository marked install_from joins the package stage\'s options, for its lock; its source file is written all the same; what the lock cannot reach is refused', async () => {
  const gnupg = tmp();
  const gpg = (...a: string[]) => execFileSync('gpg', ['--homedir', gnupg, '--batch', '--quiet', ...a], { encoding: 'utf8' });
  gpg('--passphrase', '', '--quick-gen-key', 'imgmake test repo <repo@example.invalid>', 'ed25519', 'sign', 'never');
  const key = gpg('--armor', '--export');
  execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']);
  const text = `name = "x"
packages = [{ name = "extra-tool" }]
[[customizations.repositories]]
id = "extra"
baseurls = ["https://repo.example.invalid/debian bookworm main"]
gpgkeys = ["""${key}"""]
install_from = true
[[customizations.repositories]]
id = "flat"
baseurls = ["http://flat.example.invalid/ ./"]
gpgcheck = false
install_from = true
[[customizations.repositories]]
id = "image-only"
baseurls = ["https://other.example.invalid/debian bookworm main"]
gpgkeys = ["""${key}"""]
`;
  const c = mapped(text);
  assert.deepEqual(c.stages.map((s) => `${s.name}:${s.rule}`), ['repositories:files.write'], 'every repository\'s source file, install_from or not');
  assert.equal((c.stages[0]!.options['files'] as unknown[]).length, 5);
  assert.deepEqual(c.packageOptions?.options, {
    repositories: [
      { id: 'extra', uri: 'https://repo.example.invalid/debian', suite: 'bookworm', components: ['main'], keys: [`${key.trim()}\n`] },
      { id: 'flat', uri: 'http://flat.example.invalid/', suite: './', trusted: true },
    ],
  });
  const line = text.split('\n').indexOf('install_from = true') + 1; // the key spans lines
  assert.deepEqual(c.packageOptions && [c.packageOptions.from.line, c.packageOptions.from.col], [line, 16]);
  assert.equal(mapped('name = "x"\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["http://r.example.invalid/ ./"]\ngpgcheck = false\n').packageOptions, undefined, 'not marked: nothing for the package stage');

  // Composed: the options go on the distro's package stage, which loads (rule.json's schema) as it is.
  const image = (await readCatalog())[0]!;
  const composed = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts: { [image.packages.part]: readFileSync(image.packages.part, 'utf8') }, custom: c });
  assert.match(composed.files['distro.yaml']!, new RegExp(`repositories:\\n\\s+# install_from, from /bp/b\\.toml:${line}:16\\n\\s+- id: extra\\n`));
  const dir = tmp();
  for (const [n, t] of Object.entries(composed.files)) writeFileSync(join(dir, n), t);
  const def = await load({ file: join(dir, 'imgmake.yaml'), rules: await loadRules(), hostDefaults: await hostDefaults(), allow: [CATALOG_DIR] });
  assert.ok(def.ok, def.ok ? '' : def.error.map((d) => `${d.loc?.file}:${d.loc?.line} ${d.message}`).join('\n'));
  assert.deepEqual(def.value.pipelines.get('distro' as never)!.stages[0]!.options['repositories'], c.packageOptions!.options['repositories']);

  // What the lock cannot use, at its line; a format that cannot install from repositories refuses the flag.
  const r = mapDebian(
    bp(`name = "x"
[[customizations.repositories]]
id = "two"
baseurls = ["https://a.example.invalid/debian bookworm main", "https://b.example.invalid/debian bookworm main"]
gpgcheck = false
install_from = true
[[customizations.repositories]]
id = "ftp"
baseurls = ["ftp://a.example.invalid/debian bookworm main"]
gpgcheck = false
install_from = true
[[customizations.repositories]]
id = "security"
baseurls = ["https://a.example.invalid/debian bookworm main"]
gpgcheck = false
install_from = true
`),
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.error.map((d) => `${d.loc!.line}:${d.loc!.col} ${d.message}`), [
    '4:63 repository "two" is installed from (install_from = true) but has 2 base URLs',
    '9:13 repository "ftp" is installed from (install_from = true), but ftp://a.example.invalid/debian is not an http(s) URL',
    '13:6 repository "security": the lock names the Debian mirror\'s sources "archive" and "security"',
  ]);
  const none = mapBlueprint(bp('name = "x"\n[[customizations.repositories]]\nid = "r"\nbaseurls = ["http://r.example.invalid/ ./"]\ngpgcheck = false\ninstall_from = true\n'), { repositories: repositoryFiles });
  assert.ok(!none.ok);
  assert.deepEqual(none.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`), ['6:16 this catalog image\'s package format cannot install from a blueprint\'s repositories']);
});

test('the example blueprints map without an error', async () => {
  for (const name of ['web.toml', 'dev.toml']) {
    const file = join(repoRoot, 'examples', 'blueprints', name);
    const r = mapDebian(bp(readFileSync(file, 'utf8'), file));
    assert.ok(r.ok, `${name}: ${!r.ok && r.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`).join('\n')}`);
  }
});

test('compose: the catalog root with the blueprint pipeline and packages loads with the ordinary loader', async () => {
  const images = await readCatalog();
  const image = images[0]!;
  const custom = mapped(`name = "x"
packages = [{ name = "hello" }]
[customizations]
hostname = "h"
[[customizations.files]]
path = "/etc/x"
data = "a \${b} c"
`);
  const c = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts: { [image.packages.part]: readFileSync(image.packages.part, 'utf8') }, custom, blueprintFile: '/bp/x.toml' });
  assert.deepEqual(Object.keys(c.files).sort(), ['distro.yaml', 'imgmake.yaml']);
  const dir = tmp();
  for (const [n, t] of Object.entries(c.files)) writeFileSync(join(dir, n), t);
  assert.match(c.files['imgmake.yaml']!, /^# Generated by imgmake from \/bp\/x\.toml/);
  assert.match(c.files['imgmake.yaml']!, /# from \/bp\/b\.toml:5:1/);
  const rules = await loadRules();
  const def = await load({ file: join(dir, 'imgmake.yaml'), rules, hostDefaults: await hostDefaults(), allow: [CATALOG_DIR] });
  assert.ok(def.ok, def.ok ? '' : def.error.map((d) => `${d.loc?.file}:${d.loc?.line} ${d.message}`).join('\n'));
  const d = def.value;
  assert.equal(d.vars['os'], 'blueprint');
  assert.equal(d.pipelines.get('blueprint' as never)!.base?.pipeline, 'workload');
  const files = d.pipelines.get('blueprint' as never)!.stages[0]!;
  assert.deepEqual(files.options['files'], [{ path: '/etc/x', content: 'a ${b} c', mode: '0644', owner: '0:0' }], 'a blueprint\'s "${" is never substituted');
  assert.equal(d.pipelines.get('workload' as never)!.stages[0]!.options['hostname'], 'h');
  const pkgs = d.pipelines.get('distro' as never)!.stages[0]!.options['packages'] as string[];
  assert.equal(pkgs.at(-1), 'hello');
  assert.ok(pkgs.includes('linux-image-amd64'));
  // The disk is made from the blueprint's tree.
  const root = d.pipelines.get('disk' as never)!.stages.find((s) => s.id === 'root')!;
  assert.equal(root.inputs.find((i) => i.name === 'tree')?.kind === 'pipeline' && (root.inputs.find((i) => i.name === 'tree') as { pipeline: string }).pipeline, 'blueprint');
  // Without a blueprint's packages, the catalog's distro part is included as it is.
  const plain = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts: {}, custom: { packages: [], vars: {}, stages: [], filesystems: [] } });
  assert.deepEqual(Object.keys(plain.files), ['imgmake.yaml']);
  assert.ok(plain.files['imgmake.yaml']!.includes(image.packages.part));
});

test('compose: kernel.name takes the place of the catalog\'s kernel package, alone or with other packages', async () => {
  const image = (await readCatalog())[0]!;
  assert.equal(image.packages.kernel, 'linux-image-amd64');
  const parts = { [image.packages.part]: readFileSync(image.packages.part, 'utf8') };
  const before = (await loadComposed(compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts, custom: mapped('name = "x"\npackages = [{ name = "hello" }]\n') })));
  const custom = mapped('name = "x"\n[customizations.kernel]\nname = "linux-image-cloud-amd64"\n');
  const c = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts, custom });
  assert.deepEqual(Object.keys(c.files).sort(), ['distro.yaml', 'imgmake.yaml'], 'a kernel alone edits the distro part');
  assert.match(c.files['distro.yaml']!, /- linux-image-cloud-amd64 # kernel\.name, from \/bp\/b\.toml:3:8/);
  const after = await loadComposed(c);
  const i = before.indexOf('linux-image-amd64');
  assert.ok(i >= 0 && !after.includes('linux-image-amd64'));
  assert.equal(after[i], 'linux-image-cloud-amd64', 'in the same place');
  assert.deepEqual(after.filter((p) => p !== 'linux-image-cloud-amd64'), before.filter((p) => p !== 'linux-image-amd64' && p !== 'hello'));
});

/** The distro package stage's packages of a composed definition, read with the ordinary loader. */
async function loadComposed(c: { files: Record<string, string> }): Promise<string[]> {
  const dir = tmp();
  for (const [n, t] of Object.entries(c.files)) writeFileSync(join(dir, n), t);
  const def = await load({ file: join(dir, 'imgmake.yaml'), rules: await loadRules(), hostDefaults: await hostDefaults(), allow: [CATALOG_DIR] });
  assert.ok(def.ok, def.ok ? '' : def.error.map((d) => `${d.loc?.file}:${d.loc?.line} ${d.message}`).join('\n'));
  return def.value.pipelines.get('distro' as never)!.stages[0]!.options['packages'] as string[];
}

test('filesystems and kernel arguments: partitions before the root, a filesystem each from its directory, fstab entries, a bigger disk', async () => {
  const image = (await readCatalog())[0]!;
  const custom = mapped(`name = "x"
[customizations.kernel]
append = "quiet loglevel=3"
[[customizations.filesystem]]
mountpoint = "/var/log"
minsize = 267911168
[[customizations.filesystem]]
mountpoint = "/srv/data"
minsize = 1073741824
`);
  assert.deepEqual(custom.vars, { kernel_append: ' quiet loglevel=3' });
  assert.deepEqual(custom.filesystems.map((f) => [f.mountpoint, f.size / 1048576, f.partition]), [['/var/log', 256, 'var-log'], ['/srv/data', 1024, 'srv-data']]);
  assert.deepEqual(custom.stages.map((s) => s.name), ['mountpoints']);
  assert.equal(custom.filesystems[0]!.uuid, mapped('name = "y"\n[[customizations.filesystem]]\nmountpoint = "/var/log"\nminsize = 1\n').filesystems[0]!.uuid, 'the same mountpoint, the same UUID');
  const parts: Record<string, string> = {};
  for (const p of [image.packages.part, image.disk.part, image.fstab.part]) parts[p] = readFileSync(p, 'utf8');
  const c = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts, custom, diskSize: '3G' });
  assert.deepEqual(Object.keys(c.files).sort(), ['imgmake.yaml', 'platform.yaml', 'workload.yaml']);
  const dir = tmp();
  for (const [n, t] of Object.entries(c.files)) writeFileSync(join(dir, n), t);
  const def = await load({ file: join(dir, 'imgmake.yaml'), rules: await loadRules(), hostDefaults: await hostDefaults(), allow: [CATALOG_DIR] });
  assert.ok(def.ok, def.ok ? '' : def.error.map((d) => `${d.loc?.file}:${d.loc?.line} ${d.message}`).join('\n'));
  const disk = def.value.pipelines.get('disk' as never)!;
  const partition = disk.stages.find((s) => s.id === 'partition')!.options as { size: string; partitions: { name: string; size: string }[] };
  assert.equal(partition.size, `${3072 + 256 + 1024}M`);
  assert.deepEqual(partition.partitions.map((p) => `${p.name}:${p.size}`), ['bios:1M', 'esp:100M', 'var-log:256M', 'srv-data:1024M', 'root:rest']);
  assert.deepEqual(disk.stages.map((s) => s.id), ['partition', 'esp', 'bios', 'root', 'fs-var-log', 'fs-srv-data']);
  assert.deepEqual(disk.stages.at(-2)!.options, { filename: 'disk.raw', partition: 'var-log', uuid: custom.filesystems[0]!.uuid, subdir: '/var/log', mtime: 'clamp', inode_ratio: 16384 });
  const fstab = def.value.pipelines.get('workload' as never)!.stages.find((s) => s.id === 'fstab')!.options['filesystems'] as { path: string; spec: string }[];
  assert.deepEqual(fstab.map((f) => f.path), ['/', '/boot/efi', '/var/log', '/srv/data']);
  assert.equal(fstab[2]!.spec, `UUID=${custom.filesystems[0]!.uuid}`);
  assert.equal(def.value.pipelines.get('esp' as never)!.stages[0]!.options['cmdline'], 'ro console=ttyS0,115200 quiet loglevel=3');
  const bad = mapDebian(bp('name = "x"\n[customizations.kernel]\nappend = "init=\'/bin/sh\'"\n[[customizations.filesystem]]\nmountpoint = "/"\nminsize = 1\n'));
  assert.ok(!bad.ok);
  assert.deepEqual(bad.error.map((d) => `${d.loc!.line}:${d.loc!.col}`), ['3:10', '5:14']);
});

test('build, plan and lock: a project wins unless the catalog is asked for; bad blueprints are exit 2 at their line', async (t) => {
  const p = await tempProject('hello');
  t.after(p.cleanup);
  const cache = tmp();
  // A project: `plan` is the project's, as without the catalog.
  const project = await imgmake(['plan', '--json'], { cwd: p.dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(project.code, 0, project.stderr);
  assert.ok(project.events.some((e) => e.type === 'plan-stage' && !String(e.pipeline).startsWith('disk')));
  // -f with --blueprint: one or the other.
  const both = await imgmake(['-f', p.file, 'plan', 'qcow2', '--blueprint', join(repoRoot, 'examples/blueprints/web.toml')]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--blueprint, --distro and --arch build from the catalog, and -f names a project definition/);
  // An option the type does not support: exit 2 at the blueprint's line, before anything is made.
  const dir = tmp();
  const file = join(dir, 'bad.toml');
  writeFileSync(file, 'name = "bad"\n\n[[customizations.filesystem]]\nmountpoint = "/var/log"\nminsize = "1 GiB"\n[customizations.openscap]\nprofile_id = "x"\n');
  const unsupported = await imgmake(['plan', 'tar', '--blueprint', file], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(unsupported.code, 2, unsupported.stderr);
  assert.match(unsupported.stderr, /(^|\n)bad\.toml:3:18: error: image type "tar" does not support "filesystem": a tar archive has no disk/);
  assert.match(unsupported.stderr, /\nhint: remove it, or build another image type\. It is supported by qcow2, raw, vmdk, vhd, gce, raw\.xz and raw\.zst\./);
  assert.match(unsupported.stderr, /\nbad\.toml:6:17: error: "openscap" has no mapping in imgmake yet/);
  writeFileSync(file, 'name = "bad"\n[customizations.firewall.services]\nenabled = ["nosuch"]\n');
  const value = await imgmake(['build', 'tar', '--blueprint', file], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(value.code, 2);
  assert.match(value.stderr, /(^|\n)bad\.toml:3:12: error: firewall service "nosuch" is not one imgmake knows the ports of/);
  writeFileSync(file, 'name = "bad"\ndistro = "debian-12"\n');
  const distro = await imgmake(['plan', 'qcow2', '--blueprint', file, '--distro', 'debian-13'], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(distro.code, 2);
  assert.match(distro.stderr, /the catalog has no distro "debian-13"/);
  writeFileSync(file, 'name = "bad"\ndistro = "fedora-41"\n');
  const bpDistro = await imgmake(['plan', 'qcow2', '--blueprint', file], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(bpDistro.code, 2);
  assert.match(bpDistro.stderr, /(^|\n)bad\.toml:2:10: error: the catalog has no distro "fedora-41"/);
  // No project, no TYPE: the usual message.
  const none = await imgmake(['plan'], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no imgmake\.yaml in/);
  assert.match(none.stderr, /imgmake list/);
});
