/**
 * The local store, for real: trees built by the real sandbox (unshare + overlayfs + bubblewrap,
 * as root) through `begin`/`commit`, then read back the two ways imgmake reads a tree — a
 * read-only `readMount` inside a sandbox, and an export (`cp -a` in the sandbox, via
 * exportTarget). Each test checks what the filesystem says on both sides, not only what the
 * stage printed.
 *
 * What overlayfs does that a plain directory does not (mount options: index=off,
 * redirect_dir=off, metacopy=off) is asserted as it is, and written up in docs/store.md:
 * - a hardlink made in a later stage to an earlier layer's file copies that file up (its data
 *   lands in the new layer);
 * - writing through one name of a hardlinked pair from an earlier layer breaks the link;
 * - rename(2) of a directory from an earlier layer fails with EXDEV (`mv` then copies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { asCacheKey, type CacheKey, type NodeId, type PipelineName } from '../src/ids.js';
import { bwrapSandbox } from '../src/sandbox/run.js';
import { SANDBOX_INPUTS, SANDBOX_RUN, SANDBOX_TREE, type SandboxSpec } from '../src/sandbox/spec.js';
import { MAX_LAYERS, openLocalStore } from '../src/store/local.js';
import type { Store, TreeRecord } from '../src/store/types.js';
import { exportTarget } from '../src/export.js';
import { snapshot, tempDir } from './helpers/sandbox-fixtures.js';

const T = { timeout: 60_000 };
const NODE = 'store.test' as NodeId;

// ---------------------------------------------------------------------------------------------
// Fixtures

let seq = 0;
/** A fresh, well-formed cache key (the store does not care how it was computed). */
function newKey(label = 'k'): CacheKey {
  return asCacheKey(createHash('sha256').update(`${label}:${process.pid}:${seq++}:${Math.random()}`).digest('hex'));
}

async function withStore(fn: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-store-test-');
  try {
    const store = await openLocalStore(join(t.dir, 'cache'));
    await fn(store, t.dir);
  } finally {
    t.cleanup();
  }
}

/**
 * One stage, the way schedule.ts runs it: `begin(parent)`, the tree read-write at
 * /run/imgmake/tree (the cwd), host buildroot, an (empty) run dir, the same environment;
 * `commit` under a fresh key on exit 0.
 */
async function stage(store: Store, parent: TreeRecord | undefined, script: string, key = newKey()): Promise<TreeRecord> {
  const w = await store.begin(parent);
  const logFile = join(w.scratch, 'log');
  const runDir = join(w.scratch, 'run');
  mkdirSync(runDir);
  writeFileSync(logFile, '');
  const spec: SandboxSpec = {
    buildroot: { kind: 'host' },
    tree: { mount: w.mount, writable: true },
    inputs: [],
    runDir,
    argv: ['/bin/sh', '-c', `set -eu\n${script}`],
    env: { SOURCE_DATE_EPOCH: '0', TREE: SANDBOX_TREE, INPUTS: SANDBOX_INPUTS },
  };
  const r = await bwrapSandbox.run(spec, { logFile });
  if (r.exitCode !== 0) {
    const log = readFileSync(logFile, 'utf8');
    await store.discard(w);
    assert.fail(`stage exited ${r.exitCode}:\n${log}`);
  }
  return store.commit(w, { key, node: NODE, ms: r.ms });
}

/** Builds stages one on top of the other; returns every tree, oldest first. */
async function build(store: Store, scripts: string[]): Promise<TreeRecord[]> {
  const out: TreeRecord[] = [];
  for (const s of scripts) out.push(await stage(store, out[out.length - 1], s));
  return out;
}

/**
 * A lister that runs the same on the host (an export) and in a sandbox (a readMount): one JSON
 * object per entry, keyed by path relative to the root. Device numbers are decoded from the
 * 64-bit dev_t with BigInt (glibc's layout: major in bits 8–19 and 32–43, minor in 0–7 and
 * 12–31); with Number, `>>> 32` would be a no-op.
 */
const LISTER = `
const fs = require('node:fs');
const path = require('node:path');
const root = process.argv[process.argv.length - 1];
const out = {};
const walk = (rel) => {
  const p = rel ? path.join(root, rel) : root;
  const st = fs.lstatSync(p, { bigint: true });
  const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c'
    : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : st.isSocket() ? 's' : '?';
  const r = st.rdev;
  const e = {
    type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), ino: String(st.ino),
    nlink: Number(st.nlink), size: Number(st.size), blocks: Number(st.blocks),
    major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)),
  };
  if (type === 'l') e.link = fs.readlinkSync(p);
  if (type === 'f' && st.size <= 1048576n) e.sha = require('node:crypto').createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
  out[rel || '.'] = e;
  if (type === 'd') for (const n of fs.readdirSync(p).sort()) walk(rel ? rel + '/' + n : n);
};
walk('');
process.stdout.write(JSON.stringify(out));
`;

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  ino: string;
  nlink: number;
  size: number;
  blocks: number;
  major: number;
  minor: number;
  link?: string;
  sha?: string;
}
type Listing = Record<string, Entry>;

