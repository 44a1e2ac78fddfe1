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
 *
 * The walk and the hashing run in a worker thread (digest-worker.ts), not on the build's event
 * loop: a digest of a 0.8 GB disk layer runs beside the next stages, and hashing on the main
 * thread, even in 20 ms slices, held up every await of the build meanwhile (a stage's commit
 * took 0.4 s instead of 10 ms: docs/bench.md). The worker starts with the first digest and does
 * not keep the process alive when idle.
 *
 * Its two helper programs (filefrag, getfattr) are started with node:child_process, loaded by
 * the first digest (a no-op build digests nothing: docs/bench.md, "Start-up").
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { compiledSrc } from '../package-root.js';

export interface LayerManifest {
  /** `sha256:<hex>` over the manifest. */
  digest: string;
  /** Bytes allocated (st_blocks × 512, hardlinks once): what `du` says. */
  bytes: number;
}

/** The manifest digest of the layer `dir`, computed in the digest worker. */
export function layerManifest(dir: string): Promise<LayerManifest> {
  return inWorker({ op: 'layer', path: dir }) as Promise<LayerManifest>;
}

/** What the worker runs: the walk, on the thread that calls it. */
export async function layerManifestHere(dir: string): Promise<LayerManifest> {
  // Synchronous calls, with a yield to the event loop every few milliseconds: a thread-pool
  // round trip per lstat/open/read/close made a 54k-entry layer 4–8× slower to digest.
  const h = createHash('sha256');
  const firstName = new Map<string, string>();
  let bytes = 0;
  const visit = async (rel: string): Promise<void> => {
    await pause();
    const p = rel ? join(dir, rel) : dir;
    const s = lstatSync(p, { bigint: true });
    const meta = [Number(s.mode & 0o7777n), Number(s.uid), Number(s.gid)];
    if (s.nlink > 1n && !s.isDirectory()) {
      const id = `${s.dev}:${s.ino}`;
      const first = firstName.get(id);
      if (first !== undefined) {
        h.update(`${JSON.stringify([rel, 'link', first])}\n`);
        return;
      }
      firstName.set(id, rel);
    }
    bytes += Number(s.blocks) * 512;
    let line: unknown[];
    if (s.isDirectory()) line = [rel, 'dir', ...meta];
    else if (s.isFile()) line = [rel, 'file', ...meta, Number(s.size), await hashFileHere(p, { size: Number(s.size), allocated: Number(s.blocks) * 512 })];
    else if (s.isSymbolicLink()) line = [rel, 'symlink', ...meta, readlinkSync(p, { encoding: 'buffer' }).toString('hex')];
    else line = [rel, s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : s.isFIFO() ? 'fifo' : 'socket', ...meta, Number(s.rdev)];
    h.update(`${JSON.stringify(line)}\n`);
    if (s.isDirectory()) for (const name of readdirSync(p).sort()) await visit(rel ? `${rel}/${name}` : name);
  };
  await visit('');
  h.update(await xattrs(dir));
  return { digest: `sha256:${h.digest('hex')}`, bytes };
}

/** How long a walk of a layer (digest, time clamp) may hold the event loop at a time: it runs while the build goes on. */
const YIELD_MS = 20;
let since = performance.now();

/** Yields to the event loop when a long walk has held it for YIELD_MS. */
export async function pause(): Promise<void> {
  if (performance.now() - since < YIELD_MS) return;
  await new Promise((go) => setImmediate(go));
  since = performance.now();
}
const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);
const buffer = Buffer.allocUnsafe(CHUNK);

/**
 * A file's content digest, hex: sha256 over its 1 MiB chunks, each a tag byte then either the
 * chunk's bytes (`D`) or nothing at all when every byte of a whole chunk is zero (`Z`). The
 * tags keep it injective. A sparse file (a disk image: 3 GiB, 2 MB of data) is not read where
 * it has holes: `filefrag` lists its data extents, and a whole chunk outside them is `Z`
 * without a read — what reading it would have said. Reading the holes of the four disk stages
 * of examples/debian-12 cost ~6 s per build. Computed in the digest worker.
 */
export function hashFile(path: string, stat?: { size: number; allocated: number }): Promise<string> {
  return inWorker({ op: 'file', path, ...(stat ? { stat } : {}) }) as Promise<string>;
}

