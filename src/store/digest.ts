/**
 * The manifest digest of a layer: what `imgmake cache verify` checks a committed layer against.
 *
 * A sha256 over one canonical line per entry, in sorted path order:
 *
 *     ["etc/motd", "file", mode, uid, gid, size, "<content digest: hashFile>"]
 *     ["etc/alias", "link", "etc/motd"]          a second name of a hardlink pair in this layer
 *     ["bin/sh", "symlink", mode, uid, gid, "<target, hex>"]
 *     ["dev/null", "char", mode, uid, gid, rdev]  (whiteouts are char 0:0)
 *     ["etc", "dir", mode, uid, gid]
 *
 * then every entry's extended attributes (`getfattr -R -d -m -`: security.capability, overlay's
 * opaque markers), sorted. Modes are permission bits with setuid/setgid/sticky. Left out on
 * purpose: timestamps (an export clamps them anyway), inode numbers (hardlinks are named by
 * their first path instead), and the layer's directory name: a layer copied to another
 * machine, by tar or a remote, has the same digest.
 *
 * The same walk counts the layer's bytes as `du` does, so commit walks the layer once.
 */
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface LayerManifest {
  /** `sha256:<hex>` over the manifest. */
  digest: string;
  /** Bytes allocated (st_blocks × 512, hardlinks once): what `du` says. */
  bytes: number;
}

/** Files hashed at once: reading overlaps hashing without flooding the disk. */
const HASH_CONCURRENCY = 8;

export async function layerManifest(dir: string): Promise<LayerManifest> {
  const lines: (string | Promise<string>)[] = [];
  const firstName = new Map<string, string>();
  let bytes = 0;
  const pending: Promise<unknown>[] = [];
  const limit = limiter(HASH_CONCURRENCY);

  const visit = async (rel: string): Promise<void> => {
    const p = rel ? join(dir, rel) : dir;
    const s = await lstat(p, { bigint: true });
    const meta = [Number(s.mode & 0o7777n), Number(s.uid), Number(s.gid)];
    if (s.nlink > 1n && !s.isDirectory()) {
      const id = `${s.dev}:${s.ino}`;
      const first = firstName.get(id);
      if (first !== undefined) {
        lines.push(JSON.stringify([rel, 'link', first]));
        return;
      }
      firstName.set(id, rel);
    }
    bytes += Number(s.blocks) * 512;
    if (s.isDirectory()) {
      lines.push(JSON.stringify([rel, 'dir', ...meta]));
      for (const name of (await readdir(p)).sort()) await visit(rel ? `${rel}/${name}` : name);
    } else if (s.isFile()) {
      const content = limit(() => hashFile(p));
      pending.push(content);
      lines.push(content.then((h) => JSON.stringify([rel, 'file', ...meta, Number(s.size), h])));
    } else if (s.isSymbolicLink()) {
      lines.push(JSON.stringify([rel, 'symlink', ...meta, (await readlink(p, { encoding: 'buffer' })).toString('hex')]));
    } else {
      const type = s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : s.isFIFO() ? 'fifo' : 'socket';
      lines.push(JSON.stringify([rel, type, ...meta, Number(s.rdev)]));
    }
  };
  await visit('');
  await Promise.all(pending);
  const h = createHash('sha256');
  for (const line of lines) h.update(`${await line}\n`);
  h.update(await xattrs(dir));
  return { digest: `sha256:${h.digest('hex')}`, bytes };
}

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);
/** Read buffers, reused: a fresh 1 MiB stream buffer per small file made hashing 10× slower. */
const buffers: Buffer[] = [];

/**
 * A file's content digest, hex: sha256 over its 1 MiB chunks, each a tag byte then either the
 * chunk's bytes (`D`) or nothing at all when every byte of a whole chunk is zero (`Z`). Holes
 * of a sparse disk image are read (the kernel hands out zeros quickly) but not hashed: a 3 GiB
 * disk with 760 MB of data costs a hash of 760 MB. The tags keep it injective.
 */
export async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  await eachChunk(path, (chunk) => {
    if (chunk.length === CHUNK && chunk.equals(ZEROS)) h.update('Z');
    else h.update('D').update(chunk);
  });
  return h.digest('hex');
}

/** The plain sha256 of a file, hex (what a `.deb` is named by). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await eachChunk(path, (chunk) => h.update(chunk));
  return h.digest('hex');
}

/** Calls `f` with each whole 1 MiB chunk of the file in order (the last one shorter). */
async function eachChunk(path: string, f: (chunk: Buffer) => void): Promise<void> {
  const buf = buffers.pop() ?? Buffer.allocUnsafe(CHUNK);
  const fh = await open(path, 'r');
  try {
    for (;;) {
      let n = 0;
      while (n < CHUNK) {
        const { bytesRead } = await fh.read(buf, n, CHUNK - n, null);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      if (n > 0) f(buf.subarray(0, n));
      if (n < CHUNK) return;
    }
  } finally {
    await fh.close();
    buffers.push(buf);
  }
}

/** Every entry's extended attributes, one block per entry, sorted by path (readdir order is not stable). */
async function xattrs(dir: string): Promise<string> {
  const r = await execa('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: dir, reject: false, stripFinalNewline: false });
  const blocks = r.stdout.split(/\n\n+/).map((b) => b.trim()).filter((b) => b.startsWith('# file:'));
  return blocks.map((b) => b.split('\n').sort().join('\n')).sort().join('\n\n');
}

function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (f) => {
    if (active >= n) await new Promise<void>((go) => queue.push(go));
    active++;
    try {
      return await f();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}
