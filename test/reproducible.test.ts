/**
 * Every committed tree is reproducible (issue 21), not only the exports: two cold builds on
 * separate caches, at different moments, give `imgmake export` trees that are identical entry
 * by entry — type, mode, owner, size, content, link target and mtime (to the nanosecond). The
 * times come from the commit's clamp to SOURCE_DATE_EPOCH (src/store/times.ts), so a rule that
 * writes at the wall-clock time (all of examples/hello's do) cannot leak that time into a tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, tempProject } from './helpers/cli.js';
import { describeTree } from './helpers/tree.js';
import { SOURCE_DATE_EPOCH } from '../src/key.js';

/** The stage nodes of examples/hello, in order. */
const HELLO_NODES = ['dirs', 'motd', 'hostname', 'timezone', 'locale', 'greeting', 'link', 'manifest'].map((s) => `rootfs.${s}`).concat('tarball.tar');

test('two cold builds of examples/hello on separate caches: identical trees after every stage, times included', { timeout: 180_000 }, async (t) => {
  const exported: string[][][] = [];
  for (const run of [0, 1]) {
    const p = await tempProject();
    t.after(p.cleanup);
    const b = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
    assert.equal(b.code, 0, b.stderr + b.stdout);
    // The export time policy: an exported file has its tree's time (the tar's own mtime too).
    assert.equal(statSync(join(p.dir, 'out', 'hello', 'hello.tar')).mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
    // The tarball's stage delivered its file to out/ (src/deliver.ts): a build that stops there keeps its tree.
    const kept = await imgmake(['--json', '-f', p.file, 'build', 'hello', '--until', 'tarball.tar']);
    assert.equal(kept.code, 0, kept.stderr + kept.stdout);
    const trees: string[][] = [];
    for (const node of HELLO_NODES) {
      const dir = join(await mkdtemp(join(tmpdir(), 'imgmake-repro-')), 'tree');
      t.after(() => rm(join(dir, '..'), { recursive: true, force: true }));
      const e = await imgmake(['-f', p.file, 'export', node, dir]);
      assert.equal(e.code, 0, e.stderr + e.stdout);
      trees.push(describeTree(dir));
    }
    exported.push(trees);
    // A second apart at least: a time that leaked from the wall clock cannot match by chance.
    if (run === 0) await new Promise((r) => setTimeout(r, 1100));
  }
  for (const [i, node] of HELLO_NODES.entries()) assert.deepEqual(exported[1]![i], exported[0]![i], `the tree of ${node} differs between the two builds`);
  // What the policy says: nothing in a tree is later than SOURCE_DATE_EPOCH.
  const limit = BigInt(SOURCE_DATE_EPOCH) * 1_000_000_000n;
  for (const line of exported[0]!.flat()) assert.ok(BigInt(line.split(' ')[6]!) <= limit, `later than SOURCE_DATE_EPOCH: ${line}`);
});