/**
 * Runs `script` in a sandbox over the committed tree `rec`, read-only, as store.readMount
 * hands it out (a bind of a one-layer tree, or an overlay of all its layers). The lister is at
 * $RUN/list.js. Returns stdout+stderr.
 */
async function inside(store: Store, rec: TreeRecord, script: string): Promise<string> {
  const t = tempDir('imgmake-store-read-');
  try {
    const mp = join(t.dir, 'mnt');
    const runDir = join(t.dir, 'run');
    mkdirSync(mp);
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'list.js'), LISTER);
    const logFile = join(t.dir, 'log');
    writeFileSync(logFile, '');
    const r = await bwrapSandbox.run(
      {
        buildroot: { kind: 'host' },
        tree: { mount: store.readMount(rec, mp), writable: false },
        inputs: [],
        runDir,
        argv: ['/bin/sh', '-c', `set -eu\n${script}`],
        env: { SOURCE_DATE_EPOCH: '0', TREE: SANDBOX_TREE, RUN: SANDBOX_RUN },
      },
      { logFile },
    );
    const log = readFileSync(logFile, 'utf8');
    assert.equal(r.exitCode, 0, log);
    return log;
  } finally {
    t.cleanup();
  }
}

/** The listing of a committed tree as a sandbox sees it through readMount. */
async function listInside(store: Store, rec: TreeRecord): Promise<Listing> {
  return JSON.parse(await inside(store, rec, `node "$RUN/list.js" "$TREE"`)) as Listing;
}

/** The listing of a host directory (an export). */
function listHost(dir: string): Listing {
  return JSON.parse(execFileSync('node', ['-e', LISTER, dir], { encoding: 'utf8' })) as Listing;
}

/** Exports the whole tree the way `imgmake build` does (cp -a in the sandbox); returns its path. */
async function exportAll(store: Store, rec: TreeRecord, outDir: string): Promise<string> {
  const loc = { file: 'imgmake.yaml', line: 1, col: 1, endLine: 1, endCol: 1 };
  const r = await exportTarget({
    target: { name: 'all', loc, pipeline: 'p' as PipelineName, export: [] },
    from: { tree: rec },
    outDir,
    store,
    sandbox: bwrapSandbox,
  });
  if (!r.ok) assert.fail(r.message);
  return r.path;
}

/** Both readings of a tree: through readMount in a sandbox, and from an export. */
async function readBoth(store: Store, rec: TreeRecord, dir: string): Promise<{ inside: Listing; exported: Listing; out: string }> {
  const out = await exportAll(store, rec, join(dir, 'out'));
  return { inside: await listInside(store, rec), exported: listHost(out), out };
}

/** `getfattr -d` of one path, every namespace, hex values: { name: '0x…' }. */
function parseXattrs(text: string): Record<string, string> {
  const x: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z]+\.[^=]+)=(.*)$/.exec(line.trim());
    if (m) x[m[1]!] = m[2]!;
  }
  return x;
}
function xattrsHost(p: string): Record<string, string> {
  return parseXattrs(execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p], { encoding: 'utf8' }));
}

const layerDir = (store: Store, k: CacheKey): string => join(store.root, 'layers', k);

