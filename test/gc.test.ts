/**
 * The cache commands through the real CLI on temporary projects: `cache ls`, `cache gc`
 * (least recently used first, and while another build runs), `cache verify`, `cache prune`,
 * and `--max-cache-size` after a build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, chmod, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import cacache from 'cacache';
import { imgmake, projectWith, ran, startImgmake, summary } from './helpers/cli.js';

const MiB = 1024 * 1024;

/** Two independent pipelines, each one target: `old` (1 MiB over two stages) and `new` (2 MiB). */
const TWO = `version: 1
pipelines:
  old:
    stages:
      - name: dirs
        rule: files.mkdir
        options: { paths: [{ path: /etc }] }
      - name: big
        rule: shell.run
        options: { script: "head -c 1048576 /dev/urandom > etc/old.bin" }
      - name: top
        rule: files.write
        options: { files: [{ path: /etc/old, content: "old\\n" }] }
  new:
    stages:
      - name: big
        rule: shell.run
        options: { script: "head -c 2097152 /dev/urandom > new.bin" }
targets:
  old: { pipeline: old }
  new: { pipeline: new }
`;

const OLD = ['old.big', 'old.dirs', 'old.top'];

async function build(file: string, target: string, extra: string[] = [], env?: Record<string, string>) {
  const r = await imgmake(['--json', '-f', file, ...extra, 'build', target], env ? { env } : {});
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r;
}

async function ls(file: string): Promise<Record<string, any>[]> {
  const r = await imgmake(['--json', '-f', file, 'cache', 'ls']);
  assert.equal(r.code, 0, r.stderr);
  return r.events.filter((e) => e.type === 'cache-tree');
}

const removedNames = (r: { events: Record<string, any>[] }) => r.events.filter((e) => e.type === 'cache-removed').map((e) => e.name as string);

const nodes = async (file: string) => (await ls(file)).map((t) => t.node as string).sort();

test('cache ls: nodes, sizes, last use and the targets that reach them; also without a definition', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  await build(p.file, 'old');
  await build(p.file, 'new');
  const trees = await ls(p.file);
  assert.deepEqual(trees.map((x) => x.node).sort(), [...OLD, 'new.big'].sort());
  const big = trees.find((x) => x.node === 'new.big')!;
  assert.ok(big.bytes >= 2 * MiB && big.bytes < 3 * MiB, `new.big is ${big.bytes} bytes`);
  assert.deepEqual(big.targets, ['new']);
  assert.deepEqual(trees.find((x) => x.node === 'old.dirs')!.targets, ['old']);
  assert.ok(Date.parse(big.lastUse) >= Date.parse(trees.find((x) => x.node === 'old.top')!.lastUse));

  const text = await imgmake(['-f', p.file, 'cache', 'ls']);
  assert.match(text.stdout, /^new\.big\s+[0-9a-f]{12}\s+2\.0 MiB\s+\S+ \S+\s+new$/m);
  // Anywhere, with only --cache: no targets, same trees.
  const bare = await imgmake(['--json', '--cache', join(p.dir, 'cache'), 'cache', 'ls'], { cwd: '/' });
  assert.equal(bare.code, 0, bare.stderr);
  const listed = bare.events.filter((e) => e.type === 'cache-tree');
  assert.equal(listed.length, 4);
  assert.equal(listed[0]!.targets, undefined);
});

