/**
 * ostree.layout through the real sandbox on a small OS-like tree: what moved where, the
 * tmpfiles.d lines that recreate /var (checked by the host's systemd-tmpfiles filling an empty
 * /var from the factory), and the trees it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 60_000 };

/** A tree shaped like an installed Debian: /etc, /var with dpkg's state, /root, /usr/local, /home. */
function osTree(tree: string): void {
  // Debian's base-files makes both /opt and /var/opt.
  for (const d of ['usr/bin', 'usr/lib/tmpfiles.d', 'usr/local/bin', 'etc/default', 'home/alice', 'root', 'var/lib/dpkg', 'var/cache/man', 'var/log', 'var/tmp', 'var/opt/old', 'tmp', 'opt/app', 'boot']) {
    mkdirSync(join(tree, d), { recursive: true });
  }
  writeFileSync(join(tree, 'etc/hostname'), 'debian\n');
  writeFileSync(join(tree, 'etc/default/locale'), 'LANG=C.UTF-8\n');
  writeFileSync(join(tree, 'var/lib/dpkg/status'), 'Package: base-files\n');
  writeFileSync(join(tree, 'usr/local/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(tree, 'home/alice/notes'), 'hi\n');
  chownSync(join(tree, 'home/alice'), 1000, 1000);
  chmodSync(join(tree, 'root'), 0o700);
  chmodSync(join(tree, 'var/tmp'), 0o1777);
  chownSync(join(tree, 'var/cache/man'), 6, 12);
  chmodSync(join(tree, 'var/cache/man'), 0o2755);
  symlinkSync('/run', join(tree, 'var/run'));
  symlinkSync('/run/lock', join(tree, 'var/lock'));
  // systemd's own tmpfiles.d declares these: they are left to it.
  writeFileSync(join(tree, 'usr/lib/tmpfiles.d/var.conf'), '# systemd\nL /var/run - - - - ../run\nd /var/log 0755 - - -\n');
}

test('/etc → /usr/etc, /var into the factory with tmpfiles.d lines, state directories linked into /var, /sysroot and /ostree', T, async () => {
  await withRule('ostree.layout', {}, { tree: osTree }, (r) => {
    assertOk(r);
    const t = r.tree;
    assert.equal(readFileSync(join(t, 'usr/etc/hostname'), 'utf8'), 'debian\n');
    assert.equal(existsSync(join(t, 'etc')), false);
    assert.deepEqual(readdirSync(join(t, 'var')), [], '/var is empty');
    assert.equal(perms(lstatSync(join(t, 'var')).mode), 0o755);
    for (const [path, target] of [['home', 'var/home'], ['root', 'var/roothome'], ['opt', 'var/opt'], ['srv', 'var/srv'], ['mnt', 'var/mnt'], ['usr/local', '../var/usrlocal'], ['ostree', 'sysroot/ostree']]) {
      assert.equal(readlinkSync(join(t, path!)), target, path);
    }
    assert.ok(lstatSync(join(t, 'sysroot')).isDirectory());
    assert.deepEqual(readdirSync(join(t, 'sysroot')), []);
    const factory = join(t, 'usr/share/factory/var');
    assert.equal(readFileSync(join(factory, 'lib/dpkg/status'), 'utf8'), 'Package: base-files\n');
    assert.equal(readFileSync(join(factory, 'usrlocal/bin/tool'), 'utf8'), '#!/bin/sh\n');
    assert.deepEqual(readdirSync(join(factory, 'opt')).sort(), ['app', 'old'], '/opt joined /var/opt');
    assert.equal(lstatSync(join(factory, 'home/alice')).uid, 1000);
    assert.equal(perms(lstatSync(join(factory, 'roothome')).mode), 0o700, "/root's mode moved with it");
    const lines = readFileSync(join(t, 'usr/lib/tmpfiles.d/imgmake-ostree.conf'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    assert.ok(lines.includes('d /var/cache/man 2755 6 12 -'), lines.join('\n'));
    assert.ok(lines.includes('d /var/tmp 1777 0 0 -'));
    assert.ok(lines.includes('d /var/home/alice 0755 1000 1000 -'));
    assert.ok(lines.includes('d /var/roothome 0700 0 0 -'));
    assert.ok(lines.includes('C /var/lib/dpkg/status - - - - /usr/share/factory/var/lib/dpkg/status'));
    assert.ok(lines.includes('L /var/lock - - - - /run/lock'));
    assert.ok(!lines.some((l) => l.startsWith('L /var/run ') || l.startsWith('d /var/log ')), 'paths systemd declares are left to it');
    assert.ok(lines.indexOf('d /var/lib 0755 0 0 -') < lines.indexOf('d /var/lib/dpkg 0755 0 0 -'), 'a directory before its entries');

    // The lines do what they say: systemd-tmpfiles fills an empty /var from the factory.
    // (--root: paths and the copies' sources are read inside the tree.)
    execFileSync('systemd-tmpfiles', ['--create', `--root=${t}`, join(t, 'usr/lib/tmpfiles.d/imgmake-ostree.conf')], { stdio: 'pipe' });
    assert.equal(readFileSync(join(t, 'var/lib/dpkg/status'), 'utf8'), 'Package: base-files\n');
    assert.equal(readFileSync(join(t, 'usr/local/bin/tool'), 'utf8'), '#!/bin/sh\n', '/usr/local reached through its link');
    assert.equal(perms(lstatSync(join(t, 'var/cache/man')).mode), 0o2755);
    assert.equal(lstatSync(join(t, 'var/cache/man')).gid, 12);
    assert.equal(readlinkSync(join(t, 'var/lock')), '/run/lock');
    assert.equal(readFileSync(join(t, 'home/alice/notes'), 'utf8'), 'hi\n');
  });
});

test('a tree without the state directories gets them empty in /var (root\'s 0700)', T, async () => {
  const bare = (t: string) => {
    mkdirSync(join(t, 'usr/bin'), { recursive: true });
    mkdirSync(join(t, 'etc'));
  };
  await withRule('ostree.layout', { factory: '/usr/share/imgmake/var', tmpfiles: '/usr/lib/tmpfiles.d/state.conf' }, { tree: bare }, (r) => {
    assertOk(r);
    const lines = readFileSync(join(r.tree, 'usr/lib/tmpfiles.d/state.conf'), 'utf8');
    assert.match(lines, /^d \/var\/roothome 0700 0 0 -$/m);
    assert.match(lines, /^d \/var\/usrlocal 0755 0 0 -$/m);
    assert.ok(lstatSync(join(r.tree, 'usr/share/imgmake/var/home')).isDirectory());
    assert.equal(readlinkSync(join(r.tree, 'home')), 'var/home');
  });
});

test('trees it cannot prepare fail, saying why', T, async () => {
  await withRule('ostree.layout', {}, { tree: (t) => mkdirSync(join(t, 'etc')) }, (r) => assertFails(r, 'the tree has no /usr directory'));
  await withRule('ostree.layout', {}, { tree: (t) => { osTree(t); mkdirSync(join(t, 'usr/etc')); } }, (r) => assertFails(r, '/usr/etc exists already'));
  await withRule('ostree.layout', {}, { tree: (t) => { osTree(t); mkdirSync(join(t, 'var/opt/app')); } }, (r) => assertFails(r, '/opt/app and /var/opt/app both exist'));
  await withRule('ostree.layout', {}, { tree: (t) => { osTree(t); writeFileSync(join(t, 'var/lib/with space'), ''); } }, (r) =>
    assertFails(r, '/var/lib/with space: whitespace, a backslash or %'),
  );
  await withRule('ostree.layout', {}, { tree: (t) => { osTree(t); execFileSync('mkfifo', [join(t, 'var/lib/fifo')]); } }, (r) => assertFails(r, '/var/lib/fifo: a FIFO in /var'));
  assert.notDeepEqual(await schemaErrors('ostree.layout', { factory: '/var/factory' }), []);
  assert.notDeepEqual(await schemaErrors('ostree.layout', { tmpfiles: '/etc/tmpfiles.d/x.conf' }), []);
});
