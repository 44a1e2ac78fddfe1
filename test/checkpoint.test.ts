/**
 * Stage checkpoints through the real CLI, bubblewrap and cache, on a copy of examples/hello with
 * one more stage (`rootfs.extras`: a hardlink, an xattr, an owner, a setuid bit, some output):
 * `imgmake shell` (stdin piped, never a terminal here), `export`, `log`, and the errors for an
 * unknown or unbuilt NODE.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imgmake, startImgmake, tempProject, type CliResult } from './helpers/cli.js';
import { processesWith, snapshot, uniqueMarker, waitFor } from './helpers/sandbox-fixtures.js';

const EXTRAS = `
      - name: extras
        rule: shell.run
        options:
          script: |
            ln etc/motd etc/motd.hard
            setfattr -n user.imgmake -v checkpoint etc/motd
            chown 1234:5678 srv/www/index.html
            chmod 4750 usr/local/bin/greet
            echo 'hello from the log'
            echo 'to stderr' >&2
            exit \${extras_exit}
`;

let project: Awaited<ReturnType<typeof tempProject>>;

/** imgmake on the built project; `input` is piped to its stdin. */
function im(args: string[], input?: string): Promise<CliResult> {
  return imgmake(['-f', project.file, ...args], input === undefined ? {} : { input });
}

const workDirs = (): string[] => readdirSync(join(project.dir, 'cache', 'work'));

