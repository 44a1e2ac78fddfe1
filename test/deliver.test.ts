/**
 * Delivered outputs (src/deliver.ts), through the real CLI, bubblewrap and filesystems: a
 * target's last stage whose rule only converts or packs (archive.tar here, as disk.convert's
 * qcow2) moves its file into out/TARGET instead of committing it and having export copy it.
 * - The file is the one a copy out of the committed tree gives: same bytes, mode, owner, mtime
 *   (`imgmake export NODE DIR` commits the same stage and copies it out, for comparison).
 * - The cache holds no tree of that stage; a no-op build runs nothing and says `delivered`.
 * - Deleting the file (or out/TARGET) reruns that one stage, nothing before it; `--from`
 *   reruns and delivers again.
 * - A hostile stage cannot use it to move a host file into out/: only a plain file at the top of
 *   its own upper directory is taken (a link, folder, FIFO or nested path stays; tested on the
 *   mover itself, `takeFiles`, with a real directory).
 * - What must keep the tree commits it: a stage another target of the same build reads, a
 *   `--until` build, a build with a remote (test/remote-http.test.ts says so for the remote).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, ran, stageEvents, summary, tempProject } from './helpers/cli.js';
import { openLocalStore } from '../src/store/local.js';
import { asCacheKey, type PipelineName } from '../src/ids.js';
import { takeFiles } from '../src/deliver.js';
import type { TargetDef } from '../src/definition.js';

const T = { timeout: 180_000 };

test('a tarball target: delivered to out/ (no tree in the cache), the same file a copy of the committed tree gives; a no-op runs nothing; a deleted file reruns only that stage', T, async (t) => {
  const p = await tempProject('hello');
  t.after(p.cleanup);
  const cache = join(p.dir, 'cache');
  const im = (args: string[]) => imgmake(['--json', '-f', p.file, ...args]);

  const first = await im(['build', 'hello']);
  assert.equal(first.code, 0, first.stderr);
  const tar = stageEvents(first, 'ran').find((e) => e.node === 'tarball.tar');
  assert.ok(tar, 'tarball.tar ran');
  assert.equal(tar.delivered, true, 'the tarball was delivered');
  for (const e of stageEvents(first, 'ran')) if (e.node !== 'tarball.tar') assert.equal(e.delivered, undefined, `${e.node} was committed`);
  const store = await openLocalStore(cache);
  assert.equal(await store.get(asCacheKey(tar.key)), undefined, 'the cache holds no tree of the delivered stage');
  assert.ok(await store.get(asCacheKey(stageEvents(first, 'ran').find((e) => e.node === 'rootfs.manifest')!.key)), 'the tree it packs is in the cache');
  const out = join(p.dir, 'out', 'hello', 'hello.tar');
  const delivered = await readFile(out);
  const st = await lstat(out);

  // `export NODE` has no tree to copy, and says how to keep one.
  const dir = join(p.dir, 'exported');
  const none = await im(['export', 'tarball.tar', dir]);
  assert.equal(none.code, 2, none.stdout);
  assert.match(none.stderr, /tarball\.tar is not in the cache: a build of hello hands its output to out\/hello/);
  assert.match(none.stderr, /imgmake build hello --until tarball\.tar/);
  // The same stage committed (--until) and copied out of its tree, as before delivery existed.
  const kept = await im(['build', 'hello', '--until', 'tarball.tar']);
  assert.equal(kept.code, 0, kept.stderr);
  assert.deepEqual(ran(kept), ['tarball.tar']);
  const exported = await im(['export', 'tarball.tar', dir]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.ok(await store.get(asCacheKey(tar.key)), '`build --until` commits the stage');
  const copy = join(dir, 'hello.tar');
  assert.ok((await readFile(copy)).equals(delivered), 'same bytes as a copy of the committed tree');
  const cst = await lstat(copy);
  assert.deepEqual([st.mode, st.uid, st.gid, st.mtimeMs], [cst.mode, cst.uid, cst.gid, cst.mtimeMs], 'same mode, owner and mtime (clamped to SOURCE_DATE_EPOCH)');
  assert.equal(st.mtimeMs, 315532800000, 'mtime 1980-01-01');

  // A no-op: nothing runs, and the tarball's stage says where its output is.
  const noop = await im(['build', 'hello']);
  assert.equal(noop.code, 0, noop.stderr);
  assert.deepEqual(ran(noop), []);
  assert.equal(stageEvents(noop, 'cached').find((e) => e.node === 'tarball.tar')?.delivered, undefined, 'committed by --until: found in the cache, exported from it');
});

test('a delivered output: no-op is current without a tree; deleting the file reruns only the last stage; --from reruns and delivers; out/ is never linked to the cache', T, async (t) => {
  const p = await tempProject('hello');
  t.after(p.cleanup);
  const im = (args: string[]) => imgmake(['--json', '-f', p.file, ...args]);
  const out = join(p.dir, 'out', 'hello', 'hello.tar');
  assert.equal((await im(['build', 'hello'])).code, 0);
  const bytes = await readFile(out);

  const noop = await im(['build', 'hello']);
  assert.equal(noop.code, 0, noop.stderr);
  assert.deepEqual(ran(noop), []);
  assert.equal(summary(noop).cached, 9);
  assert.equal(stageEvents(noop, 'cached').find((e) => e.node === 'tarball.tar')?.delivered, true);
  assert.equal(noop.events.filter((e) => e.type === 'plan')[0]?.toRun, 0);

  // Booting or editing the image changes out/ only: there is nothing of the cache in it.
  assert.equal((await lstat(out)).nlink, 1, 'a file of its own');

  await rm(out);
  const again = await im(['build', 'hello']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(ran(again), ['tarball.tar'], 'only the last stage reruns');
  const why = await im(['plan', 'hello']);
  assert.deepEqual(why.events.filter((e) => e.type === 'plan-stage' && e.status === 'run').map((e) => e.node), [], 'current again');
  await rm(out);
  const reasons = (await im(['plan', 'hello'])).events.find((e) => e.type === 'plan-stage' && e.node === 'tarball.tar');
  assert.deepEqual(reasons?.reasons, ['its output is no longer in out/ (delivered there, not kept in the cache)']);
  assert.equal((await im(['build', 'hello'])).code, 0);
  assert.ok((await readFile(out)).equals(bytes), 'the same bytes again');

  await rm(join(p.dir, 'out'), { recursive: true });
  const gone = await im(['build', 'hello']);
  assert.deepEqual(ran(gone), ['tarball.tar']);

  const from = await im(['build', 'hello', '--from', 'tarball.tar']);
  assert.equal(from.code, 0, from.stderr);
  assert.deepEqual(ran(from), ['tarball.tar']);
  assert.equal(stageEvents(from, 'ran')[0]!.delivered, true);
  assert.ok((await readFile(out)).equals(bytes));
});

test('a stage another target of the same build reads, and an --until build, keep their tree in the cache', T, async (t) => {
  // A second target made from the tarball's tree: the tarball's stage must be committed.
  const p = await helloWithTar(t, { name: 'twice', from: 'tarball', exports: ['twice.tar'] });
  const im = (args: string[]) => imgmake(['--json', '-f', p.file, ...args]);
  const both = await im(['build', 'hello', 'twice']);
  assert.equal(both.code, 0, both.stderr);
  const events = stageEvents(both, 'ran');
  assert.equal(events.find((e) => e.node === 'tarball.tar')?.delivered, undefined, "the tarball's tree is read by twice.tar: committed");
  assert.equal(events.find((e) => e.node === 'twice.tar')?.delivered, true);
  const store = await openLocalStore(join(p.dir, 'cache'));
  assert.ok(await store.get(asCacheKey(events.find((e) => e.node === 'tarball.tar')!.key)));
  assert.ok((await lstat(join(p.dir, 'out', 'hello', 'hello.tar'))).isFile());
  assert.ok((await lstat(join(p.dir, 'out', 'twice', 'twice.tar'))).isFile());

  const until = await im(['build', 'twice', '--until', 'twice.tar', '--from', 'twice.tar']);
  assert.equal(until.code, 0, until.stderr);
  const u = stageEvents(until, 'ran').find((e) => e.node === 'twice.tar');
  assert.ok(u);
  assert.equal(u.delivered, undefined, '--until exports nothing: the stage is committed');
  assert.ok(await store.get(asCacheKey(u.key)));
});

test('a target that also exports a file from a lower layer: its last stage commits, and export copies both, as before', T, async (t) => {
  const p = await helloWithTar(t, { name: 'packed', from: 'rootfs', base: 'rootfs', exports: ['packed.tar', 'etc/motd'] });
  const im = (args: string[]) => imgmake(['--json', '-f', p.file, ...args]);
  const b = await im(['build', 'packed']);
  assert.equal(b.code, 0, b.stderr);
  const tar = stageEvents(b, 'ran').find((e) => e.node === 'packed.tar');
  assert.ok(tar);
  assert.equal(tar.delivered, undefined, 'etc/motd is not the stage\'s own file: nothing delivered');
  const store = await openLocalStore(join(p.dir, 'cache'));
  assert.ok(await store.get(asCacheKey(tar.key)), 'committed');
  assert.ok((await lstat(join(p.dir, 'out', 'packed', 'packed.tar'))).isFile());
  assert.equal(await readFile(join(p.dir, 'out', 'packed', 'motd'), 'utf8'), await readFile(join(p.dir, 'files', 'motd'), 'utf8'));
  const noop = await im(['build', 'packed']);
  assert.deepEqual(ran(noop), []);
  assert.equal(stageEvents(noop, 'cached').find((e) => e.node === 'packed.tar')?.delivered, undefined);
});

/**
 * examples/hello with one more pipeline NAME: an archive.tar stage (NAME.tar) of pipeline FROM,
 * on BASE's tree when given; and a target NAME exporting EXPORTS.
 */
