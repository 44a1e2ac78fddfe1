/**
 * A mirror that cannot be reached while locking is the run's failure, not the user's: exit 1
 * (never 2, which says "fix your input"), a `network` diagnostic naming what apt could not
 * reach, and no imgmake.lock written. The mirror is a loopback port nothing listens on, so the
 * test needs no network and fails fast.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake } from './helpers/cli.js';
import { freePort } from './helpers/nginx.js';

test('locking against an unreachable mirror: exit 1, a network diagnostic, no lock written', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-lock-network-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'imgmake.yaml'),
    ['version: 1', 'pipelines:', '  os:', '    stages:', '      - name: packages', '        rule: apt.install', '        options: { variant: essential, packages: [hello] }', 'targets:', '  os: { pipeline: os }', ''].join('\n'),
  );
  const port = await freePort();
  const mirror = `http://127.0.0.1:${port}/debian`;
  const r = await imgmake(['--json', '-C', dir, '--var', `debian_mirror=${mirror}`, '--var', `debian_security_mirror=${mirror}-security`, 'lock']);
  assert.equal(r.code, 1, `exit 1, not 2:\n${r.stderr}`);
  const ds = r.events.filter((e) => e.type === 'diagnostic').map((e) => e.diagnostic);
  assert.equal(ds.length, 1);
  assert.equal(ds[0].reason, 'network');
  assert.match(ds[0].message, /the mirror could not be reached while locking bookworm/);
  assert.match(ds[0].message, new RegExp(`127\\.0\\.0\\.1:${port}`), 'names what it could not reach');
  assert.match(r.stderr, /debian_mirror/, 'says how to name another mirror');
  assert.equal(existsSync(join(dir, 'imgmake.lock')), false);
});