function pick<K extends keyof Entry>(l: Listing, paths: string[], fields: K[]): Record<string, Pick<Entry, K>> {
  const o: Record<string, Pick<Entry, K>> = {};
  for (const p of paths) {
    const e = l[p];
    assert.ok(e, `${p} is missing`);
    o[p] = Object.fromEntries(fields.map((f) => [f, e[f]])) as Pick<Entry, K>;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// What a tree keeps

test('owners and modes (setuid, setgid, sticky) survive three layers, chown/chmod copy-ups, readMount and export', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir -p usr/bin srv
       echo su > usr/bin/su; chown 1234:5678 usr/bin/su; chmod 4755 usr/bin/su
       echo w > usr/bin/wall; chmod 2711 usr/bin/wall
       head -c 65536 /dev/urandom > srv/plain; chmod 0640 srv/plain`,
      // chown and chmod of files from layer 1: metadata-only changes, each a copy-up.
      `chown 1234:5678 srv/plain; chmod 0604 srv/plain
       mkdir -m 1777 tmp; chown 0:5678 tmp
       chmod 6750 usr/bin/wall; chown -h 0:5678 usr/bin/wall; chmod 6750 usr/bin/wall`,
      `echo x > tmp/x; chown 42:43 tmp/x; chmod 0400 tmp/x; mkdir -m 0700 srv/private`,
    ]);
    const top = trees[2]!;
    const want = {
      'usr/bin/su': { uid: 1234, gid: 5678, mode: 0o4755 },
      'usr/bin/wall': { uid: 0, gid: 5678, mode: 0o6750 },
      'srv/plain': { uid: 1234, gid: 5678, mode: 0o604 },
      tmp: { uid: 0, gid: 5678, mode: 0o1777 },
      'tmp/x': { uid: 42, gid: 43, mode: 0o400 },
      'srv/private': { uid: 0, gid: 0, mode: 0o700 },
    };
    const paths = Object.keys(want);
    const { inside: i, exported: e } = await readBoth(store, top, dir);
    assert.deepEqual(pick(i, paths, ['uid', 'gid', 'mode']), want);
    assert.deepEqual(pick(e, paths, ['uid', 'gid', 'mode']), want);
    // With metacopy=off a metadata change copies the whole file up: layer 2 pays for its data.
    const l2 = listHost(layerDir(store, trees[1]!.key));
    assert.equal(l2['srv/plain']?.size, 65536);
    assert.ok(l2['srv/plain']!.blocks * 512 >= 65536, 'chmod/chown copied the data up');
    // Layer 1 still has the originals: the copy-ups went to layer 2.
    const l1 = listHost(layerDir(store, trees[0]!.key));
    assert.deepEqual(pick(l1, ['srv/plain', 'usr/bin/wall'], ['uid', 'gid', 'mode']), {
      'srv/plain': { uid: 0, gid: 0, mode: 0o640 },
      'usr/bin/wall': { uid: 0, gid: 0, mode: 0o2711 },
    });
  });
});

test('symlinks keep their exact targets (absolute, relative, dangling, escaping, long) and owners; a replaced link shows the new target', T, async () => {
  await withStore(async (store, dir) => {
    const long = `${'d'.repeat(200)}/${'e'.repeat(200)}`;
    const trees = await build(store, [
      `mkdir -p etc lib
       ln -s /usr/share/zoneinfo/Etc/UTC etc/localtime
       ln -s ../lib lib64
       ln -s does/not/exist dangling
       ln -s ../../../../etc/shadow escape
       ln -s ${long} long
       ln -s old-target replaced
       ln -s lib dirlink`,
      `chown -h 1234:5678 etc/localtime; rm replaced; ln -s new-target replaced`,
      `ln -s ./lib/./ dotted`,
    ]);
    const want: Record<string, string> = {
      'etc/localtime': '/usr/share/zoneinfo/Etc/UTC',
      lib64: '../lib',
      dangling: 'does/not/exist',
      escape: '../../../../etc/shadow',
      long,
      replaced: 'new-target',
      dirlink: 'lib',
      dotted: './lib/./',
    };
    const { inside: i, exported: e } = await readBoth(store, trees[2]!, dir);
    for (const l of [i, e]) {
      for (const [p, target] of Object.entries(want)) {
        assert.equal(l[p]?.type, 'l', p);
        assert.equal(l[p]?.link, target, p);
      }
      assert.deepEqual(pick(l, ['etc/localtime'], ['uid', 'gid']), { 'etc/localtime': { uid: 1234, gid: 5678 } });
    }
  });
});

test('hardlinks within one layer stay one inode through later layers, readMount and export', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir -p a b; echo shared > a/one; ln a/one a/two; ln a/one b/three; echo solo > solo`,
      `echo later > later`,
      `echo last > last`,
    ]);
    const { inside: i, exported: e } = await readBoth(store, trees[2]!, dir);
    for (const [name, l] of [['inside', i], ['export', e]] as const) {
      const [one, two, three] = [l['a/one']!, l['a/two']!, l['b/three']!];
      assert.equal(one.nlink, 3, `${name}: nlink`);
      assert.equal(two.ino, one.ino, `${name}: a/two is a/one`);
      assert.equal(three.ino, one.ino, `${name}: b/three is a/one`);
      assert.equal(l['solo']!.nlink, 1);
    }
  });
});

