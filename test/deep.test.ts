/**
 * No depth limit (issue 21): past what overlayfs can stack, a tree is mounted over a squash of a
 * tree below it (src/store/squash.ts), transparently.
 * - through the store: a tree of 56+ layers (whiteouts, hardlinks, symlinks, a setuid file, a
 *   sparse file, an xattr among them) reads the same over its squash as over all its layers,
 *   and stages go on stacking on it;
 * - through the CLI: a 200-stage pipeline builds, a second build is a no-op, an edit of stage
 *   150 re-runs stages 150–200 only, and the tree exported at the end holds all 200 stages'
 *   work; `cache gc` takes a squash along with its layer;
 * - through a remote cache (a real nginx): a 60-stage tree pushed by one runner is downloaded by
 *   another with an empty cache, which makes the squash itself (squashes are never uploaded)
 *   and exports the same tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asCacheKey, type CacheKey, type NodeId } from '../src/ids.js';
import { bwrapSandbox } from '../src/sandbox/run.js';
import type { SandboxSpec, TreeMount } from '../src/sandbox/spec.js';
import { verify } from '../src/store/gc.js';
import { openLocalStore } from '../src/store/local.js';
import { SQUASH_EVERY, SQUASH_FROM } from '../src/store/squash.js';
import type { Store, TreeRecord } from '../src/store/types.js';
import { imgmake, projectWith, ran } from './helpers/cli.js';
import { DAV, startNginx } from './helpers/nginx.js';
import { tempDir } from './helpers/sandbox-fixtures.js';
import { describeTree } from './helpers/tree.js';

const NODE = 'deep.test' as NodeId;
let seq = 0;
const newKey = (): CacheKey => asCacheKey(createHash('sha256').update(`deep:${process.pid}:${seq++}:${Math.random()}`).digest('hex'));

/** Runs `script` in the sandbox on `mount` (the tree at /run/imgmake/tree); returns its output. */
async function run(mount: TreeMount, writable: boolean, script: string, scratch: string): Promise<string> {
  const logFile = join(scratch, `log${seq++}`);
  writeFileSync(logFile, '');
  const spec: SandboxSpec = { buildroot: { kind: 'host' }, tree: { mount, writable }, inputs: [], argv: ['/bin/sh', '-c', `set -eu\n${script}`], env: {} };
  const r = await bwrapSandbox.run(spec, { logFile });
  const out = readFileSync(logFile, 'utf8');
  assert.equal(r.exitCode, 0, out);
  return out;
}

/** One stage on `parent`, committed under a fresh key. */
async function stage(store: Store, parent: TreeRecord | undefined, script: string): Promise<TreeRecord> {
  const w = await store.begin(parent);
  await run(w.mount, true, script, w.scratch);
  return store.commit(w, { key: newKey(), node: NODE, ms: 0 });
}

/** Everything a tree is, as a listing made in the sandbox (inode numbers left out). */
const LIST = `find . -printf '%p %y %m %U %G %s %b %T@ %l %n\\n' | LC_ALL=C sort; find . -type f -exec sha256sum {} + | LC_ALL=C sort; getfattr -R -d -m - . 2>/dev/null | grep -v '^$' || true`;