/** What the worker runs for hashFile, on the thread that calls it. */
export async function hashFileHere(path: string, stat?: { size: number; allocated: number }): Promise<string> {
  const h = createHash('sha256');
  const data = stat && stat.allocated + CHUNK < stat.size ? await dataChunks(path) : undefined;
  await eachChunk(
    path,
    (chunk) => {
      if (chunk.length === CHUNK && chunk.equals(ZEROS)) h.update('Z');
      else h.update('D').update(chunk);
    },
    data && stat ? { data, size: stat.size } : undefined,
  );
  return h.digest('hex');
}

/** The indexes of the 1 MiB chunks that overlap a data extent (filefrag -e), or undefined if unknown. */
async function dataChunks(path: string): Promise<Set<number> | undefined> {
  const r = await output('filefrag', ['-e', path]);
  const bs = /blocks of (\d+) bytes/.exec(r.stdout)?.[1];
  if (r.exitCode !== 0 || !bs) return undefined;
  const chunks = new Set<number>();
  for (const m of r.stdout.matchAll(/^\s*\d+:\s*(\d+)\.\.\s*(\d+):/gm)) {
    const from = Number(m[1]) * Number(bs);
    const to = (Number(m[2]) + 1) * Number(bs);
    for (let c = Math.floor(from / CHUNK); c * CHUNK < to; c++) chunks.add(c);
  }
  return chunks;
}


/**
 * Calls `f` with each whole 1 MiB chunk of the file in order (the last one shorter). With
 * `sparse`, a whole chunk not in `data` is handed over as zeros without reading it.
 */
async function eachChunk(path: string, f: (chunk: Buffer) => void, sparse?: { data: Set<number>; size: number }): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    for (let c = 0; ; c++) {
      await pause();
      if (sparse && !sparse.data.has(c) && (c + 1) * CHUNK <= sparse.size) {
        f(ZEROS);
        continue;
      }
      let n = 0;
      while (n < CHUNK) {
        const got = readSync(fd, buffer, n, CHUNK - n, c * CHUNK + n);
        if (got === 0) break;
        n += got;
      }
      if (n > 0) f(buffer.subarray(0, n));
      if (n < CHUNK) return;
    }
  } finally {
    closeSync(fd);
  }
}

/** Every entry's extended attributes, one block per entry, sorted by path (readdir order is not stable). */
async function xattrs(dir: string): Promise<string> {
  const r = await output('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '.'], dir);
  const blocks = r.stdout.split(/\n\n+/).map((b) => b.trim()).filter((b) => b.startsWith('# file:'));
  return blocks.map((b) => b.split('\n').sort().join('\n')).sort().join('\n\n');
}

/** What `file args` (run in `cwd`) wrote to stdout, and how it exited; never throws for a failure. */
async function output(file: string, args: string[], cwd?: string): Promise<{ exitCode: number | undefined; stdout: string }> {
  const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...(cwd ? { cwd } : {}) }, (e, stdout) => {
      const code = e ? (typeof e.code === 'number' ? e.code : undefined) : 0;
      resolve({ exitCode: code, stdout });
    });
  });
}

/** A job for the digest worker, and what it answers. */
export type DigestJob = { op: 'layer'; path: string } | { op: 'file'; path: string; stat?: { size: number; allocated: number } };
export type DigestAnswer = { id: number; value: LayerManifest | string } | { id: number; error: { message: string; code?: string } };

let worker: Worker | undefined;
let nextId = 0;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

/**
 * Runs `job` in the digest worker (one per process, started on first use; its jobs interleave
 * there as they did on the main thread). An error comes back with its message and code; a
 * worker that dies fails what it had and the next job starts another.
 */
function inWorker(job: DigestJob): Promise<unknown> {
  // Made synchronously: two digests asked for in the same tick share one worker.
  if (!worker) {
    // Required here, not imported: a build that commits nothing (a no-op) never compiles Node's
    // worker_threads (issue 18, docs/bench.md "Start-up").
    const { Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
    const w = new Worker(join(compiledSrc, 'store', 'digest-worker.js'));
    w.on('message', (a: DigestAnswer) => {
      const p = waiting.get(a.id);
      if (!p) return;
      waiting.delete(a.id);
      if (waiting.size === 0) w.unref();
      if ('error' in a) p.reject(Object.assign(new Error(a.error.message), a.error.code ? { code: a.error.code } : {}));
      else p.resolve(a.value);
    });
    const lost = (e: Error): void => {
      if (worker === w) worker = undefined;
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    };
    w.on('error', lost);
    w.on('exit', (code) => lost(new Error(`the digest worker exited (${code})`)));
    worker = w;
  }
  const id = nextId++;
  const answer = new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
  worker.ref();
  worker.postMessage({ id, job });
  return answer;
}
