/**
 * Blueprints on the ostree types (issue 17), without running a stage: which options each ostree
 * type takes and why it refuses the others (support.ts); the composed definition, read with the
 * ordinary loader — the blueprint's packages in the ostree package stage (never the qcow2's),
 * its stages in `ostree-blueprint` on `ostree-os` with the layout on top, its users through
 * users.firstboot (not users.add), kernel.append in the deployment's kernel arguments; and the
 * CLI refusing what an ostree type does not take, exit 2 at the blueprint's line.
 * rules/users.firstboot's own test runs the first-boot script on a deployed-like tree.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkSupport, parseBlueprint, type Blueprint } from '../src/blueprint/index.js';
import { SUPPORT } from '../src/blueprint/support.js';
import { compose } from '../src/catalog/compose.js';
import { mapBlueprint } from '../src/catalog/customize.js';
import { CATALOG_DIR, readCatalog } from '../src/catalog/index.js';
import { hostDefaults } from '../src/cli/context.js';
import { load } from '../src/load/index.js';
import { repositoryFiles } from '../src/packages/apt/repositories.js';
import { loadRules } from '../src/rule.js';
import { imgmake } from './helpers/cli.js';

const temps: string[] = [];
after(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'imgmake-ostree-bp-'));
  temps.push(d);
  return d;
};

function bp(text: string): Blueprint {
  const r = parseBlueprint(text, '/bp/edge.toml');
  if (!r.ok) assert.fail(r.error.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`).join('\n'));
  return r.value;
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3m2c4b8h1 edge@laptop';
const EDGE = `name = "edge"
packages = [{ name = "htop" }]
[customizations]
hostname = "edge-1"
[customizations.kernel]
append = "quiet"
[customizations.timezone]
timezone = "Europe/Paris"
[customizations.locale]
languages = ["C.UTF-8"]
[[customizations.user]]
name = "edge"
key = "${KEY}"
groups = ["sudo"]
[[customizations.sshkey]]
user = "root"
key = "${KEY}"
[customizations.services]
enabled = ["systemd-timesyncd"]
[[customizations.files]]
path = "/etc/motd"
data = "edge\\n"
`;

test('support: the ostree types take what acts on the tree before the layout; a commit has no bootloader; no type takes filesystems or apt sources', () => {
  const edge = bp(EDGE);
  assert.deepEqual(checkSupport(edge, 'ostree-raw'), []);
  assert.deepEqual(checkSupport(edge, 'ostree-qcow2'), []);
  assert.deepEqual(checkSupport(edge, 'ostree-commit').map((d) => [d.loc?.line, d.message]), [[6, 'image type "ostree-commit" does not support "kernel.append": a commit has no bootloader: kernel arguments belong to a deployment (ostree-raw and ostree-qcow2 take them)']]);
  for (const t of ['ostree-commit', 'ostree-raw', 'ostree-qcow2']) {
    for (const o of ['customizations.user', 'customizations.sshkey', 'customizations.group', 'customizations.hostname', 'packages', 'customizations.services', 'customizations.files', 'customizations.firstboot']) assert.ok(SUPPORT[t]!.includes(o), `${t} takes ${o}`);
    const fs = checkSupport(bp('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/var/log"\nminsize = 1\n[[customizations.repositories]]\nid = "x"\nbaseurls = ["http://example.invalid/debian bookworm main"]\n'), t);
    assert.deepEqual(fs.map((d) => d.loc?.line), [2, 5], t);
    assert.match(fs[0]!.message, t === 'ostree-commit' ? /a commit has no disk/ : /an ostree disk holds the physical root/);
    assert.match(fs[1]!.message, /\/usr is read-only: nothing is installed on the device with apt/);
  }
});

test('compose for ostree-qcow2: packages in the ostree package stage, the stages between ostree-os and the layout, users at first boot, kernel.append on the deployment', async () => {
  const image = (await readCatalog())[0]!;
  assert.ok(image.ostree);
  const mapped = mapBlueprint(bp(EDGE), { repositories: repositoryFiles, usersAtBoot: true });
  assert.ok(mapped.ok);
  const users = mapped.value.stages.find((s) => s.name === 'users')!;
  assert.equal(users.rule, 'users.firstboot');
  assert.deepEqual(users.options['users'], [{ name: 'edge', ssh_keys: [KEY], groups: ['sudo'] }, { name: 'root', ssh_keys: [KEY] }]);
  assert.equal(mapBlueprint(bp(EDGE), { repositories: repositoryFiles }).ok && (mapBlueprint(bp(EDGE), { repositories: repositoryFiles }) as { value: typeof mapped.value }).value.stages.find((s) => s.name === 'users')!.rule, 'users.add', 'other types: users.add');
  const parts: Record<string, string> = {};
  for (const p of [image.packages.part, image.disk.part, image.fstab.part, image.ostree.part]) parts[p] = readFileSync(p, 'utf8');
  const c = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts, custom: mapped.value, ostreeType: true, blueprintFile: '/bp/edge.toml' });
  assert.deepEqual(Object.keys(c.files).sort(), ['imgmake.yaml', 'ostree.yaml'], 'the distro part is left alone');
  const dir = tmp();
  for (const [n, t] of Object.entries(c.files)) writeFileSync(join(dir, n), t);
  const def = await load({ file: join(dir, 'imgmake.yaml'), rules: await loadRules(), hostDefaults: await hostDefaults(), allow: [CATALOG_DIR] });
  assert.ok(def.ok, def.ok ? '' : def.error.map((d) => `${d.loc?.file}:${d.loc?.line} ${d.message}`).join('\n'));
  const d = def.value;
  const pipe = (n: string) => d.pipelines.get(n as never)!;
  const ostreePkgs = pipe('ostree-distro').stages[0]!.options['packages'] as string[];
  assert.equal(ostreePkgs.at(-1), 'htop');
  assert.ok(ostreePkgs.includes('dracut'));
  assert.ok(!(pipe('distro').stages[0]!.options['packages'] as string[]).includes('htop'), 'not the qcow2\'s package stage');
  assert.equal(d.vars['os'], 'workload', 'the qcow2\'s pipelines are as they were');
  assert.equal(d.vars['ostree_os'], 'ostree-blueprint');
  assert.equal(pipe('ostree-blueprint').base?.pipeline, 'ostree-os');
  assert.equal(pipe('ostree-tree').base?.pipeline, 'ostree-blueprint');
  assert.deepEqual(pipe('ostree-blueprint').stages.map((s) => `${s.id}:${s.rule}`), ['locale:system.locale', 'users:users.firstboot', 'files:files.write', 'services:systemd.units']);
  assert.equal(pipe('ostree-os').stages.find((s) => s.id === 'hostname')!.options['hostname'], 'edge-1');
  assert.equal(pipe('ostree-os').stages.find((s) => s.id === 'timezone')!.options['timezone'], 'Europe/Paris');
  const deploy = pipe('ostree-sysroot').stages[0]!.options;
  assert.deepEqual([deploy['kargs'], deploy['kargs_append']], [['root=UUID=0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d', 'rw', 'console=ttyS0,115200'], ' quiet']);

  // Without a blueprint the ostree tree starts from ostree-os, and the deployment has no more arguments.
  const plain = compose({ image, rootText: readFileSync(image.definition, 'utf8'), parts, custom: { packages: [], vars: {}, stages: [], filesystems: [] }, ostreeType: true });
  assert.deepEqual(Object.keys(plain.files), ['imgmake.yaml']);
  const pdir = tmp();
  writeFileSync(join(pdir, 'imgmake.yaml'), plain.files['imgmake.yaml']!);
  const p = await load({ file: join(pdir, 'imgmake.yaml'), rules: await loadRules(), hostDefaults: await hostDefaults(), allow: [CATALOG_DIR] });
  assert.ok(p.ok);
  assert.equal(p.value.pipelines.get('ostree-tree' as never)!.base?.pipeline, 'ostree-os');
  assert.equal(p.value.pipelines.get('ostree-sysroot' as never)!.stages[0]!.options['kargs_append'], '');
});

test('the CLI: an option an ostree type does not take is exit 2 at the blueprint\'s line, before anything is made', async () => {
  const dir = tmp();
  const cache = join(dir, 'cache');
  const file = join(dir, 'edge.toml');
  writeFileSync(file, 'name = "edge"\n[customizations.kernel]\nappend = "quiet"\n');
  const r = await imgmake(['plan', 'ostree-commit', '--blueprint', file], { cwd: dir, env: { IMGMAKE_CACHE: cache } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /(^|\n)edge\.toml:3:1: error: image type "ostree-commit" does not support "kernel\.append": a commit has no bootloader/);
  assert.match(r.stderr, /It is supported by qcow2, raw, iso, vmdk, vhd, gce, raw\.xz, raw\.zst, ostree-raw and ostree-qcow2\./);
});
