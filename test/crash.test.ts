/**
 * Crash safety and concurrency of whole builds (invariant 5): kill -9 of `imgmake build` at any
 * moment, then a new build, gives the same result as a clean build, with no manual repair; two
 * builds at once on one cache both succeed and agree; Ctrl-C stops the sandboxes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imgmake, ran, startImgmake, summary, tempProject } from './helpers/cli.js';

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Slow the example down so kills land inside stages, not only between them. */
async function slowProject() {
  const p = await tempProject();
  const yaml = await readFile(p.file, 'utf8');
  await writeFile(
    p.file,
    yaml.replace(
      'find . -mindepth 1 | LC_ALL=C sort > /tmp/manifest.txt',
      'for i in $(seq 1 200); do echo "$i" > "etc/f$i"; done; sleep 0.3; find . -mindepth 1 | LC_ALL=C sort > /tmp/manifest.txt',
    ),
  );
  return p;
}

/** True when no process runs exactly this command line (NUL-separated). */
async function noProcess(cmdline: string): Promise<boolean> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) === cmdline) return false;
  }
  return true;
}

test('kill -9 at random moments, then a build: the same tarball as a clean build', { timeout: 300_000 }, async (t) => {
  const ref = await slowProject();
  const p = await slowProject();
  t.after(ref.cleanup);
  t.after(p.cleanup);
  const clean = await imgmake(['--json', '-f', ref.file, 'build', 'hello']);
  assert.equal(clean.code, 0, clean.stderr);
  const want = await sha(join(ref.dir, 'out/hello/hello.tar'));

  for (let i = 0; i < 8; i++) {
    // Invalidate everything after the first stages now and then, so kills hit fresh work.
    const child = startImgmake(['--json', '-f', p.file, '--var', `hostname=h${i % 3}`, 'build', 'hello']);
    // Listen first: a build that beats the kill has closed before the sleep ends.
    const closed = new Promise((r) => child.on('close', r));
    await sleep(100 + Math.floor(Math.random() * 1500));
    child.kill('SIGKILL');
    await closed;
  }
  const after = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(after.code, 0, after.stderr + after.stdout);
  assert.equal(await sha(join(p.dir, 'out/hello/hello.tar')), want);
  // Again, for every hostname the killed builds touched: each result must be a clean one.
  for (const h of ['h0', 'h1', 'h2']) {
    const r = await imgmake(['--json', '-f', p.file, '--var', `hostname=${h}`, 'build', 'hello']);
    assert.equal(r.code, 0, r.stderr);
    const rr = await imgmake(['--json', '-f', ref.file, '--var', `hostname=${h}`, 'build', 'hello']);
    assert.equal(rr.code, 0);
    assert.equal(await sha(join(p.dir, 'out/hello/hello.tar')), await sha(join(ref.dir, 'out/hello/hello.tar')), h);
  }
  // Orphaned work directories were cleaned by the builds that followed.
  assert.deepEqual(await readdir(join(p.dir, 'cache', 'work')), []);
});

test('two builds at once on one cache both succeed and agree, and build each stage once', { timeout: 120_000 }, async (t) => {
  const p = await slowProject();
  t.after(p.cleanup);
  const [a, b] = await Promise.all([
    imgmake(['--json', '-f', p.file, '--out', join(p.dir, 'out-a'), 'build', 'hello']),
    imgmake(['--json', '-f', p.file, '--out', join(p.dir, 'out-b'), 'build', 'hello']),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await sha(join(p.dir, 'out-a/hello/hello.tar')), await sha(join(p.dir, 'out-b/hello/hello.tar')));
  // A stage both need is built by one of them; the other waits for its claim and uses the tree.
  // The tarball's stage is the exception: it delivers its file to its build's own out/ instead
  // of keeping it in the cache (src/deliver.ts), so each out/ gets its own run of it.
  const both = [...ran(a), ...ran(b)].filter((n) => n !== 'tarball.tar').sort();
  assert.deepEqual(both, [...new Set(both)], `a stage ran twice: ${both.join(' ')}`);
  assert.equal(both.length + 1, summary(a).ran + summary(a).cached, 'every stage ran in one of the two builds');
  assert.deepEqual([ran(a).includes('tarball.tar'), ran(b).includes('tarball.tar')], [true, true], 'the delivered stage ran for each out/');
  assert.equal(summary(a).failed + summary(b).failed, 0);
  const third = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.deepEqual(ran(third), ['tarball.tar'], 'the cache holds every tree after both; a third out/ gets its own tarball');
  // And into one out/ at the same time: each export is whole.
  const [c, d] = await Promise.all([
    imgmake(['--json', '-f', p.file, '--var', 'hostname=x', 'build', 'hello']),
    imgmake(['--json', '-f', p.file, '--var', 'hostname=x', 'build', 'hello']),
  ]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(d.code, 0, d.stderr);
});

test('Ctrl-C stops the running sandbox, exits 130, and the next build finishes the job', { timeout: 120_000 }, async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  // An unusual duration makes the sleep findable in /proc.
  const yaml = await readFile(p.file, 'utf8');
  await writeFile(p.file, yaml.replace('find . -mindepth 1', `sleep 31.77\n            find . -mindepth 1`));
  const child = startImgmake(['--json', '-f', p.file, 'build', 'hello']);
  const closed = new Promise((r) => child.on('close', r));
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  for (let i = 0; i < 200 && !stdout.includes('"rootfs.manifest"'); i++) await sleep(100);
  assert.match(stdout, /"type":"stage-start","node":"rootfs.manifest"/);
  child.kill('SIGINT');
  const code = await closed;
  assert.equal(code, 130);
  assert.match(stdout, /"type":"stage-cancelled","node":"rootfs.manifest"/);
  assert.ok(await noProcess('sleep\u000031.77\u0000'), 'the sandbox is gone');
  assert.deepEqual(await readdir(join(p.dir, 'cache', 'work')), [], 'nothing half-committed');
  await writeFile(p.file, yaml);
  const r = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(summary(r).cached, 7, 'stages committed before Ctrl-C were kept');
});
