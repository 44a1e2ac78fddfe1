/**
 * The catalog's image types from one Debian tree: qcow2, then vmdk, then gce of the same
 * blueprint (the catalog end-to-end test's, test/fixtures/catalog/e2e.toml) on the cache that
 * test shares. `plan` before each switch, and each build's events, show the package stage is
 * not run again: a type switch runs that type's one conversion stage. Then the vmdk boots in
 * QEMU like the qcow2 does (software emulation unless KVM probes fine), to the blueprint's own
 * unit reporting on the serial console, then powering off.
 *
 * Slow when the shared cache is cold (Debian is installed once); minutes otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { imgmake, ran, repoRoot, type CliResult } from './helpers/cli.js';

const CACHE = process.env['IMGMAKE_CATALOG_TEST_CACHE'] ?? '/var/tmp/imgmake-catalog-test';

test('image types: qcow2, vmdk, gce of one tree run the package stage at most once; the vmdk boots', { timeout: 3_600_000 }, async (t) => {
  const work = `${CACHE}-types-work`;
  mkdirSync(work, { recursive: true });
  const bp = join(work, 'e2e.toml');
  copyFileSync(join(repoRoot, 'test', 'fixtures', 'catalog', 'e2e.toml'), bp);
  const env = { IMGMAKE_CACHE: CACHE };
  const args = ['--blueprint', bp];
  const build = async (type: string): Promise<CliResult> => {
    const started = Date.now();
    const r = await imgmake(['--json', 'build', type, ...args], { cwd: work, env });
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    t.diagnostic(`build ${type}: ${Date.now() - started} ms, ran ${ran(r).join(' ') || 'nothing'}`);
    return r;
  };
  const plan = async (type: string): Promise<Record<string, any>[]> => {
    const r = await imgmake(['--json', 'plan', type, ...args], { cwd: work, env });
    assert.equal(r.code, 0, r.stderr);
    return r.events.filter((e) => e.type === 'plan-stage');
  };

  const qcow2 = await build('qcow2');
  const packagesRan = ran(qcow2).filter((n) => n.endsWith('.packages') || n === 'buildroot.tools');
  t.diagnostic(`package stages run by the qcow2 build: ${packagesRan.join(' ') || 'none (cached)'}`);

  for (const [type, stage] of [['vmdk', 'vmdk.0'], ['gce', 'gce.0']] as const) {
    // What a switch will run, read before it runs: the one conversion stage at most.
    const stages = await plan(type);
    const toRun = stages.filter((e) => e.status !== 'cached').map((e) => e.node as string);
    assert.ok(toRun.every((n) => n === stage), `plan ${type}: only ${stage} may run, not ${toRun.join(', ')}`);
    assert.equal(stages.find((e) => e.node === 'distro.packages')?.status, 'cached', `plan ${type}: the package stage is cached`);
    const r = await build(type);
    assert.ok(ran(r).every((n) => n === stage), `build ${type} ran ${ran(r).join(', ')}`);
  }

  const vmdk = join(work, 'out', 'vmdk', 'disk.vmdk');
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', vmdk], { encoding: 'utf8' }));
  assert.equal(info.format, 'vmdk');
  assert.equal(info['format-specific'].data['create-type'], 'streamOptimized');
  assert.equal(info['virtual-size'], 3 * 1024 ** 3 + 256 * 1024 ** 2, 'the disk of the blueprint: 3 GiB and its /var/log');
  assert.equal(execFileSync('tar', ['--list', '-f', join(work, 'out', 'gce', 'image.tar.gz')], { encoding: 'utf8' }), 'disk.raw\n');

  const booting = Date.now();
  const boot = await imgmake(['boot', 'vmdk', ...args, '--memory', '1024'], { cwd: work, env });
  t.diagnostic(`boot vmdk: ${Date.now() - booting} ms`);
  assert.equal(boot.code, 0, boot.stderr + boot.stdout.slice(-3000));
  assert.match(boot.stdout, /BP-CHECK hostname=bp-e2e .* end/, `no BP-CHECK line on the console:\n${boot.stdout.slice(-3000)}`);
});
