/**
 * The catalog's ostree types end to end, through the real CLI (issue 17):
 * - `imgmake build ostree-commit`: an archive repository whose one commit on the ref holds the
 *   prepared tree (no /etc, /usr/etc, the kernel and a dracut initramfs with ostree-prepare-root
 *   in /usr/lib/modules) and the tree's cache key as `imgmake.key`;
 * - the same build with the commit stage forced to run again gives the same checksum;
 * - commit 2 with one change (the hostname) and commit 1 as `--ostree-parent`: only the stages
 *   after the hostname run (never the package stage or dracut), and `ostree log` shows both.
 *
 * The cache is shared by every run of this machine ($IMGMAKE_OSTREE_TEST_CACHE, else
 * /var/tmp/imgmake-ostree-test): the first run installs Debian with dracut and runs dracut
 * (minutes: its own package stage, apart from the qcow2's), later ones commit in a minute or two.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { imgmake, ran, stageEvents, type CliResult } from './helpers/cli.js';

const CACHE = process.env['IMGMAKE_OSTREE_TEST_CACHE'] ?? '/var/tmp/imgmake-ostree-test';
const REF = 'debian/12/x86_64/edge';

function ostree(repo: string, ...args: string[]): string {
  return execFileSync('ostree', [`--repo=${repo}`, ...args], { encoding: 'utf8' });
}

/** out/ostree-commit/ostree-repo.tar unpacked into a new folder under `into`. */
function unpack(tar: string, into: string, name: string): string {
  const dir = join(into, name);
  mkdirSync(dir);
  execFileSync('tar', ['-xf', tar, '-C', dir]);
  return dir;
}

const keyOf = (r: CliResult, node: string): string => stageEvents(r).find((e) => e.node === node)!.key as string;

test('ostree-commit: a reproducible commit of the prepared tree, then a child commit with its parent; only the stages after the change run', { timeout: 3_600_000 }, async (t) => {
  const work = `${CACHE}-work`;
  mkdirSync(work, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'imgmake-ostree-e2e-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const env = { IMGMAKE_CACHE: CACHE };
  const out = join(work, 'out', 'ostree-commit');

  const started = Date.now();
  const one = await imgmake(['--json', 'build', 'ostree-commit'], { cwd: work, env });
  assert.equal(one.code, 0, one.stderr + one.stdout.slice(-3000));
  t.diagnostic(`commit 1: ${Date.now() - started} ms, ran ${ran(one).join(' ') || 'nothing'}`);
  const c1 = JSON.parse(readFileSync(join(out, 'ostree-commit.json'), 'utf8'));
  assert.equal(c1.ref, REF);
  assert.equal(c1.parent, null);
  // The build says the commit in its events, as the exported file does.
  assert.deepEqual(one.events.filter((e) => e.type === 'ostree-commit'), [{ type: 'ostree-commit', target: 'ostree-commit', ref: REF, commit: c1.commit, parent: null }]);
  copyFileSync(join(out, 'ostree-repo.tar'), join(scratch, 'commit1.tar'));
  const repo1 = unpack(join(out, 'ostree-repo.tar'), scratch, 'repo1');
  assert.match(readFileSync(join(repo1, 'config'), 'utf8'), /mode=archive/);
  assert.equal(ostree(repo1, 'rev-parse', REF).trim(), c1.commit);
  assert.equal(ostree(repo1, 'show', '--print-metadata-key=imgmake.key', c1.commit).trim(), `'${keyOf(one, 'ostree-tree.layout')}'`, 'the tree\'s cache key');
  const kver = ostree(repo1, 'show', '--print-metadata-key=ostree.linux', c1.commit).trim().replaceAll("'", '');
  assert.match(ostree(repo1, 'ls', c1.commit, `/usr/lib/modules/${kver}`), /initramfs\.img[\s\S]*vmlinuz/);
  assert.equal(ostree(repo1, 'cat', c1.commit, '/usr/etc/hostname'), 'debian\n');
  assert.match(ostree(repo1, 'ls', c1.commit, '/'), /l00777 0 0 +0 \/home -> var\/home/);
  assert.doesNotMatch(ostree(repo1, 'ls', c1.commit, '/'), / \/etc\n/);
  assert.match(ostree(repo1, 'cat', c1.commit, '/usr/lib/tmpfiles.d/imgmake-ostree.conf'), /^C \/var\/lib\/dpkg\/status - - - - \/usr\/share\/factory\/var\/lib\/dpkg\/status$/m);
  // dracut's initramfs has ostree's pivot into the deployment.
  const initramfs = join(scratch, 'initramfs.img');
  execFileSync('sh', ['-c', `ostree --repo=${repo1} cat ${c1.commit} /usr/lib/modules/${kver}/initramfs.img > ${initramfs}`]);
  assert.ok(readFileSync(initramfs).length > 1_000_000);

  // The commit stage again, on the same tree: the same checksum.
  const again = await imgmake(['--json', 'build', 'ostree-commit', '--from', 'ostree-commit.commit'], { cwd: work, env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(ran(again), ['ostree-commit.commit']);
  assert.equal(JSON.parse(readFileSync(join(out, 'ostree-commit.json'), 'utf8')).commit, c1.commit, 'a commit of the same tree is the same commit');

  // Commit 2: one change, commit 1 as its parent. The hostname is new on each run: the cache
  // persists across runs of this machine, and a hostname met before would find its commit cached.
  const building = Date.now();
  const hostname = `edge-${building.toString(36)}`;
  const two = await imgmake(['--json', 'build', 'ostree-commit', '--var', `hostname=${hostname}`, '--ostree-parent', join(scratch, 'commit1.tar')], { cwd: work, env });
  assert.equal(two.code, 0, two.stderr + two.stdout.slice(-3000));
  t.diagnostic(`commit 2: ${Date.now() - building} ms, ran ${ran(two).join(' ')}`);
  for (const node of ran(two)) assert.ok(['ostree-os.hostname', 'ostree-os.timezone', 'ostree-tree.layout', 'ostree-commit.commit'].includes(node), `${node} ran`);
  assert.ok(ran(two).includes('ostree-commit.commit'));
  const c2 = JSON.parse(readFileSync(join(out, 'ostree-commit.json'), 'utf8'));
  assert.equal(c2.parent, c1.commit);
  assert.deepEqual(two.events.filter((e) => e.type === 'ostree-commit').map((e) => [e.commit, e.parent]), [[c2.commit, c1.commit]]);
  const repo2 = unpack(join(out, 'ostree-repo.tar'), scratch, 'repo2');
  const log = ostree(repo2, 'log', REF);
  assert.match(log, new RegExp(`^commit ${c2.commit}\\n[\\s\\S]*^commit ${c1.commit}\\n`, 'm'), log);
  assert.equal(ostree(repo2, 'cat', c2.commit, '/usr/etc/hostname'), `${hostname}\n`);
  assert.equal(ostree(repo2, 'cat', c1.commit, '/usr/etc/hostname'), 'debian\n');

  // A URL and a missing parent are usage errors, before anything runs.
  const url = await imgmake(['build', 'ostree-commit', '--ostree-parent', 'http://127.0.0.1:1/repo'], { cwd: work, env });
  assert.equal(url.code, 2);
  assert.match(url.stderr, /a URL; imgmake reads the parent from this host/);
  const qcow = await imgmake(['build', 'qcow2', '--ostree-parent', join(scratch, 'commit1.tar')], { cwd: work, env });
  assert.equal(qcow.code, 2);
  assert.match(qcow.stderr, /--ostree-parent is for the ostree image types, not qcow2/);
});
