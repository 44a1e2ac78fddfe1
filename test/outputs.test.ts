/**
 * What a build leaves on the host, through the real CLI, bubblewrap and filesystems (issue 13):
 * - no privilege leaks: setuid files and device nodes a stage makes are kept in the cache and
 *   in out/ (an image needs its sudo), but another user of the host (`nobody`, for real, with
 *   setpriv) cannot reach them there;
 * - a full disk (a real, small tmpfs) during a stage, a commit or an export says which path and
 *   why, exits 1 and leaves the cache consistent;
 * - an export path through an absolute symlink of the tree is resolved in the tree, never in
 *   the export sandbox's own filesystem.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { imgmake, projectWith, stageEvents, summary, type CliResult } from './helpers/cli.js';
import { asCacheKey, type NodeId } from '../src/ids.js';
import { openLocalStore } from '../src/store/local.js';

const T = { timeout: 120_000 };

/**
 * Runs `argv` as user nobody (uid/gid 65534, no supplementary groups), through `sh`: setpriv
 * itself calls execve with root's capabilities still effective (it keeps them to apply its own
 * options), so a program it starts directly is found past a 0700 directory by
 * CAP_DAC_OVERRIDE. The shell it starts has none left, as a real user's would.
 */
function asNobody(argv: string[]): { code: number | null; out: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A real tmpfs of `size` mounted at `dir` (made); returns the unmount. */
function tmpfs(dir: string, size: string): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  return () => execFileSync('umount', ['-l', dir]);
}

/** A project from `yaml` with a real tmpfs of `size` at `sub` inside it; both go when the test ends. */
async function projectWithTmpfs(t: TestContext, yaml: string, sub: string, size: string): Promise<{ p: Awaited<ReturnType<typeof projectWith>>; dir: string }> {
  const p = await projectWith(yaml);
  const dir = join(p.dir, sub);
  const umount = tmpfs(dir, size);
  t.after(async () => {
    umount();
    await p.cleanup();
  });
  return { p, dir };
}

