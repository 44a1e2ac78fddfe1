/**
 * Reads a whole ext4 filesystem inside a disk image with debugfs (no mount, no loop device):
 * every path with its type and mode bits, owner, size, content digest, symlink target, device
 * number, link count, times and xattrs. Two images compared this way hold the same files when
 * their listings are equal; inode numbers are left out (a patched image allocates others), and
 * hardlinks are named by the first path of their inode instead.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sections } from '../../src/patch/debugfs.js';

export interface Ext4Entry {
  mode: string;
  uid: string;
  gid: string;
  size: string;
  links: string;
  times: string;
  sha256?: string;
  target?: string;
  device?: string;
  xattrs: string;
  /** For the later names of an inode: the first path that names it. */
  linkOf?: string;
}

function debugfs(dev: string, cmds: string[], dir: string): string[] {
  const f = join(dir, 'cmds');
  writeFileSync(f, cmds.join('\n') + '\n');
  const out = execFileSync('debugfs', ['-f', f, dev], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  return sections(out);
}

const q = (p: string): string => `"${p.replaceAll('"', '""')}"`;

/** Every entry of the ext4 filesystem at byte `offset` of `image`, by path ("/etc/hostname"). */
export function walkExt4(image: string, offset: number): Map<string, Ext4Entry> {
  const dev = `${image}?offset=${offset}`;
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-ext4-walk-'));
  try {
    const listed = new Map<string, { ino: string; mode: string; uid: string; gid: string }>();
    let queue = ['/'];
    while (queue.length) {
      const out = debugfs(dev, queue.map((d) => `ls -p ${q(d)}`), dir);
      const next: string[] = [];
      queue.forEach((d, i) => {
        for (const line of (out[i] ?? '').split('\n')) {
          const m = /^\/(\d+)\/([0-7]+)\/(\d+)\/(\d+)\/(.*)\/[^/]*\/$/.exec(line);
          if (!m || m[5] === '.' || m[5] === '..') continue;
          const p = d === '/' ? `/${m[5]}` : `${d}/${m[5]}`;
          listed.set(p, { ino: m[1]!, mode: m[2]!, uid: m[3]!, gid: m[4]! });
          if (m[2]!.startsWith('04')) next.push(p);
        }
      });
      queue = next;
    }
    const paths = ['/', ...[...listed.keys()].sort()];
    const stats = debugfs(dev, paths.flatMap((p) => [`stat ${q(p)}`, `ea_list ${q(p)}`]), dir);
    const files = paths.filter((p) => listed.get(p)?.mode.startsWith('10'));
    const dumps = files.map((_, i) => join(dir, `f${i}`));
    debugfs(dev, files.map((p, i) => `dump ${q(p)} ${q(dumps[i]!)}`), dir);
    const firstOfIno = new Map<string, string>();
    const out = new Map<string, Ext4Entry>();
    paths.forEach((p, i) => {
      const st = stats[2 * i] ?? '';
      const l = listed.get(p);
      const field = (re: RegExp): string => re.exec(st)?.[1] ?? '';
      const e: Ext4Entry = {
        mode: l?.mode ?? field(/Mode: +(\d+)/),
        uid: l?.uid ?? field(/User: +(\d+)/),
        gid: l?.gid ?? field(/Group: +(\d+)/),
        size: field(/Size: (\d+)/),
        links: field(/Links: (\d+)/),
        times: ['ctime', 'atime', 'mtime', 'crtime'].map((t) => `${t}=${field(new RegExp(`${t}: (0x[0-9a-f:]+)`))}`).join(' '),
        xattrs: (stats[2 * i + 1] ?? '').split('\n').filter((x) => x.startsWith('  ')).sort().join('\n'),
      };
      const fi = files.indexOf(p);
      if (fi >= 0) e.sha256 = createHash('sha256').update(readFileSync(dumps[fi]!)).digest('hex');
      const target = /Fast link dest: "(.*)"/.exec(st);
      if (target) e.target = target[1]!;
      const device = /Device major\/minor number: (\S+)/.exec(st);
      if (device) e.device = device[1]!;
      if (l && l.mode.startsWith('10')) {
        const first = firstOfIno.get(l.ino);
        if (first) e.linkOf = first;
        else firstOfIno.set(l.ino, p);
      }
      out.set(p, e);
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The byte offset of partition `name` of a raw disk image (partx). */
export function partitionOffset(image: string, name: string): number {
  const out = execFileSync('partx', ['-g', '-b', '-P', '-o', 'START,NAME', image], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = /START="(\d+)" NAME="([^"]*)"/.exec(line);
    if (m && m[2] === name) return Number(m[1]) * 512;
  }
  throw new Error(`${image}: no partition ${name}`);
}