test(`store: a tree of ${SQUASH_FROM}+ layers reads the same over its squash as over all its layers, and stages stack on it`, { timeout: 300_000 }, async () => {
  const t = tempDir('imgmake-deep-');
  try {
    const store = await openLocalStore(join(t.dir, 'cache'));
    const scratch = join(t.dir, 'scratch');
    mkdirSync(scratch);
    // The first layers carry what a squash must keep; layers written straight into a work
    // dir's upper and committed stand for the rest of the first 54 stages, then real stages.
    let tree = await stage(store, undefined, `mkdir -p etc bin d/sub; echo a > etc/a; ln etc/a etc/a-link; ln -s ../etc/a bin/l
      printf x > bin/suid; chmod 4755 bin/suid; truncate -s 64M sparse; printf data | dd of=sparse bs=1 seek=1000 conv=notrunc status=none
      setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 bin/suid; echo gone > gone; echo old > d/sub/f`);
    tree = await stage(store, tree, `rm gone; rm -r d; mkdir d; echo new > d/g`);
    for (let n = tree.layers.length; n < SQUASH_FROM - 1; n++) {
      const w = await store.begin(tree);
      writeFileSync(join(w.upper, `f${n}`), String(n));
      tree = await store.commit(w, { key: newKey(), node: NODE, ms: 0 });
    }
    tree = await stage(store, tree, `echo top > top; rm f10`);
    assert.equal(tree.layers.length, SQUASH_FROM);
    const squashed = tree.layers[tree.layers.length - SQUASH_EVERY]!;
    assert.ok(existsSync(join(store.root, 'squash', squashed)), 'the commit made the squash its tree is mounted over');

    // Read over the squash (what readMount hands out) and over all 56 layers (still mountable
    // read-only): the same listing, times, xattrs and whiteouts included.
    const mp = (n: string) => (mkdirSync(join(t.dir, n)), join(t.dir, n));
    const viaSquash = store.readMount(tree, mp('a'));
    assert.ok(viaSquash.kind === 'overlay' && viaSquash.lowers.length === SQUASH_FROM - SQUASH_EVERY + 1, JSON.stringify(viaSquash));
    const plain: TreeMount = { kind: 'overlay', layersDir: join(store.root, 'layers'), lowers: [...tree.layers], mountpoint: mp('b') };
    const a = await run(viaSquash, false, LIST, scratch);
    assert.equal(a, await run(plain, false, LIST, scratch));
    assert.match(a, /security\.capability/);
    assert.doesNotMatch(a, /\.\/gone |\.\/f10 |d\/sub/);

    // Deeper: 70 more stages (two more bands), each on the last, the squash above made once.
    for (let n = 0; n < 70; n++) tree = await stage(store, tree, `echo ${n} > s${n}; [ $((${n} % 7)) -ne 0 ] || rm -f f$((20 + ${n} / 7))`);
    assert.equal(tree.layers.length, SQUASH_FROM + 70);
    assert.equal(readdirSync(join(store.root, 'squash')).length, 2);
    const deep = await run(store.readMount(tree, mp('c')), false, `ls | LC_ALL=C sort | tr '\\n' ' '; cat s69 etc/a-link d/g`, scratch);
    const want = ['bin', 'd', 'etc', ...Array.from({ length: SQUASH_FROM - 3 }, (_, i) => `f${i + 2}`).filter((f) => !['f10', ...Array.from({ length: 10 }, (_, i) => `f${20 + i}`)].includes(f)), ...Array.from({ length: 70 }, (_, i) => `s${i}`), 'sparse', 'top'];
    assert.equal(deep, `${want.sort().join(' ')} 69\na\nnew\n`);
    // cache verify re-digests squashes: one changed on disk goes, and is made again.
    const bottom = tree.layers[tree.layers.length - SQUASH_EVERY]!;
    const clean = await verify(store.root);
    assert.deepEqual([clean.corrupt, clean.squashes], [[], 2]);
    writeFileSync(join(store.root, 'squash', bottom, 'etc', 'a'), 'b\n');
    const bad = await verify(store.root);
    assert.deepEqual(bad.corrupt.map((c) => [c.kind, c.key]), [['squash', bottom]]);
    assert.equal(existsSync(join(store.root, 'squash', bottom)), false);
    const mid = await store.get(tree.layers[SQUASH_EVERY]!);
    assert.ok(mid, 'a tree of the band above it is still cached');
    assert.equal(await run(store.readMount(mid, mp('v')), false, 'cat etc/a', scratch), 'a\n');
    assert.equal((await verify(store.root)).corrupt.length, 0, 'the squash made again matches its entry');
    // What a fresh open sees (a later build): every tree it hands out mounts, and a missing
    // squash is made again from the layers.
    execFileSync('rm', ['-rf', join(store.root, 'squash')]);
    const again = await openLocalStore(store.root);
    const rec = await again.get(tree.key);
    assert.ok(rec, 'the deep tree is still cached');
    assert.equal(await run(again.readMount(rec, mp('d')), false, 'cat s0', scratch), '0\n');
  } finally {
    t.cleanup();
  }
});

/** A pipeline of `n` cheap stages, stage i making directory /d/i (stage `edit` makes /d/i-edited). */
function chain(n: number, edit?: number): string {
  const stages = Array.from({ length: n }, (_, i) => `      - name: s${i + 1}\n        rule: files.mkdir\n        options: { paths: [{ path: /d/${i + 1}${i + 1 === edit ? '-edited' : ''} }] }\n`).join('');
  return `version: 1\npipelines:\n  deep:\n    stages:\n${stages}targets:\n  deep:\n    pipeline: deep\n`;
}

