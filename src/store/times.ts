/**
 * Clamping a layer's times at commit: what makes every committed tree reproducible, whatever
 * its rule did.
 *
 * A stage writes files at the wall-clock time (a rule that writes /etc/hostname, `files.copy`
 * from a pipeline, a directory that gained an entry, a whiteout); two builds of one key would
 * then commit two trees that differ in mtimes, and a remote cache shared by two runners would
 * hold either. So before a stage's upper directory becomes a layer, every time later than
 * SOURCE_DATE_EPOCH in it is set to SOURCE_DATE_EPOCH (earlier ones, such as a package's own
 * file times, are kept, as `tar --clamp-mtime` does). That is the mtime; atime goes along where
 * an mtime is set, but no filesystem keeps atimes still (relatime updates an old one on the next
 * read), so an atime is never part of a tree. ctime cannot be set and is not part of a tree
 * either (exports rewrite it where a format keeps it, see rules/disk.*).
 *
 * The same walk measures the layer (allocated bytes, hardlinks once: what `du` says), which
 * commit needed anyway, so clamping costs the `utimes` calls alone (docs/store.md).
 *
 * This module touches only the directory it is given; it does not know about keys or entries.
 */
import { lstatSync, lutimesSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pause } from './digest.js';

export interface Clamped {
  /** Bytes allocated below the directory (st_blocks × 512, hardlinks counted once). */
  bytes: number;
  /** Entries whose times were set back to the epoch. */
  clamped: number;
  /** Entries walked. */
  entries: number;
}

/**
 * Sets every mtime later than `epoch` (seconds) below `dir`, `dir` itself included, to `epoch`
 * (and that entry's atime, when later, too); symlinks themselves, never their targets. A directory's times are set after its
 * entries (setting a child's times does not touch its directory's, but this keeps the order
 * obviously right). Synchronous calls with a yield every 20 ms, like the layer digest: a
 * thread-pool round trip per lstat made such walks several times slower.
 */
export async function clampTimes(dir: string, epoch: number): Promise<Clamped> {
  const seen = new Set<string>();
  const r: Clamped = { bytes: 0, clamped: 0, entries: 0 };
  const limit = BigInt(epoch) * 1_000_000_000n;
  const visit = async (p: string): Promise<void> => {
    await pause();
    const s = lstatSync(p, { bigint: true });
    r.entries++;
    let counted = true;
    if (s.nlink > 1n && !s.isDirectory()) {
      const id = `${s.dev}:${s.ino}`;
      counted = !seen.has(id);
      seen.add(id);
    }
    if (counted) r.bytes += Number(s.blocks) * 512;
    if (s.isDirectory()) for (const name of readdirSync(p)) await visit(join(p, name));
    if (s.mtimeNs > limit) {
      lutimesSync(p, s.atimeNs > limit ? epoch : Number(s.atimeNs) / 1e9, epoch);
      r.clamped++;
    }
  };
  await visit(dir);
  return r;
}