test('a hardlink made in a later stage to an earlier layer\'s file: overlay copies the file up, both names share the copy', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir -p bin; head -c 65536 /dev/urandom > bin/tool; echo pair > p1; ln p1 p2`,
      // link(2) on a lower file copies it up first (index=off: no inode index to share).
      `ln bin/tool bin/tool-alias`,
      // Writing through one name of a pair from an earlier layer copies up only that name.
      `echo more >> p1`,
    ]);
    const [l1, l2] = [trees[0]!, trees[1]!];
    const before = snapshot(layerDir(store, l1.key));

    const layer2 = listHost(layerDir(store, l2.key));
    assert.equal(layer2['bin/tool']?.type, 'f', 'the linked file was copied up into layer 2');
    assert.equal(layer2['bin/tool']?.size, 65536);
    assert.equal(layer2['bin/tool-alias']?.ino, layer2['bin/tool']?.ino);
    assert.equal(layer2['bin/tool']?.nlink, 2);
    assert.ok(l2.bytes >= 65536, `layer 2 pays for the copy (${l2.bytes} bytes)`);

    const { inside: i, exported: e } = await readBoth(store, trees[2]!, dir);
    for (const [name, l] of [['inside', i], ['export', e]] as const) {
      assert.equal(l['bin/tool-alias']!.ino, l['bin/tool']!.ino, `${name}: one inode`);
      assert.equal(l['bin/tool']!.nlink, 2, name);
      assert.equal(l['bin/tool-alias']!.sha, l['bin/tool']!.sha);
      // The pair p1/p2 was broken by the append: p1 is a new copy, p2 still the old inode.
      assert.notEqual(l['p1']!.ino, l['p2']!.ino, `${name}: the write broke the link`);
      assert.notEqual(l['p1']!.sha, l['p2']!.sha, `${name}: p2 does not see the write`);
    }
    assert.equal(readFileSync(join(dir, 'out/all/p1'), 'utf8'), 'pair\nmore\n');
    assert.equal(readFileSync(join(dir, 'out/all/p2'), 'utf8'), 'pair\n');
    assert.deepEqual(snapshot(layerDir(store, l1.key)), before, 'layer 1 untouched');
  });
});

test('device nodes and fifos keep type and exact major/minor across layers and copy-ups', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir dev; mknod dev/null c 1 3; mknod dev/loop0 b 7 0; mknod dev/sda1 b 8 1; mkfifo dev/fifo`,
      // A metadata change on a lower device node copies it up (a new mknod in layer 2).
      `chmod 0666 dev/null; chown 0:5678 dev/sda1; chmod 0660 dev/sda1
       mknod dev/wide c 511 300000; mknod dev/wideb b 4095 1048575`,
      `touch marker`,
    ]);
    const want = {
      'dev/null': { type: 'c', major: 1, minor: 3, mode: 0o666 },
      'dev/loop0': { type: 'b', major: 7, minor: 0, mode: 0o644 },
      'dev/sda1': { type: 'b', major: 8, minor: 1, mode: 0o660 },
      'dev/fifo': { type: 'p', major: 0, minor: 0, mode: 0o644 },
      'dev/wide': { type: 'c', major: 511, minor: 300000, mode: 0o644 },
      'dev/wideb': { type: 'b', major: 4095, minor: 1048575, mode: 0o644 },
    };
    const paths = Object.keys(want);
    const { inside: i, exported: e } = await readBoth(store, trees[2]!, dir);
    assert.deepEqual(pick(i, paths, ['type', 'major', 'minor', 'mode']), want);
    assert.deepEqual(pick(e, paths, ['type', 'major', 'minor', 'mode']), want);
    assert.equal(e['dev/sda1']!.gid, 5678);
    // Cross-check the decoding with stat(1)'s hex major:minor, read through the overlay.
    const hex = await inside(store, trees[2]!, `stat -c '%n %F %t:%T' dev/null dev/sda1 dev/wide dev/wideb`);
    assert.equal(
      hex,
      'dev/null character special file 1:3\ndev/sda1 block special file 8:1\n' +
        `dev/wide character special file 1ff:${(300000).toString(16)}\ndev/wideb block special file fff:fffff\n`,
    );
  });
});