function failure(r: CliResult): string {
  return `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
}

const PRIVILEGED = `version: 1
pipelines:
  rootfs:
    stages:
      - name: bits
        rule: shell.run
        options:
          script: |
            mkdir -p usr/bin dev
            cp /usr/bin/id usr/bin/id-root
            chmod 4755 usr/bin/id-root
            mknod dev/zero c 1 5
            chmod 666 dev/zero
targets:
  rootfs:
    pipeline: rootfs
`;

test('setuid files and device nodes a stage made are kept, but user nobody cannot use them through the cache, out/TARGET or an export DIR', T, async (t) => {
  const p = await projectWith(PRIVILEGED);
  t.after(p.cleanup);
  // Every directory above the cache and out/ must be enterable by nobody, or this proves nothing.
  await chmod(p.dir, 0o755);
  assert.equal(asNobody(['cat', p.file]).code, 0, 'nobody can reach the project');

  const r = await imgmake(['--json', '-f', p.file, 'build', 'rootfs']);
  assert.equal(r.code, 0, failure(r));
  const exported = await imgmake(['-f', p.file, 'export', 'rootfs.bits', join(p.dir, 'exported')]);
  assert.equal(exported.code, 0, failure(exported));
  const layers = join(p.dir, 'cache', 'layers');
  const [layer] = readdirSync(layers);
  const trees = [join(p.dir, 'out', 'rootfs'), join(p.dir, 'exported'), join(layers, layer!)];

  for (const tree of trees) {
    // Kept as the stage made them: an exported root filesystem keeps its sudo.
    const suid = statSync(join(tree, 'usr/bin/id-root'));
    assert.equal(suid.mode & 0o7777, 0o4755, tree);
    assert.ok(statSync(join(tree, 'dev/zero')).isCharacterDevice(), tree);
    // Root still uses them (the owner of the directory).
    assert.match(execFileSync(join(tree, 'usr/bin/id-root'), { encoding: 'utf8' }), /uid=0/);
    // Nobody cannot: not the setuid copy (it would give euid 0), not the device node.
    const id = asNobody([join(tree, 'usr/bin/id-root')]);
    assert.doesNotMatch(id.out, /euid=0/, `${tree}: nobody got euid 0`);
    assert.match(id.out, /Permission denied/, tree);
    const dev = asNobody(['sh', '-c', `echo x > ${join(tree, 'dev/zero')} && echo wrote`]);
    assert.doesNotMatch(dev.out, /wrote/, `${tree}: nobody wrote through the device node`);
    assert.match(dev.out, /Permission denied/, tree);
  }
  for (const dir of [join(p.dir, 'cache'), join(p.dir, 'out', 'rootfs'), join(p.dir, 'exported')]) {
    assert.equal(statSync(dir).mode & 0o777, 0o700, dir);
  }

  // A cache and an output made by an older imgmake (0755) are closed by the next run.
  chmodSync(join(p.dir, 'cache'), 0o755);
  chmodSync(join(p.dir, 'out', 'rootfs'), 0o755);
  const again = await imgmake(['--json', '-f', p.file, 'build', 'rootfs']);
  assert.equal(again.code, 0, failure(again));
  assert.equal(summary(again).ran, 0);
  assert.equal(statSync(join(p.dir, 'cache')).mode & 0o777, 0o700, 'an existing cache is made 0700 when opened');
  assert.equal(statSync(join(p.dir, 'out', 'rootfs')).mode & 0o777, 0o700, 'an up-to-date output is made 0700');
  assert.match(asNobody([join(layers, layer!, 'usr/bin/id-root')]).out, /Permission denied/);
});

test('a stage that fills the cache\'s filesystem: exit 1, "no space left" with the cache\'s path, the work dir gone, the log stored; the cache builds on', T, async (t) => {
  const { p, dir: cache } = await projectWithTmpfs(
    t,
    `version: 1
vars:
  bytes: "20000000"
pipelines:
  rootfs:
    stages:
      - name: small
        rule: shell.run
        options: { script: "echo small > small" }
      - name: fill
        rule: shell.run
        options:
          script: |
            echo filling
            head -c \${bytes} /dev/zero > huge
targets:
  rootfs:
    pipeline: rootfs
`,
    'small-cache',
    '8m',
  );
  const r = await imgmake(['--json', '-f', p.file, '--cache', cache, 'build', 'rootfs']);
  assert.equal(r.code, 1, failure(r));
  const [failed] = stageEvents(r, 'failed');
  assert.equal(failed?.node, 'rootfs.fill', failure(r));
  assert.equal(failed!.reason, 'no-space');
  assert.equal(failed!.exitCode, 1);
  assert.match(failed!.cause, /^no space left on the cache's filesystem \(/);
  assert.ok(failed!.cause.includes(cache), failed!.cause);
  assert.deepEqual(readdirSync(join(cache, 'work')), [], 'the work dir is removed');
  assert.equal(readdirSync(join(cache, 'layers')).length, 1, 'only rootfs.small is committed');
  assert.match((await imgmake(['-f', p.file, '--cache', cache, 'log', failed!.node])).stdout, /imgmake: no space left on the cache's filesystem/, 'the stored log says why');

  const text = await imgmake(['-f', p.file, '--cache', cache, 'build', 'rootfs']);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /FAILED rootfs\.fill \(shell\.run\) exit 1/);
  assert.match(text.stdout, new RegExp(`why: no space left on the cache's filesystem \\(${cache}: \\d.* free of 8\\.0 MiB\\)`));

  const fits = await imgmake(['--json', '-f', p.file, '--cache', cache, '--var', 'bytes=1000', 'build', 'rootfs']);
  assert.equal(fits.code, 0, failure(fits));
  assert.deepEqual(stageEvents(fits, 'ran').map((e) => e.node), ['rootfs.fill']);
});

test('a commit that finds the cache full: exit 1, the path and the cause, no layer left for a later build to adopt', T, async (t) => {
  const { p, dir: cache } = await projectWithTmpfs(
    t,
    `version: 1
pipelines:
  rootfs:
    stages:
      - name: fill
        rule: shell.run
        options:
          script: |
            head -c 20000000 /dev/zero > huge || true
targets:
  rootfs:
    pipeline: rootfs
`,
    'small-cache',
    '8m',
  );
  const r = await imgmake(['--json', '-f', p.file, '--cache', cache, 'build', 'rootfs']);
  assert.equal(r.code, 1, failure(r));
  const [failed] = stageEvents(r, 'failed');
  assert.equal(failed?.reason, 'commit-failed', failure(r));
  assert.match(failed!.cause, /^storing its tree in the cache failed: no space left on device \(ENOSPC\) (in|at) /);
  assert.ok(failed!.cause.includes(cache), failed!.cause);
  assert.doesNotMatch(r.stdout + r.stderr, /internal error|    at /, 'no stack trace');
  assert.deepEqual(readdirSync(join(cache, 'work')), [], 'the work dir is removed');
  assert.deepEqual(readdirSync(join(cache, 'layers')), [], 'no layer without its entry');
});