before(async () => {
  project = await tempProject();
  const yaml = await readFile(project.file, 'utf8');
  await writeFile(project.file, yaml.replace('  timezone: Europe/Berlin\n', '  timezone: Europe/Berlin\n  extras_exit: "0"\n').replace('\n  tarball:', `${EXTRAS}\n  tarball:`));
  const r = await im(['--json', 'build', 'hello']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
});

after(() => project.cleanup());

test('shell: a command on stdin runs in the tree after the stage; its exit code is the shell\'s; nothing it writes is kept', async () => {
  const layers = join(project.dir, 'cache', 'layers');
  const cached = snapshot(layers);
  const r = await im(['shell', 'rootfs.hostname'], 'cat etc/hostname; touch SHOULD-NOT-PERSIST; echo more >> etc/hostname; rm etc/motd; exit 3\n');
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  assert.deepEqual(snapshot(layers), cached, 'the cached layers are untouched');
  assert.deepEqual(workDirs(), [], 'the writable layer is discarded');

  const again = await im(['shell', 'rootfs.hostname', '--', 'sh', '-c', 'ls -A; cat etc/hostname']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'etc\nsrv\nvar\nhello\n');
  const dest = join(project.dir, 'after-shell');
  assert.equal((await im(['export', 'rootfs.hostname', dest])).code, 0);
  assert.ok(!existsSync(join(dest, 'SHOULD-NOT-PERSIST')));
  assert.equal(readFileSync(join(dest, 'etc/hostname'), 'utf8'), 'hello\n');
  assert.ok(existsSync(join(dest, 'etc/motd')));
});

test('shell --before: the tree the stage starts from (empty for a first stage), with its inputs read-only', async () => {
  assert.equal((await im(['shell', 'rootfs.hostname', '--before', '--', 'test', '-e', 'etc/hostname'])).code, 1);
  assert.equal((await im(['shell', 'rootfs.hostname', '--', 'test', '-e', 'etc/hostname'])).code, 0);

  const first = await im(['shell', 'rootfs.dirs', '--before', '--', 'ls', '-A']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, '', 'a first stage without base: starts from an empty tree');

  const motd = await im(['shell', 'rootfs.motd', '--before', '--', 'sh', '-c', 'cat /run/imgmake/inputs/motd; test -e etc/motd || echo no-motd-yet']);
  assert.equal(motd.code, 0, motd.stderr);
  assert.equal(motd.stdout, `${readFileSync(join(project.dir, 'files/motd'), 'utf8')}no-motd-yet\n`);
  const write = await im(['shell', 'rootfs.motd', '--before', '--', 'sh', '-c', 'echo x > /run/imgmake/inputs/motd']);
  assert.notEqual(write.code, 0, 'inputs are read-only');
  assert.match(write.stderr, /Read-only file system/);
  assert.deepEqual(workDirs(), []);
});

test('shell -- CMD: the stage\'s sandbox (cwd in the tree, its environment, no network), by name or index', async () => {
  const r = await im(['shell', 'rootfs.2', '--', 'sh', '-c', 'pwd; cat etc/hostname; echo "$TREE $INPUTS $SOURCE_DATE_EPOCH"; cat /proc/net/dev; exit 5']);
  assert.equal(r.code, 5, r.stderr);
  const [pwd, hostname, env, ...net] = r.stdout.trim().split('\n');
  assert.equal(pwd, '/run/imgmake/tree');
  assert.equal(hostname, 'hello', 'rootfs.2 is rootfs.hostname');
  assert.match(env!, /^\/run\/imgmake\/tree \/run\/imgmake\/inputs \d+$/);
  const interfaces = net.slice(2).map((l) => l.trim().split(':')[0]);
  assert.deepEqual(interfaces, ['lo'], 'no network: a new namespace with only loopback');
  // The default command reads its commands from stdin too: bash or sh from the buildroot.
  const sh = await im(['shell', 'rootfs.hostname'], 'echo "$0"\n');
  assert.equal(sh.code, 0, sh.stderr);
  assert.match(sh.stdout, /^\/bin\/(ba)?sh\n$/);
});

test('export: the tree after a stage, with owners, modes, symlinks, hardlinks and xattrs as the stage left them', async () => {
  const dest = join(project.dir, 'exported');
  const r = await im(['export', 'rootfs.extras', dest]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /exported the tree after rootfs\.extras to /);

  // What the stage left, as seen in its sandbox, against the export, as seen on the host. Not
  // the root itself, nor a directory's link count: in the shell those are the overlay's (a
  // fresh upper dir is the root's inode; a merged directory counts 1 link), not the tree's.
  const list = `find . -mindepth 1 \\( -type d -printf '%p %y %m %U:%G %T@\\n' \\) -o -printf '%p %y %m %U:%G %n %s %T@ %l\\n' | LC_ALL=C sort`;
  const inside = await im(['shell', 'rootfs.extras', '--', 'sh', '-c', list]);
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(execFileSync('sh', ['-c', list], { cwd: dest, encoding: 'utf8' }), inside.stdout);

  assert.equal(readlinkSync(join(dest, 'usr/local/bin/hello')), 'greet');
  assert.equal(statSync(join(dest, 'usr/local/bin/greet')).mode & 0o7777, 0o4750);
  assert.equal(statSync(join(dest, 'var/log')).mode & 0o7777, 0o750);
  const index = statSync(join(dest, 'srv/www/index.html'));
  assert.deepEqual([index.uid, index.gid], [1234, 5678]);
  const [motd, hard] = [lstatSync(join(dest, 'etc/motd')), lstatSync(join(dest, 'etc/motd.hard'))];
  assert.equal(motd.ino, hard.ino, 'hardlinks stay linked');
  assert.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.imgmake', join(dest, 'etc/motd')], { encoding: 'utf8' }), 'checkpoint');

  const again = await im(['export', 'rootfs.extras', dest]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /exists and is not an empty directory/);

  // An existing empty directory is filled; an earlier checkpoint lacks what later stages added.
  const empty = join(project.dir, 'empty');
  mkdirSync(empty);
  assert.equal((await im(['export', 'rootfs.motd', empty])).code, 0);
  assert.ok(existsSync(join(empty, 'etc/motd')));
  assert.ok(!existsSync(join(empty, 'etc/hostname')));
  assert.deepEqual(readdirSync(project.dir).filter((n) => n.includes('.new-') || n.includes('.mnt-')), [], 'no temporary directories left');
});

test('log: the stored log of the last run with the current definition, failed runs included', async () => {
  const r = await im(['log', 'rootfs.extras']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /hello from the log/);
  assert.match(r.stdout, /to stderr/);
  const json = await im(['--json', 'log', 'rootfs.extras']);
  const [event, ...rest] = json.events;
  assert.deepEqual(rest, []);
  assert.equal(event.type, 'log');
  assert.equal(event.node, 'rootfs.extras');
  assert.match(event.text, /hello from the log/);

  const quiet = await im(['log', 'rootfs.hostname']);
  assert.equal(quiet.code, 0);
  assert.equal(quiet.stdout, '');
  assert.match(quiet.stderr, /the log of rootfs\.hostname is empty/);

  const never = await im(['--var', 'hostname=other', 'log', 'rootfs.hostname']);
  assert.equal(never.code, 1);
  assert.match(never.stderr, /no log of rootfs\.hostname: it has not run with its current definition/);
  assert.match(never.stderr, /imgmake build rootfs --until rootfs\.hostname/);

  const failing = await im(['--var', 'extras_exit=4', '--json', 'build', 'hello']);
  assert.equal(failing.code, 1);
  const failed = await im(['--var', 'extras_exit=4', 'log', 'rootfs.extras']);
  assert.equal(failed.code, 0, failed.stderr);
  assert.match(failed.stdout, /hello from the log/);
});

test('an unknown pipeline or stage: exit 2, with a did-you-mean and the pipeline\'s stages', async () => {
  const stage = await im(['shell', 'rootfs.hostnam']);
  assert.equal(stage.code, 2);
  assert.match(stage.stderr, /pipeline rootfs has no stage "hostnam"/);
  assert.match(stage.stderr, /did you mean rootfs\.hostname\?/);
  assert.match(stage.stderr, /rootfs\.dirs, rootfs\.motd, .* and rootfs\.extras/);

  const pipeline = await im(['export', 'rootf.dirs', join(project.dir, 'never')]);
  assert.equal(pipeline.code, 2);
  assert.match(pipeline.stderr, /no pipeline named "rootf"/);
  assert.match(pipeline.stderr, /did you mean "rootfs"\?/);
  assert.ok(!existsSync(join(project.dir, 'never')));

  for (const bad of ['rootfs.42', 'rootfs', '']) {
    const r = await im(['log', bad]);
    assert.equal(r.code, 2, `log ${JSON.stringify(bad)}: ${r.stderr}`);
    assert.match(r.stderr, /^error: /);
  }
});

test('a checkpoint not built with the current definition: exit 2, naming the build that makes it', async () => {
  const fresh = await tempProject();
  try {
    const r = await imgmake(['-f', fresh.file, 'shell', 'rootfs.hostname'], { input: 'exit 0\n' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /rootfs\.hostname is not built with the current definition/);
    assert.match(r.stderr, /hint: run imgmake build rootfs --until rootfs\.hostname/);
    const dest = join(fresh.dir, 'x');
    const e = await imgmake(['-f', fresh.file, 'export', 'tarball.tar', dest]);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /hint: run imgmake build hello --until tarball\.tar/);
    assert.ok(!existsSync(dest));
  } finally {
    await fresh.cleanup();
  }

  const parent = await im(['--var', 'hostname=other', 'shell', 'rootfs.timezone', '--before']);
  assert.equal(parent.code, 2);
  assert.match(parent.stderr, /rootfs\.hostname is not built with the current definition \(imgmake shell rootfs\.timezone --before starts from its tree\)/);
  const input = await im(['--var', 'hostname=other', 'shell', 'tarball.tar', '--before']);
  assert.equal(input.code, 2);
  assert.match(input.stderr, /rootfs\.extras is not built .*mounts it as its input tree/);
});

test('shell: SIGTERM kills the sandbox and discards the writable layer', { timeout: 60_000 }, async () => {
  const marker = uniqueMarker();
  const child = startImgmake(['-f', project.file, 'shell', 'rootfs.hostname', '--', 'sh', '-c', `sleep 60; : ${marker}`]);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  // 'exit', not 'close': a sandbox process left behind would hold the pipes open, and the
  // assertion below should report it rather than the test hang.
  const closed = new Promise<number | null>((done) => child.on('exit', done));
  assert.ok(await waitFor(() => processesWith(marker).length > 0 && workDirs().length > 0, 15_000), `the shell never started: ${stderr}`);
  child.kill('SIGTERM');
  assert.equal(await closed, 143, stderr);
  assert.deepEqual(workDirs(), []);
  // Generous: on a loaded machine the namespace's teardown (SIGKILL via --die-with-parent) lags.
  assert.ok(await waitFor(() => processesWith(marker).length === 0, 15_000), `no sandbox process is left: ${JSON.stringify(processesWith(marker))}`);
});