test('xattrs (user.*, security.capability via setcap) survive copy-ups, readMount and export; overlay\'s own never leak', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir -p usr/bin etc; cp /usr/bin/true usr/bin/ping
       setfattr -n user.note -v hello usr/bin/ping
       setfattr -n user.bin -v 0x00ff10 usr/bin/ping
       setfattr -n user.dir -v onadir etc`,
      // setcap on a lower file: copy-up must carry user.* over, then add the capability.
      `setcap cap_net_raw+ep usr/bin/ping; echo x > etc/new`,
      // A later xattr on a file from layer 2: copy-up again keeps the capability.
      `setfattr -n user.late -v 1 usr/bin/ping; rm -r etc; mkdir etc; setfattr -n user.fresh -v 2 etc`,
    ]);
    const top = trees[2]!;
    const viaGetfattr = await inside(store, top, `getfattr -h -d -m - -e hex usr/bin/ping etc; getcap usr/bin/ping`);
    const out = await exportAll(store, top, join(dir, 'out'));
    const ping = xattrsHost(join(out, 'usr/bin/ping'));
    assert.equal(ping['user.note'], '0x68656c6c6f');
    assert.equal(ping['user.bin'], '0x00ff10');
    assert.equal(ping['user.late'], '0x31');
    assert.ok(ping['security.capability'], 'the capability is exported');
    assert.match(execFileSync('getcap', [join(out, 'usr/bin/ping')], { encoding: 'utf8' }), /cap_net_raw[=+]ep/);
    // The recreated etc is a new (opaque) directory: the old user.dir is gone, the new one there.
    assert.deepEqual(xattrsHost(join(out, 'etc')), { 'user.fresh': '0x32' });
    // Inside the overlay: the same names and values, and getcap agrees.
    assert.match(viaGetfattr, /user\.note=0x68656c6c6f/);
    assert.match(viaGetfattr, /user\.late=0x31/);
    assert.match(viaGetfattr, /security\.capability=0x/);
    assert.match(viaGetfattr, /usr\/bin\/ping cap_net_raw[=+]ep/);
    assert.doesNotMatch(viaGetfattr, /user\.dir/);
    // Overlay's bookkeeping (trusted.overlay.opaque on the recreated etc) stays in the layer.
    assert.doesNotMatch(viaGetfattr, /overlay/);
    for (const p of ['.', 'etc', 'usr', 'usr/bin', 'usr/bin/ping']) {
      assert.ok(!Object.keys(xattrsHost(join(out, p))).some((n) => n.startsWith('trusted.')), p);
    }
    assert.equal(xattrsHost(join(layerDir(store, top.key), 'etc'))['trusted.overlay.opaque'], '0x79', 'layer 3 marks etc opaque');
  });
});

test('a 1 GiB sparse file with 4 KiB of data stays sparse in each layer, after a copy-up (holes skipped, data in 1 MiB chunks) and after export', T, async () => {
  await withStore(async (store, dir) => {
    const GiB = 1024 ** 3;
    const trees = await build(store, [
      `truncate -s 1G disk.raw; printf 'MIDDLE' | dd of=disk.raw bs=4096 seek=131072 conv=notrunc status=none`,
      // Writing 6 bytes at offset 0 copies the whole file up: the copy must skip the holes.
      `printf 'HEAD!!' | dd of=disk.raw conv=notrunc status=none`,
      `echo other > other`,
    ]);
    const small = 64 * 1024;
    assert.ok(trees[0]!.bytes < small, `layer 1 record says ${trees[0]!.bytes} bytes`);
    assert.ok(trees[2]!.bytes < small, `layer 3 record says ${trees[2]!.bytes} bytes`);
    // Copy-up skips holes (SEEK_DATA) but copies each data run in 1 MiB chunks
    // (OVL_COPY_UP_CHUNK_SIZE): measured 1 MiB + 4 KiB here for 4 KiB + 6 bytes of data.
    const l2 = listHost(layerDir(store, trees[1]!.key));
    assert.equal(l2['disk.raw']!.size, GiB, 'copied up into layer 2');
    const l2Bytes = l2['disk.raw']!.blocks * 512;
    assert.ok(l2Bytes <= 1024 * 1024 + small, `copy-up kept the holes (${l2Bytes} bytes)`);
    assert.equal(trees[1]!.bytes >= l2Bytes, true, 'the record counts the layer');
    assert.ok(trees[1]!.bytes <= l2Bytes + small);

    const { inside: i, exported: e, out } = await readBoth(store, trees[2]!, dir);
    for (const [name, l] of [['inside', i], ['export', e]] as const) {
      assert.equal(l['disk.raw']!.size, GiB, name);
      // Through the overlay the file is layer 2's copy; the export's cp -a finds the holes.
      assert.ok(l['disk.raw']!.blocks * 512 <= 1024 * 1024 + small, `${name}: ${l['disk.raw']!.blocks * 512} bytes allocated`);
    }
    const du = Number(execFileSync('du', ['-s', '-B1', join(out, 'disk.raw')], { encoding: 'utf8' }).split('\t')[0]);
    assert.ok(du <= 1024 * 1024 + small, `du of the export says ${du}`);
    const read = (off: number): string => {
      const fd = openSync(join(out, 'disk.raw'), 'r');
      try {
        const b = Buffer.alloc(6);
        readSync(fd, b, 0, 6, off);
        return b.toString('latin1');
      } finally {
        closeSync(fd);
      }
    };
    assert.equal(read(0), 'HEAD!!');
    assert.equal(read(512 * 1024 * 1024), 'MIDDLE');
    assert.equal(read(GiB - 6), '\0'.repeat(6));
  });
});

test('deletions in later stages (whiteouts, opaque dirs) hide the earlier layer\'s files; the earlier layer is untouched', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir -p d e/f/g o; echo a > a; echo keep > keep; echo x > d/x; echo y > d/y; echo g > e/f/g/h; echo old > o/old`,
      `rm a d/x; rm -r e; rm -rf o; mkdir o; echo new > o/new`,
      `mkdir e; echo again > e/again; echo back > a`,
    ]);
    const before = snapshot(layerDir(store, trees[0]!.key));
    // Layer 2 holds the whiteouts (character devices 0:0) and an opaque o/.
    const l2 = listHost(layerDir(store, trees[1]!.key));
    for (const p of ['a', 'd/x', 'e']) assert.deepEqual(pick(l2, [p], ['type', 'major', 'minor'])[p], { type: 'c', major: 0, minor: 0 }, p);
    assert.equal(xattrsHost(join(layerDir(store, trees[1]!.key), 'o'))['trusted.overlay.opaque'], '0x79');

    const want = ['.', 'a', 'd', 'd/y', 'e', 'e/again', 'keep', 'o', 'o/new'];
    const { inside: i, exported: e, out } = await readBoth(store, trees[2]!, dir);
    assert.deepEqual(Object.keys(i).sort(), want);
    assert.deepEqual(Object.keys(e).sort(), want);
    assert.equal(readFileSync(join(out, 'a'), 'utf8'), 'back\n');
    // The middle tree, read on its own, has a and e gone.
    assert.deepEqual(Object.keys(await listInside(store, trees[1]!)).sort(), ['.', 'd', 'd/y', 'keep', 'o', 'o/new']);
    assert.deepEqual(snapshot(layerDir(store, trees[0]!.key)), before);
  });
});