test('cache gc --max-size removes least recently used first; what remains still builds as cached', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  await build(p.file, 'old');
  await build(p.file, 'new');
  const gc = await imgmake(['--json', '-f', p.file, 'cache', 'gc', '--max-size', '2.5M']);
  assert.equal(gc.code, 0, gc.stderr);
  const report = gc.events.find((e) => e.type === 'cache-gc')!;
  assert.ok(report.before > 3 * MiB && report.after <= 2.5 * MiB, JSON.stringify(report));
  // Top of the stack first, and no more than needed: old.dirs (a few KiB) fits under the limit.
  assert.deepEqual(removedNames(gc), ['old.top', 'old.big']);
  assert.deepEqual(await nodes(p.file), ['new.big', 'old.dirs']);
  assert.equal(summary(await build(p.file, 'new')).ran, 0);
  assert.deepEqual(ran(await build(p.file, 'old')), ['old.big', 'old.top']);
  // Now `new` was used before `old`: it goes first, however large.
  const again = await imgmake(['--json', '-f', p.file, 'cache', 'gc', '--max-size', '2.5M']);
  assert.deepEqual(removedNames(again), ['new.big']);
  assert.equal(summary(await build(p.file, 'old')).ran, 0);
  // Text: what went, and the size before and after.
  const text = await imgmake(['-f', p.file, 'cache', 'gc', '--max-size', '0']);
  assert.match(text.stdout, /removed tree old\.top/);
  assert.match(text.stdout, /removed 3 trees, 0 \.debs: \d+\.\d MiB → \d+(\.\d)? (B|KiB)/);
  assert.deepEqual(await readdir(join(p.dir, 'cache', 'layers')), []);
  assert.deepEqual(ran(await build(p.file, 'new')), ['new.big']);
});

test('cache verify drops a corrupted layer and .deb; the next build reruns that stage and the ones above', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  await build(p.file, 'old');
  const cache = join(p.dir, 'cache');
  // A .deb-style blob, as fetch stores it, then damaged on disk.
  const data = Buffer.from('not really a package\n');
  const sha = createHash('sha256').update(data).digest('hex');
  await cacache.put(cache, `deb:${sha}`, data, { algorithms: ['sha256'], metadata: { name: 'fake', version: '1' } });
  const good = await imgmake(['--json', '-f', p.file, 'cache', 'verify']);
  assert.equal(good.code, 0, good.stderr);
  assert.deepEqual(good.events.filter((e) => e.type === 'cache-corrupt'), []);
  const checked = good.events.find((e) => e.type === 'cache-verify')!.checked;
  assert.equal(checked.trees, 3);
  assert.equal(checked.debs, 1);

  const debPath = (await cacache.get.info(cache, `deb:${sha}`))!.path;
  await chmod(debPath, 0o644);
  await writeFile(debPath, 'not really a packagE\n');
  const big = (await ls(p.file)).find((x) => x.node === 'old.big')!;
  await appendFile(join(cache, 'layers', big.key, 'etc', 'old.bin'), 'x');

  const bad = await imgmake(['--json', '-f', p.file, 'cache', 'verify']);
  assert.equal(bad.code, 0, bad.stderr);
  const corrupt = bad.events.filter((e) => e.type === 'cache-corrupt').map((e) => `${e.kind} ${e.name}`).sort();
  assert.deepEqual(corrupt, ['deb fake', 'tree old.big']);
  assert.equal(await cacache.get.info(cache, `deb:${sha}`), null);
  assert.deepEqual(await nodes(p.file), ['old.dirs']);
  assert.deepEqual(ran(await build(p.file, 'old')), ['old.big', 'old.top']);
});

test('cache verify reports and removes a layer directory no record vouches for (one planted by a writer to a shared cache); the next build keeps its own tree', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  await build(p.file, 'old');
  const cache = join(p.dir, 'cache');
  // A layer under a key no entry names, and one under the key `new.big` will have: neither is vouched for.
  const stray = 'f'.repeat(64);
  await mkdir(join(cache, 'layers', stray), { recursive: true });
  await writeFile(join(cache, 'layers', stray, 'planted'), 'x');
  const plan = await imgmake(['--json', '-f', p.file, 'plan', 'new']);
  const newKey = plan.events.find((e) => e.type === 'plan-stage' && e.node === 'new.big')?.key as string | undefined;
  assert.ok(newKey, `plan names new.big's key: ${plan.stdout}`);
  await mkdir(join(cache, 'layers', newKey), { recursive: true });
  await writeFile(join(cache, 'layers', newKey, 'new.bin'), 'planted');

  const v = await imgmake(['--json', '-f', p.file, 'cache', 'verify']);
  assert.equal(v.code, 0, v.stderr);
  const corrupt = v.events.filter((e) => e.type === 'cache-corrupt').map((e) => `${e.kind} ${e.key}`).sort();
  assert.deepEqual(corrupt, [`layer ${newKey}`, `layer ${stray}`].sort());
  assert.ok(!existsSync(join(cache, 'layers', stray)) && !existsSync(join(cache, 'layers', newKey)), 'both removed');
  assert.deepEqual(await nodes(p.file), OLD, 'the vouched trees stay');

  // Planted again, then built: the build's own 2 MiB output is kept, not the planted file.
  await mkdir(join(cache, 'layers', newKey), { recursive: true });
  await writeFile(join(cache, 'layers', newKey, 'new.bin'), 'planted');
  assert.deepEqual(ran(await build(p.file, 'new')), ['new.big']);
  assert.equal(statSync(join(p.dir, 'out', 'new', 'new.bin')).size, 2 * MiB);
});

