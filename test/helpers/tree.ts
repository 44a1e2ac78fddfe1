/** Trees as text, for comparing two of them entry by entry. */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** One line per entry of `dir`, sorted by path: everything a tree is, times included. */
export function describeTree(dir: string): string[] {
  const lines: string[] = [];
  const visit = (rel: string): void => {
    const p = rel ? join(dir, rel) : dir;
    const s = lstatSync(p, { bigint: true });
    const type = s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'link' : `other:${s.rdev}`;
    const what = s.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : s.isSymbolicLink() ? readlinkSync(p) : '';
    lines.push([rel || '.', type, (s.mode & 0o7777n).toString(8), s.uid, s.gid, s.isDirectory() ? '' : s.size, s.mtimeNs, what].join(' '));
    if (s.isDirectory()) for (const n of readdirSync(p).sort()) visit(rel ? `${rel}/${n}` : n);
  };
  visit('');
  return lines;
}

