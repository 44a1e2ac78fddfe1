/**
 * debugfs: the pure half of a patch. From what the new tree holds at the touched paths and what
 * the image holds there (read back with `ls -p` and `ea_list` probes), the debugfs command file
 * that makes the image's ext4 filesystem hold the new tree:
 *
 *     for each touched path, parents first:
 *       the image's entry goes (recursively, deepest first) when the new tree has none there,
 *         or another type there, or it is not a directory (files are rewritten whole)
 *       a replaced (opaque) directory kept as a directory loses the children the new tree lacks
 *       the new entry is made: write / mkdir / symlink / mknod, or a kept directory is updated
 *       then its mode (type and permission bits), uid, gid, mtime and xattrs are set
 *     hardlinks of the new tree: one write, `ln` for the other names, links_count set
 *     directories' mtimes last (making an entry in a directory stamps it)
 *
 * debugfs runs with E2FSPROGS_FAKE_TIME=SOURCE_DATE_EPOCH, so every time it stamps (atime,
 * ctime, crtime of a new inode, a directory's mtime) is what disk.ext4 sets too; only mtimes
 * come from the tree (clamped like disk.ext4's `mtime: clamp`).
 *
 * Paths are quoted for debugfs's parser ("…", a " doubled). `mknod` does not resolve a path
 * (it links the whole string as one name in the current directory): it runs after a `cd`.
 */

export type EntryType = 'file' | 'dir' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'sock';

/** What the new tree holds at a path (read from the extracted copy). */
export interface NewEntry {
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky (07777). */
  perm: number;
  uid: number;
  gid: number;
  /** Whole seconds. */
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  /** A symlink's target. */
  target?: string;
  /** The extracted file on the host (regular files: `write`'s source). */
  host: string;
  /** The same id for every name of one inode (hardlinks). */
  inode: string;
  xattrs: Map<string, Buffer>;
}

/** What the image holds at a path (from `ls -p`). */
export interface ImageEntry {
  type: EntryType;
  ino: number;
}

export interface PatchInput {
  /** Every touched path (relative, sorted, no root), opaque subtrees expanded. */
  paths: readonly string[];
  /** Directories replaced whole. */
  opaque: ReadonlySet<string>;
  /** The new tree's entries (absent: the new tree has none at that path). */
  next: ReadonlyMap<string, NewEntry>;
  /** The image's entries: every touched path's, and everything under a directory that goes. */
  image: ReadonlyMap<string, ImageEntry>;
  /** The xattr names of the image's directories that are kept in place. */
  imageXattrs: ReadonlyMap<string, string[]>;
  sde: number;
  mtime: 'clamp' | 'keep';
  /** Where an xattr value is written for `ea_set -f` (index → host path). */
  valueFile: (i: number) => string;
}

export interface PatchCommands {
  commands: string[];
  /** xattr values to write before running: host path → bytes. */
  values: Map<string, Buffer>;
  /** Blocks and inodes the new entries need at most (4 KiB blocks; nothing freed is counted). */
  needBlocks: number;
  needInodes: number;
  /** Paths removed from / written into the image. */
  removed: number;
  written: number;
}

const TYPE_BITS: Record<EntryType, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, chr: 0o020000, blk: 0o060000, fifo: 0o010000, sock: 0o140000 };

export function typeOfMode(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'chr';
    case 0o060000:
      return 'blk';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'sock';
    default:
      return 'file';
  }
}

/** A path quoted for debugfs: absolute, in double quotes, a " doubled. */
export function dq(path: string): string {
  return `"${path.replaceAll('"', '""')}"`;
}

const abs = (p: string): string => `/${p}`;
const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const baseOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

