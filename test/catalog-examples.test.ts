/**
 * examples/blueprints/dev.toml, the cheapest honest check: `imgmake lock` resolves its packages
 * against the real mirror, and `imgmake plan qcow2` shows every customization it asks for as the
 * stage that makes it (and its packages in the package stage), with nothing built. A build of it
 * would add a package stage of its own (minutes cold) for what the catalog end-to-end test
 * already shows customization by customization; web.toml is built by the README's quick start.
 *
 * The cache is the catalog tests' ($IMGMAKE_CATALOG_TEST_CACHE, else
 * /var/tmp/imgmake-catalog-test): only its lock is written there (and the composed definition).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { imgmake, repoRoot } from './helpers/cli.js';

const CACHE = process.env['IMGMAKE_CATALOG_TEST_CACHE'] ?? '/var/tmp/imgmake-catalog-test';

test('examples/blueprints/dev.toml: locks against the mirror and plans a stage for each customization', { timeout: 600_000 }, async (t) => {
  const work = `${CACHE}-examples`;
  mkdirSync(work, { recursive: true });
  const bp = join(repoRoot, 'examples', 'blueprints', 'dev.toml');
  const env = { IMGMAKE_CACHE: CACHE };
  const started = Date.now();
  const locked = await imgmake(['lock', '--blueprint', bp], { cwd: work, env });
  assert.equal(locked.code, 0, locked.stderr);
  const plan = await imgmake(['--json', 'plan', 'qcow2', '--blueprint', bp], { cwd: work, env });
  assert.equal(plan.code, 0, plan.stderr);
  t.diagnostic(`lock and plan: ${Date.now() - started} ms`);
  const nodes = plan.events.filter((e) => e.type === 'plan-stage').map((e) => e.node as string);
  for (const n of ['locale-gen', 'locale', 'keyboard', 'users', 'ntp', 'directories', 'sshd', 'firewall', 'firstboot', 'services', 'mountpoints']) {
    assert.ok(nodes.includes(`blueprint.${n}`), `blueprint.${n} in ${nodes.join(' ')}`);
  }
  assert.ok(nodes.includes('disk.fs-home') && nodes.includes('disk.fs-var-log'), 'a filesystem each for /home and /var/log');

  // The composed definition (beside the lock, in the cache) carries the values themselves.
  const dir = join(CACHE, 'catalog', `debian-12-x86_64-${createHash('sha256').update(bp).digest('hex').slice(0, 12)}`);
  const yaml = readFileSync(join(dir, 'imgmake.yaml'), 'utf8');
  for (const want of ['hostname: devbox', 'timezone: Europe/Berlin', 'console=ttyS0,115200 quiet', 'PasswordAuthentication no', 'PermitRootLogin no', 'name: docker', 'gid: 999', '/opt/projects', 'NTP=ntp.example.org', 'tcp dport 22 accept', 'tcp dport 8000-8080 accept', 'devbox: first boot']) {
    assert.ok(yaml.includes(want), `${want} in the composed definition`);
  }
  const lock = readFileSync(join(dir, 'imgmake.lock'), 'utf8');
  for (const p of ['build-essential', 'git', 'vim', 'tmux', 'python3', 'locales', 'console-setup', 'nftables']) {
    assert.match(lock, new RegExp(`"name":"${p}","version"`), `${p} is locked`);
  }
});
