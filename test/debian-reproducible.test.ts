/**
 * The Debian half of reproducible trees (issue 21): examples/debian-12's `os` tree, built twice
 * on separate caches, exports identically, times included. Slow (minutes): it installs Debian.
 *
 * What is shared, on purpose: the package stage. It runs once (locking against this host's
 * mirror), then its cache is copied whole (`cp -a`, so the second cache holds the same layer,
 * entry and lock) and every stage after it — locale, machine-id, the environment's and
 * workload's files, the image's own settings: the stages that write at the wall-clock time —
 * runs cold on each cache. The package stage's own reproducibility is apt.install's clamp,
 * covered by its rule test; running it twice would double this test's cost (~2 min each here)
 * to check the same code again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, ran, tempProject } from './helpers/cli.js';
import { describeTree } from './helpers/tree.js';

const LAST = 'os.esp-mountpoint';

test('examples/debian-12: two cold builds of the os pipeline after one package stage give identical trees, times included', { timeout: 1_800_000 }, async (t) => {
  const a = await tempProject('debian-12');
  t.after(a.cleanup);
  const pkgs = await imgmake(['--json', '-f', a.file, 'build', 'qcow2', '--until', 'distro.packages']);
  assert.equal(pkgs.code, 0, pkgs.stderr + pkgs.stdout.slice(-3000));
  const b = await tempProject('debian-12');
  t.after(b.cleanup);
  await cp(join(a.dir, 'imgmake.lock'), join(b.dir, 'imgmake.lock'));
  execFileSync('cp', ['-a', join(a.dir, 'cache'), join(b.dir, 'cache')]);

  const trees: string[][] = [];
  for (const p of [a, b]) {
    const r = await imgmake(['--json', '-f', p.file, 'build', 'qcow2', '--locked', '--until', LAST]);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    assert.ok(ran(r).includes('distro.locale') && ran(r).includes(LAST) && !ran(r).includes('distro.packages'), ran(r).join(' '));
    const dir = join(await mkdtemp(join(tmpdir(), 'imgmake-repro-')), 'tree');
    t.after(() => rm(join(dir, '..'), { recursive: true, force: true }));
    const e = await imgmake(['-f', p.file, 'export', LAST, dir]);
    assert.equal(e.code, 0, e.stderr + e.stdout);
    trees.push(describeTree(dir));
    if (p === a) await new Promise((r) => setTimeout(r, 1100));
  }
  const differ = trees[0]!.filter((l, i) => trees[1]![i] !== l);
  assert.equal(trees[0]!.length, trees[1]!.length);
  assert.deepEqual(differ, [], `${differ.length} entries differ, e.g.\n${differ.slice(0, 20).join('\n')}`);
});