test('a directory renamed in a later stage: rename(2) gets EXDEV (redirect_dir=off), mv copies it, and everything in it survives', T, async () => {
  await withStore(async (store, dir) => {
    const trees = await build(store, [
      `mkdir -p old/sub; echo f > old/sub/file; ln old/sub/file old/hard; ln -s sub/file old/link
       chown 1234:5678 old/sub/file; chmod 4750 old/sub/file; setfattr -n user.k -v v old/sub/file
       mknod old/null c 1 3; mkdir same; echo s > same/s`,
      // rename(2) itself (perl's rename is the bare syscall) fails; mv falls back to copy + unlink.
      `if perl -e 'rename("old", "new") or exit 1'; then echo renamed; exit 1; fi
       perl -e 'rename("old", "new") or die "$!\\n"' 2> errno || true
       mv old new`,
      `echo more > new/sub/more`,
    ]);
    const l2 = listHost(layerDir(store, trees[1]!.key));
    assert.equal(readFileSync(join(layerDir(store, trees[1]!.key), 'errno'), 'utf8'), 'Invalid cross-device link\n');
    assert.equal(l2['old']?.type, 'c', 'old is a whiteout in layer 2');
    assert.equal(l2['new/sub/file']?.type, 'f', 'the whole directory was copied into layer 2');

    const { inside: i, exported: e, out } = await readBoth(store, trees[2]!, dir);
    for (const [name, l] of [['inside', i], ['export', e]] as const) {
      assert.equal(l['old'], undefined, name);
      assert.deepEqual(pick(l, ['new/sub/file'], ['uid', 'gid', 'mode', 'nlink']), { 'new/sub/file': { uid: 1234, gid: 5678, mode: 0o4750, nlink: 2 } }, name);
      assert.equal(l['new/hard']!.ino, l['new/sub/file']!.ino, `${name}: mv kept the hardlink`);
      assert.equal(l['new/link']!.link, 'sub/file');
      assert.deepEqual(pick(l, ['new/null'], ['type', 'major', 'minor'])['new/null'], { type: 'c', major: 1, minor: 3 });
      assert.equal(l['new/sub/more']!.type, 'f');
    }
    assert.equal(xattrsHost(join(out, 'new/sub/file'))['user.k'], '0x76');
  });
});

// ---------------------------------------------------------------------------------------------
// Commit, get and open

test('commit is atomic and idempotent: a second commit of the same key keeps the first layer and discards its own work', T, async () => {
  await withStore(async (store) => {
    const base = await stage(store, undefined, `echo base > base`);
    const key = newKey('same');
    assert.equal(await store.get(key), undefined);
    assert.equal(existsSync(layerDir(store, key)), false);

    const first = await stage(store, base, `echo one > which`, key);
    assert.deepEqual(first.layers, [key, base.key]);
    const second = await stage(store, base, `echo two > which`, key);
    assert.equal(readFileSync(join(layerDir(store, key), 'which'), 'utf8'), 'one\n', 'the first commit\'s layer is kept');
    const got = await store.get(key);
    // The layer's digest is written into the entry a moment after the commit: compare without it.
    const bare = (r: TreeRecord | undefined) => r && { ...r, digest: undefined };
    assert.deepEqual(bare(got), bare(first), 'the first commit\'s record is kept too');
    assert.deepEqual(bare(second), bare(first));
    assert.deepEqual(readdirSync(join(store.root, 'work')), [], 'both work dirs are gone');
    assert.equal(await inside(store, got!, 'cat which base'), 'one\nbase\n');

    // Two commits of one key racing: both resolve, one layer wins whole.
    const race = newKey('race');
    const ws = await Promise.all([store.begin(base), store.begin(base)]);
    writeFileSync(join(ws[0]!.upper, 'f'), 'a');
    writeFileSync(join(ws[1]!.upper, 'f'), 'b');
    const recs = await Promise.all(ws.map((w) => store.commit(w, { key: race, node: NODE, ms: 1 })));
    assert.deepEqual(recs.map((r) => r.layers), [[race, base.key], [race, base.key]]);
    assert.match(readFileSync(join(layerDir(store, race), 'f'), 'utf8'), /^[ab]$/);
    assert.deepEqual(readdirSync(join(layerDir(store, race))), ['f']);
    assert.deepEqual(readdirSync(join(store.root, 'work')), []);

    // A layer whose index entry was lost (killed between rename and index write), or one planted
    // under the key by anyone: no record vouches for it, so it is never adopted; ours replaces it.
    const lost = newKey('lost');
    const w = await store.begin(base);
    writeFileSync(join(w.upper, 'f'), 'planted');
    renameSync(w.upper, layerDir(store, lost));
    assert.equal(await store.get(lost), undefined, 'no entry, no tree');
    const again = await stage(store, base, `echo redo > f`, lost);
    assert.equal(readFileSync(join(layerDir(store, again.key), 'f'), 'utf8'), 'redo\n', 'the commit keeps what its stage wrote');
    assert.deepEqual(readdirSync(layerDir(store, lost)), ['f']);
    assert.equal((await store.digested(lost))?.digest?.startsWith('sha256:'), true);
    await store.discard(w);

    // A layer whose record exists but whose content was changed under it: not adopted either.
    writeFileSync(join(layerDir(store, key), 'which'), 'tampered\n');
    const third = await stage(store, base, `echo three > which`, key);
    assert.equal(readFileSync(join(layerDir(store, key), 'which'), 'utf8'), 'three\n');
    assert.notEqual(third.createdAt, first.createdAt, 'a new record for the new layer');
  });
});