test('cache prune --keep keeps exactly what the targets need', async (t) => {
  const p = await projectWith(`version: 1
pipelines:
  base:
    stages:
      - name: motd
        rule: files.write
        options: { files: [{ path: /etc/motd, content: "hi\\n" }] }
  one:
    base: base
    stages:
      - name: hostname
        rule: system.hostname
        options: { hostname: one }
  two:
    base: base
    stages:
      - name: hostname
        rule: system.hostname
        options: { hostname: two }
targets:
  one: { pipeline: one }
  two: { pipeline: two }
`);
  t.after(p.cleanup);
  await build(p.file, 'one');
  await build(p.file, 'two');
  const usage = await imgmake(['-f', p.file, 'cache', 'prune']);
  assert.equal(usage.code, 2);
  const unknown = await imgmake(['-f', p.file, 'cache', 'prune', '--keep', 'three']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no target named "three"/);
  const pruned = await imgmake(['--json', '-f', p.file, 'cache', 'prune', '--keep', 'one']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.deepEqual(removedNames(pruned), ['two.hostname']);
  assert.deepEqual(await nodes(p.file), ['base.motd', 'one.hostname']);
  assert.equal(summary(await build(p.file, 'one')).ran, 0);
  assert.deepEqual(ran(await build(p.file, 'two')), ['two.hostname']);
});

test('gc while another build reads: the build succeeds and the cache stays consistent', async (t) => {
  const p = await projectWith(`version: 1
pipelines:
  base:
    stages:
      - name: dirs
        rule: files.mkdir
        options: { paths: [{ path: /etc }] }
      - name: motd
        rule: files.write
        options: { files: [{ path: /etc/motd, content: "base\\n" }] }
  slow:
    base: base
    stages:
      - name: wait
        rule: shell.run
        options: { script: "sleep \${seconds}; cat etc/motd > etc/seen" }
  other:
    stages:
      - name: file
        rule: files.write
        options: { files: [{ path: /other, content: "other\\n" }] }
vars:
  seconds: "3"
targets:
  base: { pipeline: base }
  slow: { pipeline: slow }
  other: { pipeline: other }
`);
  t.after(p.cleanup);
  await build(p.file, 'base');
  await build(p.file, 'other');
  const child = startImgmake(['--json', '-f', p.file, 'build', 'slow']);
  let stdout = '';
  const done = new Promise<number | null>((ok) => child.on('close', ok));
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.resume();
  // Wait until its stage runs on the cached base trees.
  while (!stdout.includes('"stage-start"')) {
    assert.equal(child.exitCode, null, `the build ended early: ${stdout}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const gc = await imgmake(['--json', '-f', p.file, 'cache', 'gc', '--max-size', '0']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(removedNames(gc), ['other.file']);
  assert.ok(gc.events.find((e) => e.type === 'cache-gc')!.skipped > 0);
  assert.equal(await done, 0, stdout);
  assert.match(stdout, /"node":"slow\.wait".*"status":"ran"/);
  // Consistent: the slow build's trees are all there, what gc removed is rebuilt, nothing else.
  assert.deepEqual(await nodes(p.file), ['base.dirs', 'base.motd', 'slow.wait']);
  assert.equal(summary(await build(p.file, 'slow')).ran, 0);
  assert.deepEqual(ran(await build(p.file, 'other')), ['other.file']);
  // With no build running, gc to 0 empties it; then everything builds again.
  await imgmake(['-f', p.file, 'cache', 'gc', '--max-size', '0']);
  assert.deepEqual(await nodes(p.file), []);
  assert.deepEqual(ran(await build(p.file, 'slow', ['--var', 'seconds=0'])), ['base.dirs', 'base.motd', 'slow.wait']);
});

test('--max-cache-size collects after a build, never what the build used or made', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  await build(p.file, 'old');
  const r = await build(p.file, 'new', ['--max-cache-size', '0']);
  assert.match(r.stderr, /cache over 0 B: removed 3 trees/);
  assert.deepEqual(await nodes(p.file), ['new.big']);
  // The environment does the same; the flag wins over it.
  await build(p.file, 'old', [], { IMGMAKE_MAX_CACHE_SIZE: '0' });
  assert.deepEqual(await nodes(p.file), OLD);
  await build(p.file, 'new', ['--max-cache-size', '1T'], { IMGMAKE_MAX_CACHE_SIZE: '0' });
  assert.deepEqual(await nodes(p.file), [...OLD, 'new.big'].sort());
});

test('cache: { max_size } in the definition does the same; the environment and the flag win over it', async (t) => {
  const p = await projectWith(TWO.replace('version: 1\n', 'version: 1\ncache: { max_size: 0 }\n'));
  t.after(p.cleanup);
  await build(p.file, 'old');
  await build(p.file, 'new');
  assert.deepEqual(await nodes(p.file), ['new.big']);
  await build(p.file, 'old', [], { IMGMAKE_MAX_CACHE_SIZE: '1G' });
  assert.deepEqual(await nodes(p.file), [...OLD, 'new.big'].sort());
  await build(p.file, 'new', ['--max-cache-size', '1G']);
  assert.deepEqual(await nodes(p.file), [...OLD, 'new.big'].sort());
});

test('bad sizes are usage errors', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  for (const args of [
    ['cache', 'gc', '--max-size', '10X'],
    ['cache', 'gc', '--max-size', '-1G'],
    ['cache', 'gc'],
    ['--max-cache-size', 'lots', 'build', 'old'],
  ]) {
    const r = await imgmake(['-f', p.file, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /size/);
  }
  const env = await imgmake(['-f', p.file, 'build', 'old'], { env: { IMGMAKE_MAX_CACHE_SIZE: 'big' } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /IMGMAKE_MAX_CACHE_SIZE "big" is not a size/);
});

test('a killed collection or build leaves nothing that blocks the next: a stale gc.lock, a stale lease, a stale claim', async (t) => {
  const p = await projectWith(TWO);
  t.after(p.cleanup);
  await build(p.file, 'old');
  const cache = join(p.dir, 'cache');
  // Named like a work dir of an earlier boot: its owner is gone.
  await symlink('1-00000000.0-dead', join(cache, 'gc.lock'));
  // A claim on every key, as a build killed while making them would leave: a build that needs
  // one breaks it rather than wait (crash.test); a collection sweeps them.
  await mkdir(join(cache, 'claims'), { recursive: true });
  for (const x of await ls(p.file)) await symlink('1-00000000.0-dead', join(cache, 'claims', x.key));
  await writeFile(join(cache, 'leases', '1-00000000.0-dead'), JSON.stringify({ keys: (await ls(p.file)).map((x) => x.key), debs: [] }));
  assert.equal(summary(await build(p.file, 'old')).ran, 0, 'a build does not wait for a dead collection');
  const gc = await imgmake(['--json', '-f', p.file, 'cache', 'gc', '--max-size', '0']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(removedNames(gc).sort(), OLD, 'a dead build\'s lease protects nothing');
  assert.deepEqual(await readdir(join(cache, 'leases')), []);
  assert.equal(existsSync(join(cache, 'gc.lock')), false);
  assert.deepEqual(await readdir(join(cache, 'claims')), []);
});
