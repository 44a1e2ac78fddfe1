/**
 * blob.ts: a layer packed into a blob and unpacked again is the same layer — whiteouts, opaque
 * directories, hardlinks, symlinks, capabilities, sparse files, odd modes and owners — and
 * packing is deterministic; a resealed blob (a new digest for the same layer) unpacks the same;
 * a blob whose tar stream is longer than declared is stopped there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packLayer, reseal, unpackLayer, UnpackLimitError } from '../src/remote/blob.js';

const sh = (script: string, cwd: string): string => execFileSync('/bin/bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8' });

/** Everything a layer holds, as text: entries with type, mode, owner, size, blocks, mtime, device, link, inode group; xattrs; contents. */
export function snapshot(dir: string): string {
  const entries = sh(`find . -printf '%p %y %#m %U:%G %s %b %T@ %l\\n' | sort`, dir);
  // Hardlinks: which paths share an inode (the inode numbers themselves differ between copies).
  const links = sh(`find . -type f -links +1 -printf '%i %p\\n' | sort -k2 | awk '{ if (!($1 in first)) first[$1]=$2; print $2" -> "first[$1] }'`, dir);
  const devices = sh(`find . \\( -type c -o -type b \\) -exec stat -c '%n %t:%T' {} + | sort`, dir);
  const xattrs = sh(`getfattr -R -h -d -m - -e hex . 2>/dev/null | grep -v '^$' || true`, dir);
  const contents = sh(`find . -type f -exec sha256sum {} + | sort -k2`, dir);
  return [entries, links, devices, xattrs, contents].join('\n--\n');
}

export function makeOddLayer(dir: string): void {
  sh(
    `
    mkdir -p etc/opaque usr/bin var/lib
    echo hello > etc/motd
    chmod 0640 etc/motd; chown 1234:5678 etc/motd
    mknod etc/removed c 0 0                       # an overlayfs whiteout
    setfattr -n trusted.overlay.opaque -v y etc/opaque
    echo inside > etc/opaque/file
    echo linked > usr/bin/a; ln usr/bin/a usr/bin/b
    ln -s ../bin/a usr/bin/sym; ln -s /nowhere usr/bin/dangling
    cp /bin/true usr/bin/ping; setcap cap_net_raw+ep usr/bin/ping
    truncate -s 64M var/lib/sparse; printf data | dd of=var/lib/sparse bs=1 seek=$((32*1024*1024)) conv=notrunc status=none
    chmod 4755 usr/bin/ping; chmod 1777 var/lib; chmod 0700 etc/opaque
    chown 0:42 var/lib; chown -h 7:7 usr/bin/sym
    mkfifo var/lib/fifo
    touch -h -d @1000000000 usr/bin/sym; touch -d @315532800 etc/motd
    `,
    dir,
  );
}

/** A temporary directory with `layer/` (made by makeOddLayer) and an empty `back/`, removed after `fn`. */
async function withOddLayer(fn: (d: { root: string; layer: string; back: string }) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'imgmake-blob-'));
  try {
    const layer = join(root, 'layer');
    const back = join(root, 'back');
    mkdirSync(layer);
    mkdirSync(back);
    makeOddLayer(layer);
    await fn({ root, layer, back });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a layer round-trips through a blob exactly, and packing twice gives the same digest', () =>
  withOddLayer(async ({ root, layer, back }) => {
    const d1 = await packLayer(layer, join(root, 'a.tar.zst'));
    const d2 = await packLayer(layer, join(root, 'b.tar.zst'));
    assert.deepEqual(d1, d2, 'packing is deterministic');
    assert.ok(d1.size < 64 * 1024, `the sparse 64 MiB file costs nothing in the blob (${d1.size} bytes)`);
    await unpackLayer(join(root, 'a.tar.zst'), back);
    const before = snapshot(layer);
    assert.match(before, /trusted\.overlay\.opaque=0x79/);
    assert.match(before, /security\.capability=/);
    assert.match(before, /\.\/etc\/removed 0:0/);
    assert.equal(snapshot(back), before);
  }));

test('a damaged blob fails to unpack', () =>
  withOddLayer(async ({ root, layer, back }) => {
    await packLayer(layer, join(root, 'a.tar.zst'));
    sh('truncate -s 100 a.tar.zst', root);
    await assert.rejects(unpackLayer(join(root, 'a.tar.zst'), back));
  }));

test('a resealed blob has another digest and unpacks to the same layer', () =>
  withOddLayer(async ({ root, layer, back }) => {
    const file = join(root, 'a.tar.zst');
    const d1 = await packLayer(layer, file);
    const d2 = await reseal(file, 'imgmake-reupload 1');
    assert.notEqual(d2.sha256, d1.sha256);
    assert.equal(d2.size, d1.size + 8 + 'imgmake-reupload 1'.length);
    await unpackLayer(file, back);
    assert.equal(snapshot(back), snapshot(layer));
  }));

test('packing counts the tar stream; unpacking stops past a declared length, exact is enough', () =>
  withOddLayer(async ({ root, layer, back }) => {
    const file = join(root, 'a.tar.zst');
    const d = await packLayer(layer, file);
    assert.equal(d.unpacked, Number(sh(`zstd -q -d -c a.tar.zst | wc -c`, root).trim()), 'the length of the tar stream, headers and padding included');
    await unpackLayer(file, back, d.unpacked);
    assert.equal(snapshot(back), snapshot(layer), 'the exact length is enough (sparse files, hardlinks, xattrs)');

    // A bomb: 64 MiB of one byte, a few KB packed.
    const bomb = join(root, 'bomb');
    mkdirSync(bomb);
    sh(`head -c 64M /dev/zero | tr '\\0' a > bomb/a`, root);
    const b = await packLayer(bomb, join(root, 'bomb.tar.zst'));
    assert.ok(b.size < 64 * 1024 && b.unpacked > 64 * 1024 * 1024, JSON.stringify(b));
    const out = join(root, 'out');
    mkdirSync(out);
    await assert.rejects(unpackLayer(join(root, 'bomb.tar.zst'), out, 1 << 20), (e: Error) => e instanceof UnpackLimitError && /longer than the 1048576 bytes its entry declares/.test(e.message));
    const used = Number(sh('du -sb out | cut -f1', root).trim());
    assert.ok(used <= 2 << 20, `stopped after about the declared length: ${used} bytes unpacked`);
  }));