async function helloWithTar(t: TestContext, o: { name: string; from: string; base?: string; exports: string[] }): Promise<Awaited<ReturnType<typeof tempProject>>> {
  const p = await tempProject('hello');
  t.after(p.cleanup);
  const pipeline = `  ${o.name}:\n${o.base ? `    base: ${o.base}\n` : ''}    stages:\n      - name: tar\n        rule: archive.tar\n        inputs:\n          tree: { pipeline: ${o.from} }\n        options:\n          filename: ${o.name}.tar\n\n`;
  const target = `  ${o.name}: { pipeline: ${o.name}, export: [${o.exports.join(', ')}] }\n`;
  await writeFile(p.file, (await readFile(p.file, 'utf8')).replace('targets:\n', `${pipeline}targets:\n${target}`));
  return p;
}

test("what a stage left under its target's name is moved only when it is a plain file at the top of its upper: a link to a host file, a folder, a FIFO or a nested path is left, and out/ gets nothing", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-take-'));
  try {
    const upper = join(dir, 'upper');
    const out = join(dir, 'out');
    await mkdir(upper);
    const loc = { file: 'imgmake.yaml', line: 1, col: 1, endLine: 1, endCol: 1 };
    const target = (exported: string[]): TargetDef => ({ name: 'img', loc, pipeline: 'p' as PipelineName, export: exported });
    const key = asCacheKey('0'.repeat(64));
    const hostile: [string, () => Promise<void>][] = [
      ['a symlink to a host file', () => symlink('/etc/passwd', join(upper, 'disk.img'))],
      ['a folder', () => mkdir(join(upper, 'disk.img'))],
      ['a FIFO', async () => void execFileSync('mkfifo', [join(upper, 'disk.img')])],
    ];
    for (const [what, make] of hostile) {
      await rm(join(upper, 'disk.img'), { recursive: true, force: true });
      await make();
      assert.equal(await takeFiles(out, target(['disk.img']), key, upper), undefined, what);
      assert.deepEqual(await readdir(upper), ['disk.img'], `${what}: left where it was`);
      assert.deepEqual(await readdir(out).catch(() => []), [], `${what}: nothing in out/`);
    }
    await rm(join(upper, 'disk.img'), { recursive: true, force: true });
    await mkdir(join(upper, 'sub'));
    await writeFile(join(upper, 'sub', 'disk.img'), 'x');
    assert.equal(await takeFiles(out, target(['sub/disk.img']), key, upper), undefined, 'a path below the top');
    assert.equal(await takeFiles(out, target(['../disk.img']), key, upper), undefined, 'a path out of the upper');
    // A plain file: moved, its mode kept, its time clamped as a commit would.
    await writeFile(join(upper, 'disk.img'), 'image', { mode: 0o640 });
    const staged = await takeFiles(out, target(['/disk.img']), key, upper);
    assert.ok(staged);
    const st = await lstat(join(staged.into, 'disk.img'));
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.mtimeMs, 315532800000);
    assert.equal(await readFile(join(staged.into, 'disk.img'), 'utf8'), 'image');
    assert.ok(!(await readdir(upper)).includes('disk.img'), 'moved, not copied');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
