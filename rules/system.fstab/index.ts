import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Filesystem {
  spec: string;
  path: string;
  type: string;
  options: string;
  freq: number;
  passno?: number;
}

interface Options {
  filesystems: Filesystem[];
}

const HEADER = ['# <file system>', '<mount point>', '<type>', '<options>', '<dump>', '<pass>'];

/** A device-backed spec: one fsck can check. `tmpfs`, `proc`, `none` are not. */
const isDevice = (spec: string): boolean => /^(UUID|PARTUUID|LABEL|PARTLABEL)=|^\//.test(spec);

export function defaultPassno(fs: Filesystem): number {
  if (fs.path === '/') return 1;
  if (fs.type === 'swap' || !isDevice(fs.spec)) return 0;
  return 2;
}

/** The whole file: the header and one line per filesystem, columns padded to the widest cell. */
export function fstab(filesystems: Filesystem[]): string {
  const rows = [HEADER, ...filesystems.map((f) => [f.spec, f.path, f.type, f.options, String(f.freq), String(f.passno ?? defaultPassno(f))])];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  return `# /etc/fstab: static file system information (written by imgmake, system.fstab).\n#\n${lines.join('\n')}\n`;
}

const systemFstab: RuleInvoke<Options> = ({ filesystems }, ctx) => {
  const seen = new Set<string>();
  for (const f of filesystems) {
    if (f.path === 'none') continue;
    if (seen.has(f.path)) throw new Error(`system.fstab: ${f.path} is mounted twice`);
    seen.add(f.path);
  }
  return shell(ctx, [`put ${q(`${ctx.run}/fstab`)} /etc/fstab 0644 0:0`], { fstab: fstab(filesystems) });
};

export default systemFstab;
