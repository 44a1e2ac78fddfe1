/**
 * The catalog's ostree types end to end, through the real CLI (issue 17):
 * - `imgmake build ostree-commit`: an archive repository whose one commit on the ref holds the
 *   prepared tree (no /etc, /usr/etc, the kernel and a dracut initramfs with ostree-prepare-root
 *   in /usr/lib/modules) and the tree's cache key as `imgmake.key`;
 * - the same build with the commit stage forced to run again gives the same checksum;
 * - commit 2 with one change (the hostname) and commit 1 as `--ostree-parent`: only the stages
 *   after the hostname run (never the package stage or dracut), and `ostree log` shows both;
 * - commit 2 again with commit 1's repository served by a real nginx as `--ostree-parent URL`:
 *   only the commit stage runs, the same commit; the same server state again is cached; after a
 *   new commit on the server's ref, `plan` runs the commit stage again (and nothing else); a server that does not answer fails (exit 1)
 *   with the cache untouched.
 *
 * The cache is shared by every run of this machine ($IMGMAKE_OSTREE_TEST_CACHE, else
 * /var/tmp/imgmake-ostree-test): the first run installs Debian with dracut and runs dracut
 * (minutes: its own package stage, apart from the qcow2's), later ones commit in a minute or two.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { imgmake, ran, stageEvents, type CliResult } from './helpers/cli.js';
import { freePort, startNginx } from './helpers/nginx.js';

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

/** Every path under DIR with its size and mtime: what a build that must not touch DIR leaves equal. */
function listing(dir: string): string[] {
  const lines: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p, { throwIfNoEntry: false });
      lines.push(`${p} ${st?.size} ${st?.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return lines.sort();
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

  // Commit 2 again with commit 1's repository served over HTTP as its parent (a real nginx on
  // loopback): its history is fetched on the host, the commit stage alone runs and makes the
  // same commit as with the tarball (same tree, same parent), whose history `ostree log` shows.
  const web = mkdtempSync(join(tmpdir(), 'imgmake-ostree-http-'));
  chmodSync(web, 0o755); // nginx's worker runs as an unprivileged user
  t.after(() => rmSync(web, { recursive: true, force: true }));
  const nginx = await startNginx(web);
  t.after(() => nginx.stop());
  const served = unpack(join(scratch, 'commit1.tar'), nginx.www, 'repo');
  execFileSync('chmod', ['-R', 'a+rX', nginx.www]);
  const url = `http://127.0.0.1:${nginx.port}/repo`;
  const viaUrl = await imgmake(['--json', 'build', 'ostree-commit', '--var', `hostname=${hostname}`, '--ostree-parent', url], { cwd: work, env });
  assert.equal(viaUrl.code, 0, viaUrl.stderr + viaUrl.stdout.slice(-3000));
  assert.deepEqual(ran(viaUrl), ['ostree-commit.commit']);
  assert.match(viaUrl.stderr, new RegExp(`ostree parent ${url}: ${REF} = ${c1.commit} \\((1 commit fetched|fetched before)\\)`)); // before: by an earlier run on this cache
  const c2u = JSON.parse(readFileSync(join(out, 'ostree-commit.json'), 'utf8'));
  assert.deepEqual([c2u.commit, c2u.parent], [c2.commit, c1.commit], 'the same commit as from the tarball');
  const repoU = unpack(join(out, 'ostree-repo.tar'), scratch, 'repo-url');
  assert.match(ostree(repoU, 'log', REF), new RegExp(`^commit ${c2.commit}\\n[\\s\\S]*^commit ${c1.commit}\\n`, 'm'));
  assert.equal(ostree(repoU, 'cat', c2.commit, '/usr/etc/hostname'), `${hostname}\n`);
  // The same server state: everything cached (the key holds the fetched commit, not the URL).
  const cachedUrl = await imgmake(['--json', 'build', 'ostree-commit', '--var', `hostname=${hostname}`, '--ostree-parent', url], { cwd: work, env });
  assert.equal(cachedUrl.code, 0, cachedUrl.stderr);
  assert.deepEqual(ran(cachedUrl), []);
  // A new commit on the server's ref: the commit stage would run again, on the new parent, and
  // only it (`plan`: the commit itself is what the steps above showed; this saves one in CI).
  const extra = join(scratch, 'extra');
  mkdirSync(join(extra, 'usr/etc'), { recursive: true });
  writeFileSync(join(extra, 'usr/etc/motd'), 'a commit made on the server\n');
  execFileSync('ostree', [`--repo=${served}`, 'commit', `--branch=${REF}`, `--parent=${c1.commit}`, '--subject=server', `--tree=dir=${extra}`], { encoding: 'utf8' });
  execFileSync('chmod', ['-R', 'a+rX', nginx.www]);
  const moved = await imgmake(['--json', 'plan', 'ostree-commit', '--var', `hostname=${hostname}`, '--ostree-parent', url], { cwd: work, env });
  assert.equal(moved.code, 0, moved.stderr + moved.stdout.slice(-3000));
  const planned = moved.events.filter((e) => e.type === 'plan-stage');
  assert.ok(planned.length > 5, JSON.stringify(planned));
  assert.deepEqual(planned.filter((e) => e.status === 'run').map((e) => e.node), ['ostree-commit.commit'], JSON.stringify(planned));

  // A server that does not answer: exit 1 with the URL and the cause, nothing run, the cache untouched.
  const before = listing(CACHE);
  const down = await imgmake(['--json', 'build', 'ostree-commit', '--ostree-parent', `http://127.0.0.1:${await freePort()}/repo`], { cwd: work, env });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /--ostree-parent http:\/\/127\.0\.0\.1:\d+\/repo: unreachable: .*ECONNREFUSED.* \(http:\/\/127\.0\.0\.1:\d+\/repo\/config\)/);
  assert.deepEqual(ran(down), []);
  assert.deepEqual(listing(CACHE), before, 'the cache is untouched');

  // Another scheme and a missing parent are usage errors, before anything runs.
  const ftp = await imgmake(['build', 'ostree-commit', '--ostree-parent', 'ftp://127.0.0.1/repo'], { cwd: work, env });
  assert.equal(ftp.code, 2);
  assert.match(ftp.stderr, /only http and https repositories are fetched/);
  const qcow = await imgmake(['build', 'qcow2', '--ostree-parent', join(scratch, 'commit1.tar')], { cwd: work, env });
  assert.equal(qcow.code, 2);
  assert.match(qcow.stderr, /--ostree-parent is for the ostree image types, not qcow2/);
});
