/**
 * Write errors in words: which path, and why. A full disk during a stage, a commit or an export
 * must say so with the path to free, not "exit 1" or a bare `ENOSPC: …, write` (a write(2) on
 * a file descriptor names no path; Node's message then has none either).
 *
 * Two sources of the same fact: an errno from Node's fs (a commit, an export's own files), and,
 * for a sandboxed command whose stderr may not even reach its log on a full disk, the state of
 * the filesystem afterwards (`statfs`): no free blocks or no free inodes.
 *
 * This module describes; it does not retry, clean up or decide what fails.
 */
import { statfs } from 'node:fs/promises';
import { formatSize } from './size.js';

/** What `statfs` says of the filesystem holding a path. */
export interface SpaceLeft {
  /**
   * Bytes available (`bavail`, what df calls Avail). Not `bfree`: the blocks ext4 reserves are
   * for its `resuid` or CAP_SYS_RESOURCE, which a stage's sandbox does not have, so a stage
   * meets ENOSPC when this reaches 0 even though it runs as root.
   */
  free: number;
  total: number;
  freeInodes: number;
}

export async function spaceLeft(path: string): Promise<SpaceLeft | undefined> {
  try {
    const s = await statfs(path);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize, freeInodes: s.files > 0 ? s.ffree : Number.POSITIVE_INFINITY };
  } catch {
    return undefined;
  }
}

/**
 * Whether a filesystem is full enough that a write just failed for want of space: under 1 % of
 * it and under 16 MiB free (a write fails with less than its own chunk left, so "0" is too
 * strict), or no inode left.
 */
export function isFull(s: SpaceLeft): boolean {
  return s.free < Math.min(16 * 1024 * 1024, s.total / 100) || s.freeInodes === 0;
}

/** `0 B free of 8.0 MiB`, or `no inodes left` when that is what is missing. */
export function describeSpace(s: SpaceLeft): string {
  if (s.freeInodes === 0) return `no inodes left, ${bytes(s.free)} free of ${bytes(s.total)}`;
  return `${bytes(s.free)} free of ${bytes(s.total)}`;
}

/** IEC units, as everywhere imgmake prints a size (size.ts). */
export const bytes = formatSize;

/** The output of a command that ran out of space (GNU tools, package managers, tar, mkfs all print this). */
export const NO_SPACE_TEXT = /No space left on device|Disk quota exceeded/;

/**
 * One line for an error thrown while writing under `where` (a directory the user knows: the
 * cache, out/TARGET): the errno in words and its code, the path when the error names one, and
 * for a full filesystem how much is left and what to do. Errors that are not errnos keep their
 * message.
 *
 *     no space left on device (ENOSPC) in /srv/cache (0 B free of 8.0 MiB); free some space, …
 */
export async function describeWriteError(e: unknown, where: string, hint?: string): Promise<string> {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || !/^E[A-Z0-9]+$/.test(err.code)) return (e as Error)?.message ?? String(e);
  // Node's text is "ENOSPC: no space left on device, open '/x'": the words are between the two.
  const words = /^E[A-Z0-9]+: (.*?)(?:, \w+(?: '.*)?)?$/.exec(err.message ?? '')?.[1] ?? err.code.toLowerCase();
  const path = typeof err.path === 'string' ? err.path : where;
  const head = `${words} (${err.code}) ${path === where ? 'in' : 'at'} ${path}`;
  if (err.code !== 'ENOSPC' && err.code !== 'EDQUOT') return head;
  const s = await spaceLeft(where);
  return `${head}${s ? ` (${describeSpace(s)})` : ''}${hint ? `; ${hint}` : ''}`;
}