export function patchCommands(x: PatchInput): PatchCommands {
  const cmds: string[] = [];
  const dirTimes: string[] = [];
  const values = new Map<string, Buffer>();
  const gone = new Set<string>(); // image paths removed (a directory: with everything under it)
  const firstName = new Map<string, string>(); // inode id → the path written for it
  const names = new Map<string, number>();
  let needBlocks = 0;
  let needInodes = 0;
  let removed = 0;
  let written = 0;
  const underGone = (p: string): boolean => {
    for (let q = parentOf(p); q !== ''; q = parentOf(q)) if (gone.has(q)) return true;
    return false;
  };
  // The image's children of a directory (from the probes).
  const children = new Map<string, string[]>();
  for (const p of x.image.keys()) {
    const d = parentOf(p);
    if (!children.has(d)) children.set(d, []);
    children.get(d)!.push(p);
  }
  const remove = (p: string): void => {
    const e = x.image.get(p)!;
    if (e.type === 'dir') {
      for (const c of children.get(p) ?? []) if (!gone.has(c)) remove(c);
      cmds.push(`rmdir ${dq(abs(p))}`);
    } else cmds.push(`rm ${dq(abs(p))}`);
    gone.add(p);
    removed++;
  };
  const mtime = (e: NewEntry): number => (x.mtime === 'clamp' ? Math.min(e.mtime, x.sde) : e.mtime);
  let v = 0;
  const attrs = (p: string, e: NewEntry, existingXattrs: string[]): void => {
    const q = dq(abs(p));
    cmds.push(`sif ${q} mode 0${(TYPE_BITS[e.type] | e.perm).toString(8)}`, `sif ${q} uid ${e.uid}`, `sif ${q} gid ${e.gid}`);
    for (const n of existingXattrs) cmds.push(`ea_rm ${q} ${dq(n)}`);
    for (const [n, value] of [...e.xattrs].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const f = x.valueFile(v++);
      values.set(f, value);
      cmds.push(`ea_set -f ${dq(f)} ${q} ${dq(n)}`);
      if (value.length > 64) needBlocks++;
    }
    // A directory's mtime changes as entries are made in it: set last.
    (e.type === 'dir' ? dirTimes : cmds).push(`sif ${q} mtime @${mtime(e)}`);
  };
  for (const p of x.paths) {
    if (underGone(p) && !x.next.has(p)) continue;
    const old = underGone(p) ? undefined : x.image.get(p);
    const e = x.next.get(p);
    if (old && !gone.has(p) && (!e || old.type !== e.type || old.type !== 'dir')) remove(p);
    if (old && e && old.type === 'dir' && e.type === 'dir' && !gone.has(p) && x.opaque.has(p)) {
      for (const c of children.get(p) ?? []) if (!x.next.has(c) && !gone.has(c)) remove(c);
    }
    if (!e) continue;
    written++;
    const q = dq(abs(p));
    if (old && !gone.has(p)) {
      // A directory kept in place: its children stay; its attributes are set again.
      attrs(p, e, x.imageXattrs.get(p) ?? []);
      continue;
    }
    needInodes++;
    switch (e.type) {
      case 'dir':
        cmds.push(`mkdir ${q}`);
        needBlocks++;
        break;
      case 'file': {
        const first = firstName.get(e.inode);
        if (first !== undefined) {
          // Another name of an inode already written: a link, and no attributes of its own.
          cmds.push(`ln ${dq(abs(first))} ${q}`);
          names.set(first, names.get(first)! + 1);
          needInodes--;
          continue;
        }
        firstName.set(e.inode, p);
        names.set(p, 1);
        cmds.push(`write ${dq(e.host)} ${q}`);
        // Data blocks, and an extent tree block per ~340 extents (one is plenty for a margin).
        needBlocks += Math.ceil(e.size / 4096) + 1;
        break;
      }
      case 'symlink':
        cmds.push(`symlink ${q} ${dq(e.target!)}`);
        if (Buffer.byteLength(e.target!) >= 60) needBlocks++;
        break;
      case 'chr':
      case 'blk':
      case 'fifo':
        cmds.push(`cd ${dq(abs(parentOf(p)))}`, `mknod ${dq(baseOf(p))} ${e.type === 'fifo' ? 'p' : `${e.type === 'chr' ? 'c' : 'b'} ${e.rdevMajor} ${e.rdevMinor}`}`, 'cd "/"');
        break;
      case 'sock':
        throw new Error(`Internal error: a socket at ${p} reached the command writer`);
    }
    attrs(p, e, []);
  }
  for (const [p, n] of names) if (n > 1) cmds.push(`sif ${dq(abs(p))} links_count ${n}`);
  cmds.push(...dirTimes.reverse());
  return { commands: cmds, values, needBlocks, needInodes, removed, written };
}

/**
 * The sections of a `debugfs -f` run's output, one per command in order: debugfs echoes each
 * command as `debugfs: COMMAND` before what it prints.
 */
export function sections(output: string): string[] {
  const out: string[] = [];
  let cur: string[] | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith('debugfs: ')) {
      if (cur) out.push(cur.join('\n'));
      cur = [];
    } else if (cur) cur.push(line);
  }
  if (cur) out.push(cur.join('\n'));
  return out;
}

/** `ls -p` lines (`/INO/MODE/UID/GID/NAME/SIZE/`) → name → entry; undefined when the directory is missing. */
export function parseLs(section: string): Map<string, ImageEntry> | undefined {
  const out = new Map<string, ImageEntry>();
  let any = false;
  for (const line of section.split('\n')) {
    const m = /^\/(\d+)\/([0-7]+)\/\d+\/\d+\/(.*)\/[^/]*\/$/.exec(line);
    if (!m) continue;
    any = true;
    const name = m[3]!;
    if (name === '.' || name === '..') continue;
    out.set(name, { ino: Number(m[1]), type: typeOfMode(parseInt(m[2]!, 8)) });
  }
  return any ? out : undefined;
}

/** `ea_list` → the attribute names. */
export function parseEaList(section: string): string[] {
  return [...section.matchAll(/^ {2}(\S+) \(\d+\)/gm)].map((m) => m[1]!);
}

/** Failures in a `debugfs -w -f` run's output: lines that are neither an echo nor an inode note. */
export function debugfsErrors(output: string): string[] {
  return output.split('\n').filter((l) => l.trim() !== '' && !/^debugfs( [0-9.]+ \(|: )/.test(l) && !/^Allocated inode: \d+$/.test(l));
}