test('importTree is all or nothing: a failing layer removes the layers this import put in place; layers vouched for stay, unvouched ones are replaced', T, async () => {
  await withStore(async (store) => {
    const [own, mid, low] = [newKey('own'), newKey('mid'), newKey('low')];
    const rec: TreeRecord = { key: own, node: NODE, layers: [own, mid, low], createdAt: new Date().toISOString(), ms: 1, bytes: 0 };
    // `low` was planted (no record vouches for it): the import replaces it.
    mkdirSync(layerDir(store, low));
    writeFileSync(join(layerDir(store, low), 'who'), 'planted');
    const filled: string[] = [];
    await assert.rejects(
      store.importTree(rec, async (layer, dir) => {
        filled.push(layer);
        writeFileSync(join(dir, 'who'), layer);
        if (layer === low) throw new Error('blob of low is corrupt');
      }),
      /blob of low is corrupt/,
    );
    assert.deepEqual(filled, [own, mid, low], 'the planted layer was not taken as it is');
    for (const k of [own, mid]) assert.equal(existsSync(layerDir(store, k)), false, 'nothing of a failed import is kept');
    assert.equal(readFileSync(join(layerDir(store, low), 'who'), 'utf8'), 'planted', 'left as it was: still vouched for by nothing');
    assert.equal(await store.get(own), undefined);
    assert.deepEqual(readdirSync(join(store.root, 'work')), []);

    // A layer a committed tree vouches for is kept as it is, and survives a failing import.
    const base = await stage(store, undefined, 'echo committed > who');
    const over = newKey('over');
    const rec2: TreeRecord = { key: over, node: NODE, layers: [over, base.key], createdAt: new Date().toISOString(), ms: 1, bytes: 0 };
    const asked: string[] = [];
    await assert.rejects(
      store.importTree(rec2, async (layer) => {
        asked.push(layer);
        throw new Error('cut');
      }),
    );
    assert.deepEqual(asked, [over], 'the committed layer is not fetched');
    assert.equal(readFileSync(join(layerDir(store, base.key), 'who'), 'utf8'), 'committed\n');

    // A whole import: the layers below get a layer record with the declared digest.
    const ok = await store.importTree(rec, async (layer, dir) => writeFileSync(join(dir, 'who'), layer), { digests: new Map([[mid, `sha256:${'a'.repeat(64)}`]]) });
    assert.deepEqual(ok.layers, [own, mid, low]);
    assert.equal(await store.layerDigest(mid), `sha256:${'a'.repeat(64)}`);
    assert.equal(await store.layerDigest(low), undefined, 'declared by nobody');
    assert.equal(readFileSync(join(layerDir(store, low), 'who'), 'utf8'), low);
  });
});

test('get: a key whose layer (or an ancestor\'s layer) is missing is not cached', T, async () => {
  await withStore(async (store) => {
    const [a, b] = await build(store, ['echo a > a', 'echo b > b']);
    assert.ok(await store.get(b!.key));
    rmSync(layerDir(store, b!.key), { recursive: true });
    assert.equal(await store.get(b!.key), undefined);
    assert.ok(await store.get(a!.key));
    rmSync(layerDir(store, a!.key), { recursive: true });
    assert.equal(await store.get(a!.key), undefined);
    const c = await stage(store, undefined, 'echo c > c');
    const d = await stage(store, c, 'echo d > d');
    rmSync(layerDir(store, c.key), { recursive: true });
    assert.equal(await store.get(d.key), undefined, 'a tree over a missing layer is not a tree');
  });
});