test('store: a commit whose index entry cannot be written (disk full) takes its layer back out of layers/', T, async (t) => {
  const dir = join(execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim());
  const umount = tmpfs(join(dir, 'cache'), '4m');
  t.after(() => {
    umount();
    rmSync(dir, { recursive: true, force: true });
  });
  const store = await openLocalStore(join(dir, 'cache'));
  const w = await store.begin(undefined);
  // The stage's output fills the filesystem: the layer's rename still works, its entry cannot.
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(w.upper, `f${i}`), chunk);
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
      break;
    }
  }
  const key = asCacheKey(createHash('sha256').update(`full:${Math.random()}`).digest('hex'));
  await assert.rejects(store.commit(w, { key, node: 'full.disk' as NodeId, ms: 1 }), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC');
  assert.equal(existsSync(join(dir, 'cache', 'layers', key)), false, 'a later commit of this key must not find (and adopt) a layer');
  assert.deepEqual(readdirSync(join(dir, 'cache', 'work')), []);
  assert.equal(await store.get(key), undefined);
});

test('an export that does not fit: exit 1 naming the out path and the cause; out/ keeps its last good output and no temporary', T, async (t) => {
  const { p, dir: out } = await projectWithTmpfs(
    t,
    `version: 1
vars:
  bytes: "3000000"
pipelines:
  rootfs:
    stages:
      - name: big
        rule: shell.run
        options: { script: "head -c \${bytes} /dev/zero > big" }
targets:
  big:
    pipeline: rootfs
    export: [big]
`,
    'small-out',
    '1m',
  );
  const good = await imgmake(['--json', '-f', p.file, '--out', out, '--var', 'bytes=1000', 'build', 'big']);
  assert.equal(good.code, 0, failure(good));

  const r = await imgmake(['--json', '-f', p.file, '--out', out, 'build', 'big']);
  assert.equal(r.code, 1, failure(r));
  const said = r.events.filter((e) => e.type === 'export-failed').map((e) => e.message as string).join('\n');
  assert.deepEqual(r.events.filter((e) => e.type === 'export-failed').map((e) => e.target), ['big'], 'a typed failure, not an info line');
  assert.match(said, new RegExp(`exporting big to ${out}/big failed: no space left on device \\(ENOSPC\\) in ${out} \\(`));
  assert.equal(statSync(join(out, 'big', 'big')).size, 1000, 'the last good output stays');
  assert.deepEqual(readdirSync(out).sort(), ['.imgmake', 'big'], 'no temporary left');

  const dir = await imgmake(['-f', p.file, '--out', out, 'export', 'rootfs.big', join(out, 'tree')]);
  assert.equal(dir.code, 1, failure(dir));
  assert.match(dir.stderr, new RegExp(`exporting rootfs\\.big to ${out}/tree failed: no space left on device \\(ENOSPC\\) in ${out} \\(`));
  assert.deepEqual(readdirSync(out).sort(), ['.imgmake', 'big']);
});

test('an export path through an absolute symlink of the tree is resolved in the tree, never in the export sandbox', T, async (t) => {
  const p = await projectWith(`version: 1
pipelines:
  rootfs:
    stages:
      - name: links
        rule: shell.run
        options:
          script: |
            mkdir -p etc srv/data
            echo 'root:x:0:0:the tree, not the host:/root:/bin/sh' > etc/passwd
            ln -s / rootlink
            ln -s ../etc srv/etc
            ln -s /srv/data/file srv/current
            echo data > srv/data/file
targets:
  passwd:
    pipeline: rootfs
    export: [rootlink/etc/passwd]
  relative:
    pipeline: rootfs
    export: [srv/etc/passwd, rootlink/srv/current]
  binary:
    pipeline: rootfs
    export: [rootlink/usr/bin/id]
`);
  t.after(p.cleanup);
  const r = await imgmake(['--json', '-f', p.file, 'build', 'passwd']);
  assert.equal(r.code, 0, failure(r));
  const out = join(p.dir, 'out');
  assert.equal(readFileSync(join(out, 'passwd', 'passwd'), 'utf8'), 'root:x:0:0:the tree, not the host:/root:/bin/sh\n');
  // A relative link on the way too; the last component is copied as it is (a link stays one).
  const rel = await imgmake(['--json', '-f', p.file, 'build', 'relative']);
  assert.equal(rel.code, 0, failure(rel));
  assert.equal(readFileSync(join(out, 'relative', 'passwd'), 'utf8'), 'root:x:0:0:the tree, not the host:/root:/bin/sh\n');
  assert.equal(execFileSync('readlink', [join(out, 'relative', 'current')], { encoding: 'utf8' }), '/srv/data/file\n');

  // The tree has no usr/bin/id; the sandbox does, and must not be where it comes from.
  const bin = await imgmake(['--json', '-f', p.file, 'build', 'binary']);
  assert.equal(bin.code, 1, failure(bin));
  assert.equal(existsSync(join(out, 'binary', 'id')), false);
  const said = bin.events.filter((e) => e.type === 'export-failed').map((e) => e.message as string).join('\n');
  assert.match(said, /exporting binary to .* failed: rootlink\/usr\/bin\/id: not in the tree/);
});
