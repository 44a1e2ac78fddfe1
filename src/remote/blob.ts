/**
 * A layer as one blob: a deterministic tar of the layer directory, compressed with zstd.
 *
 *     packLayer(layerDir, blobFile)   → { sha256, size } of the compressed bytes
 *     unpackLayer(blobFile, destDir)  → the layer again, exactly
 *
 * The tar is GNU tar's pax format with every extended attribute (`--xattrs-include='*'`, so
 * `trusted.overlay.opaque` on directories and `security.capability` on files travel),
 * numeric owners, names sorted, sparse files as sparse entries, hardlinks as links, and
 * overlayfs whiteouts as what they are on disk: character devices 0:0. Access and change
 * times are left out of the pax headers, so packing the same layer twice gives the same
 * bytes (the blob digest is then stable; nothing depends on it being so — an AC entry names
 * the digest it uploaded). Both run on the host (as root: owners, devices, `trusted.*`).
 *
 * This module packs and unpacks files; it does not hash downloads or talk to a remote.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, stat } from 'node:fs/promises';

/** zstd level for uploads: -3 packs a Debian layer several times faster than -9 for ~10 % more bytes. */
export const ZSTD_LEVEL = 3;

export interface BlobDigest {
  /** sha256 (hex) of the compressed bytes: the blob's name under cas/. */
  sha256: string;
  size: number;
}

const TAR_COMMON = ['--xattrs', "--xattrs-include=*", '--numeric-owner'];

/** Packs `layerDir` into `blobFile` (tar | zstd) and returns the blob's digest. */
export async function packLayer(layerDir: string, blobFile: string, level = ZSTD_LEVEL): Promise<BlobDigest> {
  const tar = [
    'tar',
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
  await pipeline(`${quote(tar)} | zstd -q -T0 -${level} -o ${quote([blobFile])} -f`);
  return digestOf(blobFile);
}

/** Unpacks a blob made by `packLayer` into `destDir` (which must exist, empty). */
export async function unpackLayer(blobFile: string, destDir: string): Promise<void> {
  const tar = ['tar', '--extract', '--same-permissions', '--same-owner', ...TAR_COMMON, '--directory', destDir, '--file=-'];
  await pipeline(`zstd -q -d -c ${quote([blobFile])} | ${quote(tar)}`);
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

function quote(args: string[]): string {
  return args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

/** Runs a shell pipeline; rejects with its stderr when any part of it fails. */
function pipeline(script: string): Promise<void> {
  return new Promise((ok, ko) => {
    const p = spawn('/bin/bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', ko);
    p.on('close', (code) => (code === 0 ? ok() : ko(new Error(`${script.split(' ')[0]} … failed (exit ${code}): ${err.trim().slice(-500)}`))));
  });
}