test('opening a store removes work dirs of dead pids (with the layer a killed commit placed but did not record), of earlier boots and unparseable names; keeps live ones', T, async () => {
  const t = tempDir('imgmake-store-test-');
  try {
    const root = join(t.dir, 'cache');
    const store = await openLocalStore(root);
    const kept = await stage(store, undefined, 'echo x > x');
    // A live work dir, as begin() names it: <pid>-<boot>.<pidns>-<random>.
    const live = await store.begin(undefined);
    const [, where] = basename(live.dir).split('-');
    assert.match(where!, /^[0-9a-f]{8}\.\d+$/);
    const child = spawn('/bin/true');
    await once(child, 'exit');
    const work = join(root, 'work');
    const dead = join(work, `${child.pid}-${where}-deadbeef0000`);
    const earlierBoot = join(work, `${process.pid}-00000000.${where!.split('.')[1]}-0123456789ab`);
    const legacyDead = join(work, `${child.pid}-0123456789ab`);
    const junk = join(work, 'not-a-pid');
    // What a killed stage leaves: upper with content, overlay's mode-0 work/work, scratch.
    for (const d of [dead, earlierBoot, legacyDead, live.dir]) {
      mkdirSync(join(d, 'upper/etc'), { recursive: true });
      writeFileSync(join(d, 'upper/etc/f'), 'x');
      mkdirSync(join(d, 'work/work'), { recursive: true, mode: 0 });
      mkdirSync(join(d, 'scratch'), { recursive: true });
    }
    mkdirSync(junk);
    // The dead process was committing: its note names a layer it placed whose entry it never
    // wrote (removed), and the committed tree's key (vouched for: kept).
    const unvouched = createHash('sha256').update('killed between rename and entry').digest('hex');
    mkdirSync(join(root, 'layers', unvouched, 'etc'), { recursive: true });
    writeFileSync(join(root, 'layers', unvouched, 'etc', 'f'), 'x');
    for (const note of [unvouched, kept.key, '../../etc']) writeFileSync(join(dead, `committing.${note.replaceAll('/', '_')}`), '');
    await openLocalStore(root);
    assert.deepEqual(readdirSync(work), [basename(live.dir)], 'only the live pid\'s work dir is left');
    assert.equal(existsSync(join(live.dir, 'upper/etc/f')), true);
    assert.equal(existsSync(join(root, 'layers', unvouched)), false, 'the layer a killed commit placed without its entry is gone');
    assert.ok(await store.get(kept.key), 'committed trees are not touched');
    await store.discard(live);
  } finally {
    t.cleanup();
  }
});

test('a build in another pid namespace (another container on the same cache) leaves a running build\'s work dir alone', T, async () => {
  await withStore(async (store) => {
    const w = await store.begin(undefined);
    writeFileSync(join(w.upper, 'f'), 'in progress');
    // Our pid means nothing in a new pid namespace: there, process.kill(ourPid, 0) fails.
    const local = new URL('../src/store/local.js', import.meta.url).pathname;
    const probe = `import(${JSON.stringify(local)}).then(async (m) => {
      let alive = true; try { process.kill(${process.pid}, 0) } catch { alive = false }
      const s = await m.openLocalStore(${JSON.stringify(store.root)});
      const w = await s.begin(undefined);
      console.log(JSON.stringify({ alive, dir: w.dir }));
    })`;
    const out = execFileSync('unshare', ['--pid', '--fork', process.execPath, '--input-type=module', '-e', probe], { encoding: 'utf8' });
    const other = JSON.parse(out) as { alive: boolean; dir: string };
    assert.equal(other.alive, false, 'the other namespace cannot see our pid');
    assert.equal(readFileSync(join(w.upper, 'f'), 'utf8'), 'in progress', 'our work dir survived its open');
    // And the reverse: its dir (its pid is dead by now) is in a namespace we cannot judge.
    await openLocalStore(store.root);
    assert.equal(existsSync(other.dir), true, 'a foreign namespace\'s dir is left for its own builds');
    const rec = await store.commit(w, { key: newKey(), node: NODE, ms: 1 });
    assert.equal(readFileSync(join(layerDir(store, rec.key), 'f'), 'utf8'), 'in progress');
  });
});

test(`layer limit: a stage runs on ${MAX_LAYERS - 1} layers, its ${MAX_LAYERS}-layer tree mounts read-only, and stages go on above it (over a squash, squash.ts)`, T, async () => {
  await withStore(async (store) => {
    // Layers made by hand (one file each) stand for MAX_LAYERS - 1 committed stages.
    const layers: CacheKey[] = [];
    for (let n = 0; n < MAX_LAYERS - 1; n++) {
      const k = newKey(`layer${n}`);
      mkdirSync(layerDir(store, k));
      writeFileSync(join(layerDir(store, k), `f${n}`), String(n));
      layers.unshift(k);
    }
    const deep: TreeRecord = { key: layers[0]!, node: NODE, layers, createdAt: new Date().toISOString(), ms: 0, bytes: 0 };
    const top = await stage(store, deep, `test -f f0; test -f f${MAX_LAYERS - 2}; echo top > top`);
    assert.equal(top.layers.length, MAX_LAYERS);
    assert.equal(await inside(store, top, `ls | wc -l`), `${MAX_LAYERS}\n`);
    const on = await stage(store, top, `test -f top; test -f f0; echo more > more`);
    assert.equal(on.layers.length, MAX_LAYERS + 1);
    assert.equal(await inside(store, on, `cat more top f0`), 'more\ntop\n0');
  });
});
