/**
 * The catalog end to end: `imgmake build qcow2 --blueprint e2e.toml` from a folder with no
 * imgmake.yaml, then one boot in QEMU (software emulation unless KVM probes fine) where a unit
 * the blueprint wrote and enabled prints, on the serial console, each customization as the
 * booted system sees it: hostname, a user's groups and key, a package the distro part does not
 * install, an enabled and a disabled service, a firewall port and service, a file, a directory,
 * a /var/log filesystem of the asked size, another kernel package, a plain-text password that
 * pam_unix accepts, a generated locale, a CA certificate in the bundle and a first-boot script
 * that ran once. Then `plan` shows what one edited customization
 * reruns (its stage and what follows it, never the package stage), `watch` reruns exactly that
 * when the blueprint is saved, and a new package needs the package stage locked again.
 *
 * The cache is shared by every run of this machine ($IMGMAKE_CATALOG_TEST_CACHE, else
 * /var/tmp/imgmake-catalog-test), and the blueprint is copied to a fixed path beside it, so
 * its lock (kept in the cache, per blueprint path) and the package stage are reused: the first
 * run installs Debian (minutes), later ones rebuild little and boot once.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { once } from 'node:events';
import { imgmake, ran, repoRoot, startImgmake } from './helpers/cli.js';
import { events } from './helpers/events.js';

const CACHE = process.env['IMGMAKE_CATALOG_TEST_CACHE'] ?? '/var/tmp/imgmake-catalog-test';

test('catalog: a blueprint builds a qcow2 that boots with every customization; an edit replans only what it touches', { timeout: 3_600_000 }, async (t) => {
  const work = `${CACHE}-work`;
  mkdirSync(work, { recursive: true });
  const bp = join(work, 'e2e.toml');
  copyFileSync(join(repoRoot, 'test', 'fixtures', 'catalog', 'e2e.toml'), bp);
  const env = { IMGMAKE_CACHE: CACHE };
  const args = ['--blueprint', bp];

  const started = Date.now();
  const built = await imgmake(['--json', 'build', 'qcow2', ...args], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr + built.stdout.slice(-3000));
  t.diagnostic(`build: ${Date.now() - started} ms, ran ${ran(built).length} stages`);
  assert.ok(statSync(join(work, 'out', 'qcow2', 'disk.qcow2')).size > 0);

  const booting = Date.now();
  const boot = await imgmake(['boot', 'qcow2', ...args, '--memory', '1024'], { cwd: work, env });
  t.diagnostic(`boot: ${Date.now() - booting} ms`);
  assert.equal(boot.code, 0, boot.stderr + boot.stdout.slice(-3000));
  const line = /BP-CHECK (.*) end/.exec(boot.stdout)?.[1];
  assert.ok(line, `no BP-CHECK line on the console:\n${boot.stdout.slice(-3000)}`);
  const seen = Object.fromEntries(line.split(' ').map((kv) => kv.split('=')).filter((kv) => kv.length === 2));
  // That the line is there at all shows the enabled service: it is the blueprint's own unit.
  assert.equal(seen['hostname'], 'bp-e2e');
  assert.deepEqual(seen['groups']!.split(',').sort(), ['adm', 'alice', 'sudo']);
  assert.equal(seen['key'], 'alice@example');
  // hello speaks the system's locale (LANG=de_DE.UTF-8, generated in the image).
  assert.match(line, /hello=Hallo, Welt!/, 'the package the distro part does not install, in the blueprint\'s locale');
  assert.equal(seen['timer'], 'disabled');
  assert.equal(seen['nft'], '1', 'the firewall accepts the port');
  assert.equal(seen['file'], 'from_the_blueprint');
  assert.equal(seen['dir'], 'alice:750');
  assert.equal(seen['varlog'], `ext4:${256 * 1024 * 1024}`);
  assert.match(seen['kernel']!, /-cloud-amd64$/, 'kernel.name: the cloud kernel in place of the default one');
  assert.equal(seen['pw'], 'ok', 'pam_unix accepts the password imgmake hashed from plain text');
  assert.equal(seen['firstboot'], 'e2e.done', 'the first-boot script ran and left its stamp');
  assert.equal(seen['lang'], 'de_DE.UTF-8');
  assert.equal(seen['day'], 'Donnerstag', 'the generated locale works');
  assert.equal(seen['ca'], '1', 'the CA certificate is in the bundle');
  assert.equal(seen['http'], '1', 'the firewall service http opens port 80');

  // One customization edited: its stage and those after it, the disk; not the packages. The
  // cache is shared between runs (the edited state may be cached already), so what the edit
  // touches is read from the keys plan gives before and after it; reasons when it will run.
  const text = readFileSync(bp, 'utf8');
  const planKeys = async (): Promise<Record<string, any>[]> => {
    const r = await imgmake(['--json', 'plan', 'qcow2', ...args], { cwd: work, env });
    assert.equal(r.code, 0, r.stderr);
    return r.events.filter((e) => e.type === 'plan-stage');
  };
  const before = await planKeys();
  writeFileSync(bp, text.replace('data = "from the blueprint\\n"', 'data = "edited\\n"'));
  const stages = await planKeys();
  const key = new Map(before.map((e) => [e.node as string, e.key as string]));
  const willRun = stages.filter((e) => key.get(e.node) !== e.key).map((e) => e.node as string).sort();
  assert.deepEqual(willRun, ['blueprint.files', 'blueprint.firewall', 'blueprint.firstboot', 'blueprint.services', 'disk.bios', 'disk.esp', 'disk.fs-var-log', 'disk.root', 'esp.grub', 'qcow2.0']);
  const files = stages.find((e) => e.node === 'blueprint.files')!;
  if (files.status === 'run') assert.deepEqual(files.reasons, ['option files changed']);
  for (const cached of ['distro.packages', 'blueprint.locale-gen', 'blueprint.users', 'blueprint.cacerts', 'blueprint.directories', 'blueprint.mountpoints']) {
    assert.equal(stages.find((e) => e.node === cached)?.status, 'cached', cached);
  }

  // The same edit saved under watch: it re-reads the blueprint and reruns exactly those stages.
  writeFileSync(bp, text);
  const watch = startImgmake(['--json', 'watch', 'qcow2', ...args, '--locked'], { cwd: work, env });
  t.after(() => watch.kill('SIGKILL'));
  const ev = events(watch);
  assert.deepEqual((await ev.next((e) => e.type === 'rebuild', 'the first (no-op) build under watch', 300_000)).at(-1)!.ran, []);
  await ev.next((e) => e.type === 'watch' && e.state === 'idle', 'idle');
  writeFileSync(bp, text.replace('data = "from the blueprint\\n"', 'data = "edited\\n"'));
  const edit = (await ev.next((e) => e.type === 'rebuild', 'the rebuild after the blueprint edit', 600_000)).at(-1)!;
  assert.equal(edit.result, 'built', ev.stderr);
  assert.ok(edit.changed.some((f: string) => f.endsWith('e2e.toml')), JSON.stringify(edit));
  assert.ok(edit.ran.every((n: string) => willRun.includes(n)), `ran only what the edit touches: ${edit.ran}`);
  watch.kill('SIGINT');
  assert.equal((await once(watch, 'exit'))[0], 130);

  // A new package: the package stage and everything after it.
  writeFileSync(bp, text.replace('name = "hello"', 'name = "hello"\n\n[[packages]]\nname = "jq"'));
  const more = await imgmake(['--json', 'plan', 'qcow2', ...args], { cwd: work, env });
  // Its lock entry is missing: plan reads the lock and says to lock it.
  assert.equal(more.code, 2);
  assert.match(more.stderr, /imgmake\.lock has no lock for distro\.packages/);
  writeFileSync(bp, text);
});
