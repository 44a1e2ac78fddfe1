/**
 * A layer as one blob: a deterministic tar of the layer directory, compressed with zstd.
 *
 *     packLayer(layerDir, blobFile)           → { sha256, size } of the compressed bytes, and
 *                                               `unpacked`: the bytes of the tar stream
 *     unpackLayer(blobFile, destDir, limit)   → the layer again, exactly; a tar stream longer
 *                                               than `limit` bytes is cut off and refused
 *
 * The tar is GNU tar's pax format with every extended attribute (`--xattrs-include='*'`, so
 * `trusted.overlay.opaque` on directories and `security.capability` on files travel),
 * numeric owners, names sorted, sparse files as sparse entries, hardlinks as links, and
 * overlayfs whiteouts as what they are on disk: character devices 0:0. Access and change
 * times are left out of the pax headers, so packing the same layer twice gives the same
 * bytes (the blob digest is then stable; nothing depends on it being so — an AC entry names
 * the digest it uploaded). Both run on the host (as root: owners, devices, `trusted.*`).
 *
 * The tar stream passes through this process on both sides, counted: packing learns its length
 * (an entry declares it, see types.ts), unpacking stops as soon as it exceeds what the entry
 * declared. The stream is exact — headers, pax records, padding, sparse maps, a hardlink's
 * header but not its data again — so the bound needs no allowance for tar's overhead, and
 * what lands on disk is at most about that much (sparse files as their data; plus per-entry
 * inode and directory blocks). A 17 KB blob that inflates to hundreds of MiB is stopped after
 * the bytes its entry declared.
 *
 * This module packs and unpacks files; it does not hash downloads or talk to a remote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';

/** zstd level for uploads: -3 packs a Debian layer several times faster than -9 for ~10 % more bytes. */
export const ZSTD_LEVEL = 3;

export interface BlobDigest {
  /** sha256 (hex) of the compressed bytes: the blob's name under cas/. */
  sha256: string;
  size: number;
}

/** A blob as packed: its digest and the length of the tar stream it decompresses to. */
export interface PackedBlob extends BlobDigest {
  unpacked: number;
}

/** Unpacking stopped because the tar stream ran past what its entry declared. */
export class UnpackLimitError extends Error {}

const TAR_COMMON = ['--xattrs', "--xattrs-include=*", '--numeric-owner'];

/** Packs `layerDir` into `blobFile` (tar | zstd) and returns the blob's digest and tar length. */
export async function packLayer(layerDir: string, blobFile: string, level = ZSTD_LEVEL): Promise<PackedBlob> {
  const tar = [
    '--create',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--sort=name',
    '--sparse',
    // Sparse format 1.0 names each sparse entry `GNUSparseFile.<pid>/…`: not deterministic. 0.0
    // keeps the real name (the map goes into the pax header instead).
    '--sparse-version=0.0',
    ...TAR_COMMON,
    '--directory',
    layerDir,
    '--file=-',
    '.',
  ];
  const unpacked = await counted(['tar', tar], ['zstd', ['-q', '-T0', `-${level}`, '-o', blobFile, '-f']]);
  return { ...(await digestOf(blobFile)), unpacked };
}

/**
 * Unpacks a blob made by `packLayer` into `destDir` (which must exist, empty). More than
 * `limit` bytes of tar stream (what the blob's entry declares) stops both processes and
 * throws an UnpackLimitError; what was unpacked until then is the caller's to remove.
 */
export async function unpackLayer(blobFile: string, destDir: string, limit = Infinity): Promise<void> {
  const tar = ['--extract', '--same-permissions', '--same-owner', ...TAR_COMMON, '--directory', destDir, '--file=-'];
  await counted(['zstd', ['-q', '-d', '-c', blobFile]], ['tar', tar], limit);
}

/**
 * Gives a packed blob a new digest without changing what it unpacks to: appends a zstd
 * skippable frame (magic 0x184D2A50, length, then `nonce`), which every zstd decoder skips.
 * For a layer whose blob is corrupt on a remote that never replaces a blob it holds (a
 * registry is content-addressed: a second upload of the same digest is a no-op).
 */
export async function reseal(blobFile: string, nonce: string): Promise<BlobDigest> {
  const data = Buffer.from(nonce);
  const frame = Buffer.alloc(8 + data.length);
  frame.writeUInt32LE(0x184d2a50, 0);
  frame.writeUInt32LE(data.length, 4);
  data.copy(frame, 8);
  await appendFile(blobFile, frame);
  return digestOf(blobFile);
}

/** sha256 and size of a file. */
export async function digestOf(file: string): Promise<BlobDigest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return { sha256: hash.digest('hex'), size: (await stat(file)).size };
}

type Command = [string, string[]];

/**
 * Runs `from | to` with the stream between them passing through here, counted; returns its
 * length. Past `limit` bytes both are killed and an UnpackLimitError thrown. Any other failure
 * rejects with the failing command's stderr.
 */
async function counted(from: Command, to: Command, limit = Infinity): Promise<number> {
  const a = spawn(from[0], from[1], { stdio: ['ignore', 'pipe', 'pipe'] });
  const b = spawn(to[0], to[1], { stdio: ['pipe', 'ignore', 'pipe'] });
  const ended = [exited(a, from[0]), exited(b, to[0])];
  let n = 0;
  let over = false;
  const count = new Transform({
    transform(chunk: Buffer, _enc, next) {
      n += chunk.length;
      if (n > limit) {
        over = true;
        next(new UnpackLimitError(`its tar stream is longer than the ${limit} bytes its entry declares: stopped after ${n} bytes`));
      } else next(null, chunk);
    },
  });
  const flowed = pipe(a.stdout!, count, b.stdin!).catch((e: unknown) => e as Error);
  const problem = await flowed;
  if (over) {
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    await Promise.allSettled(ended);
    throw problem!;
  }
  // A failed command says why in its stderr (a broken pipe on the other side says less).
  const results = await Promise.allSettled(ended);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
  // The side that failed first, not the one its end of the pipe then broke.
  if (failed.length) throw failed.find((e) => !/SIGPIPE/.test(e.message)) ?? failed[0];
  // Both exited 0: the consumer read what it needed and said so (tar: the whole archive, its
  // end marker included). The pipe into it may still report that it closed before our end of
  // it was flushed ("Premature close", EPIPE: the child's exit raced the last write's
  // completion; seen once in 60 layers unpacked back to back). Nothing was lost.
  if (problem && !closedPipe(problem)) throw problem;
  return n;
}

function closedPipe(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE';
}

/** Resolves when `p` exits 0; rejects with its stderr otherwise. */
function exited(p: ChildProcess, name: string): Promise<void> {
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  return new Promise((ok, ko) => {
    p.on('error', ko);
    p.on('close', (code, signal) => (code === 0 ? ok() : ko(new Error(`${name} failed (${signal ?? `exit ${code}`}): ${err.trim().slice(-500)}`))));
  });
}