test('a 200-stage pipeline builds, rebuilds as a no-op, and an edit of stage 150 re-runs only stages 150–200', { timeout: 900_000 }, async (t) => {
  const p = await projectWith(chain(200));
  t.after(p.cleanup);
  const cold = await imgmake(['--json', '-f', p.file, 'build', 'deep']);
  assert.equal(cold.code, 0, cold.stderr + cold.stdout.slice(-3000));
  assert.equal(ran(cold).length, 200);
  const noop = await imgmake(['--json', '-f', p.file, 'build', 'deep']);
  assert.equal(noop.code, 0, noop.stderr);
  assert.deepEqual(ran(noop), []);

  writeFileSync(p.file, chain(200, 150));
  const edit = await imgmake(['--json', '-f', p.file, 'build', 'deep']);
  assert.equal(edit.code, 0, edit.stderr + edit.stdout.slice(-3000));
  assert.deepEqual(ran(edit), Array.from({ length: 51 }, (_, i) => `deep.s${150 + i}`).sort());

  const out = readdirSync(join(p.dir, 'out', 'deep', 'd')).sort();
  assert.deepEqual(out, [...Array.from({ length: 200 }, (_, i) => (i + 1 === 150 ? '150-edited' : String(i + 1)))].sort());
  // One squash per band of the chain: 48, 96, 144, 192 (the edit's own for 192 too).
  assert.equal(readdirSync(join(p.dir, 'cache', 'squash')).length, 5);

  // gc takes a squash along with its layer.
  const gc = await imgmake(['--json', '-f', p.file, 'cache', 'gc', '--max-size', '0']);
  assert.equal(gc.code, 0, gc.stderr + gc.stdout);
  assert.deepEqual(readdirSync(join(p.dir, 'cache', 'squash')), []);
});

test('a 60-stage tree through a remote cache: the runner that downloads it makes its squash and exports the same tree', { timeout: 300_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'imgmake-deep-remote-'));
  chmodSync(root, 0o755); // nginx's worker runs as an unprivileged user
  const nginx = await startNginx(join(root, 'remote'), DAV);
  t.after(() => nginx.stop().then(() => execFileSync('rm', ['-rf', root])));
  chmodSync(nginx.www, 0o777);
  const url = `http://127.0.0.1:${nginx.port}/cache`;
  const trees: string[][] = [];
  for (const who of ['a', 'b']) {
    const p = await projectWith(chain(60));
    t.after(p.cleanup);
    const r = await imgmake(['--json', '-f', p.file, '--remote', url, 'build', 'deep']);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    // The warnings say why a tree was not taken from the remote (a flake seen once: runner b ran one stage).
    assert.equal(ran(r).length, who === 'a' ? 60 : 0, `runner ${who} ran ${ran(r).join(', ')}; warnings: ${JSON.stringify(r.events.filter((e) => e.type === 'warning'))}`);
    assert.deepEqual(readdirSync(join(p.dir, 'cache', 'squash')).length, 1, `runner ${who} has the squash at 48`);
    trees.push(describeTree(join(p.dir, 'out', 'deep')));
  }
  assert.equal(readdirSync(join(nginx.www, 'cache', 'cas')).length, 60, 'layers are uploaded, squashes never');
  assert.deepEqual(trees[1], trees[0]);
});

test('build --from a stage below a squash: the squash made from the replaced layer is made again, the tree exports the same', { timeout: 300_000 }, async (t) => {
  const p = await projectWith(chain(60));
  t.after(p.cleanup);
  const cold = await imgmake(['--json', '-f', p.file, 'build', 'deep']);
  assert.equal(cold.code, 0, cold.stderr + cold.stdout.slice(-3000));
  const before = describeTree(join(p.dir, 'out', 'deep'));
  const squash = readdirSync(join(p.dir, 'cache', 'squash'));
  const inode = statSync(join(p.dir, 'cache', 'squash', squash[0]!)).ino;
  const again = await imgmake(['--json', '-f', p.file, 'build', 'deep', '--from', 'deep.s40']);
  assert.equal(again.code, 0, again.stderr + again.stdout.slice(-3000));
  assert.deepEqual(ran(again), Array.from({ length: 21 }, (_, i) => `deep.s${40 + i}`).sort());
  assert.deepEqual(readdirSync(join(p.dir, 'cache', 'squash')), squash, 'the same key: the same name');
  assert.notEqual(statSync(join(p.dir, 'cache', 'squash', squash[0]!)).ino, inode, 'made again');
  assert.deepEqual(describeTree(join(p.dir, 'out', 'deep')), before);
});
