/**
 * The engine end to end on examples/hello, through the real CLI, real bubblewrap and a real
 * cache: what runs, what is reused, and why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile, utimes, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { bin, imgmake, projectWith, ran, stageEvents, summary, tempProject } from './helpers/cli.js';

const ALL = [
  'rootfs.dirs',
  'rootfs.greeting',
  'rootfs.hostname',
  'rootfs.link',
  'rootfs.locale',
  'rootfs.manifest',
  'rootfs.motd',
  'rootfs.timezone',
  'tarball.tar',
];

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

test('hello builds, and a second build runs nothing and is fast', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const first = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.deepEqual(ran(first), ALL);
  const tarball = join(p.dir, 'out', 'hello', 'hello.tar');
  const listing = execFileSync('tar', ['-tvf', tarball], { encoding: 'utf8' });
  assert.match(listing, /\.\/etc\/hostname/);
  assert.match(listing, /\.\/usr\/local\/bin\/hello -> greet/);
  assert.match(listing, / 0\/0 /, 'numeric owners');

  const second = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(second.code, 0, second.stderr);
  const s = summary(second);
  assert.equal(s.ran, 0);
  assert.equal(s.cached, ALL.length);
  assert.deepEqual(stageEvents(second).map((e) => e.status), ALL.map(() => 'cached'));
  // Sanity bound only; the measured figure lives in the README and the benchmark.
  assert.ok(s.wallMs < 10_000, `no-op build took ${s.wallMs} ms`);
  // Every line of --json output is one JSON object, and nothing else is on stdout.
  for (const line of second.stdout.trim().split('\n')) JSON.parse(line);
});

test('changing one option runs exactly that stage and the ones after it, as plan said', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  assert.equal((await imgmake(['--json', '-f', p.file, 'build', 'hello'])).code, 0);
  const yaml = await readFile(p.file, 'utf8');
  await writeFile(p.file, yaml.replace('timezone: Europe/Berlin', 'timezone: Europe/Paris'));

  const planned = await imgmake(['--json', '-f', p.file, 'plan', 'hello']);
  assert.equal(planned.code, 0, planned.stderr);
  const willRun = planned.events.filter((e) => e.status === 'run');
  assert.deepEqual(willRun.map((e) => e.node).sort(), ['rootfs.link', 'rootfs.locale', 'rootfs.greeting', 'rootfs.manifest', 'rootfs.timezone', 'tarball.tar'].sort());
  const tz = willRun.find((e) => e.node === 'rootfs.timezone')!;
  assert.deepEqual(tz.reasons, ['option timezone changed']);
  assert.deepEqual(willRun.find((e) => e.node === 'rootfs.locale')!.reasons, ['the stage before it changed (rootfs.timezone)']);
  assert.match(willRun.find((e) => e.node === 'tarball.tar')!.reasons.join(), /input tree changed/);

  const text = await imgmake(['-f', p.file, 'plan', 'hello']);
  assert.match(text.stdout, /will run\s+rootfs\.timezone\s+system\.timezone\s+— option timezone changed/);
  assert.match(text.stdout, /cached\s+rootfs\.hostname/);

  const rebuilt = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.deepEqual(ran(rebuilt), willRun.map((e) => e.node).sort());
  const listing = execFileSync('tar', ['-xOf', join(p.dir, 'out', 'hello', 'hello.tar'), './etc/timezone'], { encoding: 'utf8' });
  assert.equal(listing.trim(), 'Europe/Paris');
});

test('a copied-in file: new content reruns its dependants, a touch runs nothing', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  assert.equal((await imgmake(['--json', '-f', p.file, 'build', 'hello'])).code, 0);
  const motd = join(p.dir, 'files', 'motd');

  const future = new Date(Date.now() + 60_000);
  await utimes(motd, future, future);
  const touched = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(summary(touched).ran, 0);

  await writeFile(motd, 'A different message of the day.\n');
  const changed = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(changed.code, 0, changed.stderr);
  assert.deepEqual(ran(changed), ALL.filter((n) => n !== 'rootfs.dirs'));
  const inTar = execFileSync('tar', ['-xOf', join(p.dir, 'out', 'hello', 'hello.tar'), './etc/motd'], { encoding: 'utf8' });
  assert.equal(inTar, 'A different message of the day.\n');
});

test('a failing stage: exit 1, its name, log tail and log path; earlier stages stay cached', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const yaml = await readFile(p.file, 'utf8');
  const broken = yaml.replace(
    'find . -mindepth 1 | LC_ALL=C sort > /tmp/manifest.txt',
    'echo "about to fail"; echo "disk on fire" >&2; exit 3',
  );
  await writeFile(p.file, broken);
  const r = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(r.code, 1);
  const failed = stageEvents(r, 'failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.node, 'rootfs.manifest');
  assert.equal(failed[0]!.exitCode, 3);
  assert.ok(failed[0]!.tail.includes('disk on fire'), JSON.stringify(failed[0]!.tail));
  assert.equal(failed[0]!.log, 'imgmake log rootfs.manifest', 'the log is named by the command that prints it');
  assert.match((await imgmake(['-f', p.file, 'log', 'rootfs.manifest'])).stdout, /about to fail/);
  assert.equal(summary(r).failed, 1);

  const text = await imgmake(['-f', p.file, 'build', 'hello']);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /FAILED rootfs\.manifest \(shell\.run\) exit 3/);
  assert.match(text.stdout, /\| disk on fire/);
  assert.match(text.stdout, /full log: imgmake log rootfs\.manifest/);

  await writeFile(p.file, yaml);
  const fixed = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.deepEqual(ran(fixed), ['rootfs.manifest', 'tarball.tar']);
});

test('the tarball is reproducible: two clean caches give the same bytes', async (t) => {
  const a = await tempProject();
  const b = await tempProject();
  t.after(a.cleanup);
  t.after(b.cleanup);
  assert.equal((await imgmake(['--json', '-f', a.file, 'build', 'hello'])).code, 0);
  assert.equal((await imgmake(['--json', '-f', b.file, 'build', 'hello'])).code, 0);
  assert.equal(await sha(join(a.dir, 'out/hello/hello.tar')), await sha(join(b.dir, 'out/hello/hello.tar')));
});

test('bad input: exit 2, a positioned message, and the cache untouched', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  assert.equal((await imgmake(['--json', '-f', p.file, 'build', 'hello'])).code, 0);
  const cacheDir = join(p.dir, 'cache');
  const before = execFileSync('sh', ['-c', `cd ${cacheDir} && find . -printf '%p %s %T@\\n' | sort`], { encoding: 'utf8' });
  const yaml = await readFile(p.file, 'utf8');
  await writeFile(p.file, yaml.replace('rule: system.hostname', 'rule: system.hostnam'));
  const r = await imgmake(['-f', p.file, 'build', 'hello']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /imgmake\.yaml:\d+:\d+: error: .*system\.hostnam/);
  assert.match(r.stderr, /\^\^\^/);
  const after = execFileSync('sh', ['-c', `cd ${cacheDir} && find . -printf '%p %s %T@\\n' | sort`], { encoding: 'utf8' });
  assert.equal(after, before);

  const unknownTarget = await imgmake(['-f', p.file.replace('imgmake.yaml', 'nope.yaml'), 'build', 'hello']);
  assert.equal(unknownTarget.code, 2);
  await writeFile(p.file, yaml);
  const noTarget = await imgmake(['-f', p.file, 'build', 'helo']);
  assert.equal(noTarget.code, 2);
  assert.match(noTarget.stderr, /no target named "helo"/);
  const usage = await imgmake(['-f', p.file, 'build', '--bogus']);
  assert.equal(usage.code, 2);
});

test('targets, rules and cache info describe what is there', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const targets = await imgmake(['-f', p.file, 'targets']);
  assert.equal(targets.code, 0);
  assert.match(targets.stdout, /^hello\s+\(pipeline tarball, exports hello\.tar\)$/m);
  const rules = await imgmake(['rules']);
  assert.match(rules.stdout, /^files\.mkdir\s+\S/m);
  assert.match(rules.stdout, /^archive\.tar\s+\S/m);
  const one = await imgmake(['rules', 'system.hostname']);
  assert.match(one.stdout, /hostname: string \(required\)/);
  assert.equal((await imgmake(['rules', 'nope.rule'])).code, 2);
  assert.equal((await imgmake(['--json', '-f', p.file, 'build', 'hello'])).code, 0);
  const info = await imgmake(['--json', '-f', p.file, 'cache', 'info']);
  const i = info.events[0]!;
  // Every stage's tree but the tarball's: it went to out/hello (src/deliver.ts).
  assert.equal(i.trees, ALL.length - 1);
  assert.ok(i.bytes > 0);
  const layers = await readdir(join(p.dir, 'cache', 'layers'));
  assert.equal(layers.length, ALL.length - 1);
  assert.ok((await stat(join(p.dir, 'out', 'hello', 'hello.tar'))).size > 0);
});

test('IMGMAKE_VAR_NAME sets a variable like --var, and --var wins over it', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const hostnameIn = () => execFileSync('tar', ['-xOf', join(p.dir, 'out', 'hello', 'hello.tar'), './etc/hostname'], { encoding: 'utf8' });
  const env = await imgmake(['--json', '-f', p.file, 'build', 'hello'], { env: { IMGMAKE_VAR_hostname: 'from-env' } });
  assert.equal(env.code, 0, env.stderr);
  assert.equal(hostnameIn(), 'from-env\n');
  const flag = await imgmake(['--json', '-f', p.file, '--var', 'hostname=from-flag', 'build', 'hello'], { env: { IMGMAKE_VAR_hostname: 'from-env' } });
  assert.equal(flag.code, 0, flag.stderr);
  assert.equal(hostnameIn(), 'from-flag\n');
});

test('a pipeline with base: starts from that pipeline\'s tree; editing the base reruns both', async (t) => {
  const p = await projectWith(
    `version: 1
pipelines:
  base:
    stages:
      - name: motd
        rule: files.write
        options: { files: [{ path: /etc/motd, content: "\${motd}\\n" }] }
  image:
    base: base
    stages:
      - name: hostname
        rule: system.hostname
        options: { hostname: box }
vars:
  motd: one
targets:
  image: { pipeline: image }
`,
  );
  t.after(p.cleanup);
  const first = await imgmake(['--json', '-f', p.file, 'build', 'image']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.deepEqual(ran(first), ['base.motd', 'image.hostname']);
  assert.equal(await readFile(join(p.dir, 'out', 'image', 'etc', 'motd'), 'utf8'), 'one\n');
  assert.equal(await readFile(join(p.dir, 'out', 'image', 'etc', 'hostname'), 'utf8'), 'box\n');

  const planned = await imgmake(['--json', '-f', p.file, '--var', 'motd=two', 'plan', 'image']);
  assert.equal(planned.code, 0, planned.stderr);
  const why = planned.events.find((e) => e.node === 'image.hostname');
  assert.equal(why?.status, 'run');
  assert.match(JSON.stringify(why?.reasons), /base\.motd/);

  const edit = await imgmake(['--json', '-f', p.file, '--var', 'motd=two', 'build', 'image']);
  assert.equal(edit.code, 0, edit.stderr);
  assert.deepEqual(ran(edit), ['base.motd', 'image.hostname']);
  assert.equal(await readFile(join(p.dir, 'out', 'image', 'etc', 'motd'), 'utf8'), 'two\n');
});

test('output into a pipe whose reader has gone (imgmake … | head) is dropped, not a crash', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  assert.equal((await imgmake(['-f', p.file, 'build', 'hello'])).code, 0);
  // `true` exits without reading: every write imgmake makes meets a closed pipe.
  for (const args of ['cache ls', 'plan hello', '--json build hello']) {
    const r = spawnSync('/bin/bash', ['-o', 'pipefail', '-c', `node ${bin} -f ${p.file} ${args} | true`], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${args}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /EPIPE|Error/, args);
  }
});
