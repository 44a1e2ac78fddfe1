/**
 * users.firstboot through the real sandbox, then its unit's script run the way the booted
 * system runs it: in a bubblewrap sandbox whose / is a tree laid out as an ostree deployment
 * (the tree's /usr bound read-only, /home → var/home, a Debian user database in /etc), with the
 * host's tools bound over the tree's empty /usr/bin and /usr/lib (a tree from the Debian package
 * stage would take minutes). It shows: the rule writes only under /usr (the data, the unit, its
 * wants link); the script adds the user and its key to /etc and /var/home, writes its stamp,
 * never writes /usr, and a second run changes nothing; the unit's condition names that stamp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 60_000 };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3m2c4b8h1 edge@laptop';
const HASH = '$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg';

/** A deployed ostree root, small: the user database, /etc/skel, /home → var/home, an empty /var/home. */
function deployed(tree: string): void {
  for (const d of ['etc/skel', 'var/home', 'var/lib', 'usr/bin', 'usr/sbin', 'usr/lib/x86_64-linux-gnu', 'usr/lib64', 'tmp', 'proc', 'dev']) mkdirSync(join(tree, d), { recursive: true });
  writeFileSync(join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n', { mode: 0o644 });
  writeFileSync(join(tree, 'etc/group'), 'root:x:0:\nsudo:x:27:\nshadow:x:42:\n', { mode: 0o644 });
  writeFileSync(join(tree, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  chownSync(join(tree, 'etc/shadow'), 0, 42);
  writeFileSync(join(tree, 'etc/gshadow'), 'root:*::\nsudo:*::\nshadow:*::\n', { mode: 0o640 });
  writeFileSync(join(tree, 'etc/skel/.profile'), '# ~/.profile\n');
  symlinkSync('var/home', join(tree, 'home'));
  // Debian's awk is an alternative (/usr/bin/awk → /etc/alternatives/awk → mawk), as in the image.
  mkdirSync(join(tree, 'etc/alternatives'));
  symlinkSync(readlinkSync('/etc/alternatives/awk'), join(tree, 'etc/alternatives/awk'));
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(tree, d));
}

/** Runs the unit's script with the tree as /, its /usr read-only, the host's tools over the tree's empty tool folders. */
function boot(tree: string): string {
  return execFileSync(
    'bwrap',
    [
      '--bind', tree, '/',
      '--ro-bind', join(tree, 'usr'), '/usr',
      ...['/usr/bin', '/usr/sbin', '/usr/lib/x86_64-linux-gnu', '/usr/lib64'].flatMap((d) => ['--ro-bind', d, d]),
      '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp',
      '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--clearenv', '--setenv', 'PATH', '/usr/sbin:/usr/bin',
      '/usr/lib/imgmake/users/apply',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** Every path under DIR (links: their target) with mode, owner and content digest. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : readFileSync(p, 'utf8').length;
      out.push(`${relative(dir, p)} ${perms(st.mode).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return out;
}

test('the data and a unit under /usr only; at boot the user, its group and key land in /etc and /var/home, once, /usr untouched', T, async () => {
  const scratch = tempDir('imgmake-users-firstboot-');
  try {
    const tree = join(scratch.dir, 'tree');
    mkdirSync(tree);
    deployed(tree);
    const etcBefore = listing(join(tree, 'etc'));
    const options = { groups: [{ name: 'edge', gid: 1500 }], users: [{ name: 'edge', uid: 1500, gid: 1500, groups: ['sudo'], password_hash: HASH, ssh_keys: [KEY], gecos: 'Edge device' }] };
    await withRule('users.firstboot', options, { tree }, (r) => {
      assertOk(r);
      assert.deepEqual(listing(join(tree, 'etc')), etcBefore, 'the rule writes no /etc');
      assert.deepEqual(readdirSync(join(tree, 'var/home')), [], 'nor a home');
      const data = '/usr/lib/imgmake/users';
      assert.deepEqual(readdirSync(join(tree, data)).sort(), ['apply', 'keys-0', 'plan', 'prelude.sh', 'users.awk', 'users.sh']);
      assert.equal(perms(statSync(join(tree, data, 'plan')).mode), 0o600);
      assert.equal(perms(statSync(join(tree, data, 'apply')).mode), 0o755);
      assert.equal(readFileSync(join(tree, data, 'keys-0'), 'utf8'), `${KEY}\n`);
      const unit = readFileSync(join(tree, 'usr/lib/systemd/system/imgmake-users.service'), 'utf8');
      const stamp = /^ConditionPathExists=!(\/var\/lib\/imgmake\/users\/[0-9a-f]{64}\.done)$/m.exec(unit)?.[1];
      assert.ok(stamp, unit);
      assert.match(unit, /^Before=systemd-user-sessions\.service ssh\.service$/m);
      assert.equal(readlinkSync(join(tree, 'usr/lib/systemd/system/multi-user.target.wants/imgmake-users.service')), '../imgmake-users.service');

      // The boot: users.add's code on /, /usr read-only.
      const usrBefore = listing(join(tree, 'usr'));
      const said = boot(tree);
      assert.match(said, /imgmake-users: the image's users applied/);
      assert.match(readFileSync(join(tree, 'etc/passwd'), 'utf8'), /^edge:x:1500:1500:Edge device:\/home\/edge:\/bin\/bash$/m);
      assert.match(readFileSync(join(tree, 'etc/group'), 'utf8'), /^sudo:x:27:edge$/m);
      assert.match(readFileSync(join(tree, 'etc/shadow'), 'utf8'), new RegExp(`^edge:${HASH.replaceAll('$', '\\$')}:\\d+:0:99999:7:::$`, 'm'));
      const home = join(tree, 'var/home/edge');
      assert.equal(perms(statSync(home).mode), 0o700);
      assert.equal(statSync(home).uid, 1500);
      assert.equal(readFileSync(join(home, '.profile'), 'utf8'), '# ~/.profile\n');
      assert.equal(readFileSync(join(home, '.ssh/authorized_keys'), 'utf8'), `${KEY}\n`);
      assert.deepEqual([statSync(join(home, '.ssh/authorized_keys')).uid, perms(statSync(join(home, '.ssh/authorized_keys')).mode)], [1500, 0o600]);
      assert.ok(existsSync(join(tree, stamp)), 'the stamp the unit\'s condition names');
      assert.deepEqual(listing(join(tree, 'usr')), usrBefore, '/usr was not written');

      // Run again (the unit would not: its stamp exists): the same user database and home.
      const etcAfter = listing(join(tree, 'etc')).filter((l) => !l.startsWith('shadow '));
      const homeAfter = listing(join(tree, 'var/home'));
      boot(tree);
      assert.deepEqual(listing(join(tree, 'etc')).filter((l) => !l.startsWith('shadow ')), etcAfter);
      assert.deepEqual(listing(join(tree, 'var/home')), homeAfter);
      assert.equal(readFileSync(join(tree, 'etc/passwd'), 'utf8').match(/^edge:/gm)?.length, 1);
    });
  } finally {
    scratch.cleanup();
  }
  assert.notDeepEqual(await schemaErrors('users.firstboot', { users: [{ name: 'Bad Name' }] }), []);
  assert.notDeepEqual(await schemaErrors('users.firstboot', { users: [{ name: 'x', ssh_keys: ['two\nlines'] }] }), []);
});
