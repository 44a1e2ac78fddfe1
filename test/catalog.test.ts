/**
 * The built-in catalog (src/catalog/, catalog/): the index agrees with the definitions it names;
 * `imgmake list` and its filters; a blueprint mapped onto stages in the order an OS needs them,
 * values it cannot honour refused at their file:line:column; the composed definition loads with
 * the ordinary loader; and how `build`/`plan` choose between a project and the catalog. No
 * stage runs here (test/catalog-e2e.test.ts builds and boots).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseBlueprint, type Blueprint } from '../src/blueprint/index.js';
import { compose } from '../src/catalog/compose.js';
import { mapBlueprint, type Customization } from '../src/catalog/customize.js';
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
  const r = mapBlueprint(bp(text));
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
  assert.deepEqual(all.map((r) => r.type), ['qcow2', 'raw', 'tar', 'ostree-commit', 'ostree-raw', 'ostree-qcow2']);
  assert.deepEqual(all.find((r) => r.type === 'qcow2'), {
    distro: 'debian-12', arch: 'x86_64', type: 'qcow2', filename: 'disk.qcow2', size: '3G',
    options: ['packages', 'modules', 'hostname', 'kernel.append', 'user', 'sshkey', 'group', 'timezone', 'locale', 'services', 'firewall.ports', 'filesystem', 'directories', 'files', 'sshd'],
  });
  assert.deepEqual(all.find((r) => r.type === 'tar')!.options, ['packages', 'modules', 'hostname', 'user', 'sshkey', 'group', 'timezone', 'locale', 'services', 'firewall.ports', 'directories', 'files', 'sshd'], 'no disk, no bootloader');
  const f = (...xs: string[]) => xs.map((x) => { const p = parseFilter(x); assert.ok(p.ok); return p.value; });
  assert.deepEqual(listRows(images, f('type:q*')).map((r) => r.type), ['qcow2']);
  assert.deepEqual(listRows(images, f('type:tar', 'type:raw')).map((r) => r.type), ['raw', 'tar'], 'two filters on one key: either');
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
  assert.match(table.stdout, /\ndebian-12 +x86_64 +qcow2 +disk\.qcow2 +3G +packages, modules, hostname, kernel\.append, user,/);
  assert.match(table.stdout, /\ndebian-12 +x86_64 +tar +rootfs\.tar\.zst +- +packages/);
  const json = await imgmake(['list', '--json', '--filter', 'type:raw']);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.events.length, 1);
  assert.deepEqual({ ...json.events[0], options: undefined }, { type: 'image', distro: 'debian-12', arch: 'x86_64', imageType: 'raw', filename: 'disk.raw', size: '3G', options: undefined });
  assert.ok(json.events[0]!['options'].includes('filesystem') && !json.events[0]!['options'].includes('cacerts'), 'the support table, as mapped');
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
  assert.deepEqual(c.packages, ['hello', 'curl', 'jq=1.6-2.1', 'nftables']);
  assert.deepEqual(c.vars, { hostname: 'web', timezone: 'Europe/Berlin' });
  assert.deepEqual(c.stages.map((s) => `${s.name}:${s.rule}`), ['locale:system.locale', 'users:users.add', 'ntp:files.write', 'directories:files.mkdir', 'files:files.write', 'sshd:files.write', 'firewall:files.write', 'services:systemd.units']);
  const opt = (name: string) => c.stages.find((s) => s.name === name)!.options as Record<string, any>;
  assert.deepEqual(opt('locale'), { language: 'C.UTF-8', keymap: 'de' });
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
  const r = mapBlueprint(
    bp(`name = "x"
packages = [{ name = "nginx", version = "1.22.*" }]
[[customizations.user]]
name = "bob"
password = "secret"
[customizations.locale]
languages = ["en_US.UTF-8"]
[[customizations.files]]
path = "/etc/x"
user = "carol"
`),
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.error.map((d) => `${d.loc!.line}:${d.loc!.col} ${d.message}`), [
    '2:41 version "1.22.*" of package nginx is a glob; Debian\'s package stage installs one exact version',
    '5:12 the password of user bob is plain text; the catalog takes a crypt(3) hash',
    '7:14 locale "en_US.UTF-8" would need generating, which the catalog\'s Debian does not do yet',
    '10:8 user "carol" has no id the blueprint gives',
  ]);
  assert.ok(r.error.every((d) => d.hint));
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
  const bad = mapBlueprint(bp('name = "x"\n[customizations.kernel]\nappend = "init=\'/bin/sh\'"\n[[customizations.filesystem]]\nmountpoint = "/"\nminsize = 1\n'));
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
  writeFileSync(file, 'name = "bad"\n\n[[customizations.filesystem]]\nmountpoint = "/var/log"\nminsize = "1 GiB"\n[customizations.cacerts]\npem_certs = []\n');
  const unsupported = await imgmake(['plan', 'tar', '--blueprint', file], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(unsupported.code, 2, unsupported.stderr);
  assert.match(unsupported.stderr, /(^|\n)bad\.toml:3:18: error: image type "tar" does not support "filesystem": a tar archive has no disk/);
  assert.match(unsupported.stderr, /\nhint: remove it, or build another image type\. It is supported by qcow2 and raw\./);
  assert.match(unsupported.stderr, /\nbad\.toml:6:17: error: "cacerts" has no mapping in imgmake yet/);
  writeFileSync(file, 'name = "bad"\n[customizations.locale]\nlanguages = ["de_DE.UTF-8"]\n');
  const value = await imgmake(['build', 'tar', '--blueprint', file], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(value.code, 2);
  assert.match(value.stderr, /(^|\n)bad\.toml:3:14: error: locale "de_DE.UTF-8" would need generating/);
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
