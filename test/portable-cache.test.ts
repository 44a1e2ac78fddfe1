/**
 * A cache directory is portable: saved with tar the way the README tells a CI to (as root,
 * xattrs and numeric owners kept), restored at another path for another checkout of the
 * project, it is used as it is — no stage runs, `cache verify` finds every layer intact —
 * including what only survives a careful copy: a whiteout (a file deleted by a later stage),
 * an opaque directory, a file capability, setuid, hardlinks and odd owners.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, projectWith, ran } from './helpers/cli.js';

const YAML = `version: 1
pipelines:
  rootfs:
    stages:
      - name: base
        rule: shell.run
        options:
          script: |
            mkdir -p etc/old usr/bin var/lib
            echo gone > etc/gone; echo old > etc/old/file
            cp /bin/true usr/bin/ping
            echo linked > usr/bin/a; ln usr/bin/a usr/bin/b
      - name: change
        rule: shell.run
        options:
          script: |
            rm etc/gone                       # a whiteout in this layer
            rm -r etc/old; mkdir etc/old      # an opaque directory
            echo new > etc/old/fresh
            setcap cap_net_raw+ep usr/bin/ping && chmod 4755 usr/bin/ping
            chown 1234:5678 var/lib
      - name: list
        rule: shell.run
        options:
          script: |
            { find . -mindepth 1 -printf '%p %y %#m %U:%G %n\\n' | LC_ALL=C sort; getcap usr/bin/ping; } > /tmp/l
            mv /tmp/l etc/listing
targets:
  rootfs: { pipeline: rootfs }
`;

test('a cache saved with tar and restored elsewhere, for another checkout, runs no stage and verifies clean', async (t) => {
  const a = await projectWith(YAML);
  t.after(a.cleanup);
  const first = await imgmake(['--json', '-f', a.file, 'build', 'rootfs']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(ran(first).length, 3);
  const listing = readFileSync(join(a.dir, 'out', 'rootfs', 'etc', 'listing'), 'utf8');
  assert.doesNotMatch(listing, /etc\/gone/);
  assert.doesNotMatch(listing, /etc\/old\/file/);
  assert.match(listing, /usr\/bin\/ping f 04755 /);
  assert.match(listing, /cap_net_raw[=+]ep/);

  // Save (as the README says), then restore at another path, for another copy of the project.
  const saved = mkdtempSync(join(tmpdir(), 'imgmake-ci-cache-'));
  t.after(() => rmSync(saved, { recursive: true, force: true }));
  const tarball = join(saved, 'imgmake-cache.tar.zst');
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-I', 'zstd', '-C', a.dir, '-cf', tarball, 'cache']);
  const b = await projectWith(YAML);
  t.after(b.cleanup);
  const elsewhere = join(saved, 'restored');
  execFileSync('mkdir', ['-p', elsewhere]);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-I', 'zstd', '-C', elsewhere, '-xf', tarball]);
  rmSync(join(a.dir, 'cache'), { recursive: true }); // the original is gone: nothing can point back at it

  const again = await imgmake(['--json', '-f', b.file, '--cache', join(elsewhere, 'cache'), 'build', 'rootfs']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(ran(again), [], 'no stage runs on the restored cache');
  assert.equal(readFileSync(join(b.dir, 'out', 'rootfs', 'etc', 'listing'), 'utf8'), listing, 'the same tree');
  const verify = await imgmake(['--json', '-f', b.file, '--cache', join(elsewhere, 'cache'), 'cache', 'verify']);
  assert.equal(verify.code, 0, verify.stderr);
  const v = verify.events.find((e) => e.type === 'cache-verify')!;
  assert.deepEqual([v.checked.trees, v.unchecked], [3, 0], JSON.stringify(v));
  assert.deepEqual(verify.events.filter((e) => e.type === 'cache-corrupt'), []);

  // What a careless copy loses (no xattrs): verify notices instead of trusting it.
  const careless = join(saved, 'careless');
  execFileSync('cp', ['-r', join(elsewhere, 'cache'), careless]);
  const bad = await imgmake(['--json', '-f', b.file, '--cache', careless, 'cache', 'verify']);
  assert.equal(bad.code, 0, bad.stderr);
  assert.ok(bad.events.some((e) => e.type === 'cache-corrupt'), 'a copy without xattrs and owners is caught by verify');
});
