/**
 * patch: `build --patch` / `watch --patch` — an edit of the OS tree reaches a bootable image by
 * updating a copy of the previous image rather than making the disk again (docs/patch.md).
 *
 *     prepare (before the build runs: graph, keys, out/'s record — no tree read)
 *        shape: the target is a disk finished by one disk.ext4 (shape.ts)
 *        record: out/TARGET's image is the one imgmake wrote, of a known OS tree (record.ts)
 *        the disk's shape key is the recorded one; the old OS tree is still in the store
 *     (the build then runs only up to the OS tree)
 *     apply
 *        diff: the layers the old and new OS trees do not share (diff.ts); none touches what
 *              the disk's other stages read (GRUB's files, the kernel)
 *        read: the touched paths of the new tree, through its merged view in the sandbox
 *              (tar, no recursion), unpacked in a private scratch of the cache
 *        copy: out/TARGET's image (reflink where the filesystem can; a qcow2 is converted to raw)
 *        write: probe the image (`ls -p`, `ea_list`), check the free space, one `debugfs -w -f`
 *              (debugfs.ts), `e2fsck -fn`, convert back to qcow2, swap into out/TARGET
 *        record: the new image's record (mode: patched)
 *
 * A refusal at any step is a value: the caller builds the target in full. Nothing here writes
 * the store: a patched image is never a tree, so never cached under a key, never uploaded.
 * The partition table, the ESP and everything outside the ext4 partition are the previous
 * image's bytes.
 */
import { chmod, mkdir, open, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TargetDef } from '../definition.js';
import { OWNER_ONLY, privateDir, swapIn } from '../export.js';
import { SOURCE_DATE_EPOCH } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import type { Sandbox } from '../sandbox/run.js';
import { SANDBOX_TREE } from '../sandbox/spec.js';
import { ownedName } from '../store/orphans.js';
import type { Store, TreeRecord } from '../store/types.js';
import type { KeyedProject } from '../engine/types.js';
import { PRELUDE } from '../../rules/_lib/sh.js';
import { debugfsErrors, parseEaList, parseLs, patchCommands, sections, typeOfMode, dq, type ImageEntry, type NewEntry } from './debugfs.js';
import { differingLayers, layerDiff } from './diff.js';
import { dropRecord, readRecord, type PatchRecord } from './record.js';
import { BOOT_LINKS, diskShape, type DiskShape, type Refusal } from './shape.js';
import { dropStandby, keepStandby, takeStandby } from './standby.js';

export { diskShape, type DiskShape, type PatchRefusal, type Refusal } from './shape.js';
export { writeRecord, dropRecord, completeRecord } from './record.js';

export interface Prepared {
  shape: DiskShape;
  record: PatchRecord;
  oldTree: TreeRecord;
}

/** Whether target `t` can be patched, from the graph, keys, out/'s record and the store's index. */
export async function preparePatch(p: KeyedProject, store: Store, outDir: string, t: TargetDef): Promise<Result<Prepared, Refusal>> {
  const shape = diskShape(p.graph, p.keys, t);
  if (!shape.ok) return shape;
  const record = await readRecord(outDir, t.name, shape.value.file);
  if (!record.ok) return record;
  if (record.value.shape !== shape.value.shapeKey) {
    return fail({ reason: 'disk-changed', message: `the disk of ${t.name} changed beside its OS tree (the partition layout, a disk stage's options, its buildroot or rule code): the disk is made again` });
  }
  const oldTree = await store.get(record.value.os);
  if (!oldTree) return fail({ reason: 'old-tree-gone', message: `the OS tree out/${t.name}/${shape.value.file} was made from is no longer in the cache: there is nothing to compare the new one with` });
  return ok({ shape: shape.value, record: record.value, oldTree });
}

export interface Applied {
  path: string;
  /** Entries written and removed; layers compared. */
  written: number;
  removed: number;
  layers: number;
  /** The image already held this OS tree: nothing was done. */
  current: boolean;
  /** Written into the standby image (standby.ts) rather than a copy of out/'s. */
  standby?: boolean;
}

export interface ApplyOptions {
  prepared: Prepared;
  newTree: TreeRecord;
  store: Store;
  sandbox: Sandbox;
  outDir: string;
  signal?: AbortSignal | undefined;
}

const SANDBOX_OUT = '/run/imgmake/out';

/**
 * disk.convert's pinned qcow2 creation options (rules/disk.convert/index.ts; test/patch.test.ts
 * checks they are the same): the patched qcow2 is made as the full build's is.
 */
export const QCOW2_OPTIONS = ['compat=1.1', 'cluster_size=65536', 'refcount_bits=16', 'lazy_refcounts=off', 'extended_l2=off', 'preallocation=off'];
const SDE = Number(SOURCE_DATE_EPOCH);

/**
 * Updates out/TARGET's image to hold `newTree` (see the module header); out/TARGET is the old
 * image until the swap, the new one after. A refusal leaves out/ as it was.
 */
export async function applyPatch(o: ApplyOptions): Promise<Result<Applied, Refusal>> {
  const { shape, record, oldTree } = o.prepared;
  const dest = join(o.outDir, shape.target);
  if (record.os === o.newTree.key) return ok({ path: dest, written: 0, removed: 0, layers: 0, current: true });
  // The image to write into: the standby (standby.ts) when its tree is still in the store and
  // its diff to the new tree leaves the boot files alone; else a copy of out/'s image.
  const standby = await takeStandby(o.outDir, shape.target, shape.shapeKey);
  let base: { tree: TreeRecord; raw?: string } = { tree: oldTree };
  let diff: Awaited<ReturnType<typeof layerDiff>> | undefined;
  if (standby) {
    const tree = await o.store.get(standby.os);
    const d = tree ? await layerDiff(differingLayers(tree.layers, o.newTree.layers), (k) => o.store.layerPath(k)) : undefined;
    if (tree && d?.ok && !bootConflict(d.value.paths, d.value.opaque, shape.bootPaths, d.value.dirs)) {
      base = { tree, raw: standby.path };
      diff = d;
    } else await dropStandby(o.outDir, shape.target);
  }
  const layers = differingLayers(base.tree.layers, o.newTree.layers);
  diff ??= await layerDiff(layers, (k) => o.store.layerPath(k));
  if (!diff.ok) return fail({ reason: 'unsupported', message: diff.error });
  const boot = bootConflict(diff.value.paths, diff.value.opaque, shape.bootPaths, diff.value.dirs);
  if (boot) return fail({ reason: 'boot-files', message: `the edit changes ${boot}, which the disk's boot stages read (GRUB, the kernel): the disk is made again` });
  const scratch = await o.store.scratch();
  let tmp: string | undefined;
  try {
    let read = await readNewTree(o, join(scratch.dir, 'read'), diff.value.paths, diff.value.opaque, diff.value.replaced);
    if (!read.ok) return read;
    if (read.value.partial.size) {
      // A name of a multiply-linked file the edit touched whose other names it did not (an edit
      // undone: the lower layer's hardlink group is whole again): read the group's every name.
      const names = await linkNames(o, join(scratch.dir, 'links'), read.value.partial);
      if (!names.ok) return names;
      read = await readNewTree(o, join(scratch.dir, 'read2'), [...new Set([...diff.value.paths, ...names.value])].sort(), diff.value.opaque, diff.value.replaced);
      if (!read.ok) return read;
    }
    const { next, present } = read.value;
    const opaque = new Set([...diff.value.opaque, ...read.value.expanded]);
    const paths = [...new Set([...diff.value.paths, ...present])].sort();
    tmp = await privateDir(join(o.outDir, ownedName(`.${shape.target}.new-`)));
    const into = join(tmp, 'out');
    await mkdir(into);
    const old = join(dest, shape.file);
    const final = join(into, shape.file);
    let raw = base.raw;
    if (raw === undefined) {
      raw = shape.kind === 'raw' ? final : join(tmp, 'disk.raw');
      const copied =
        shape.kind === 'raw'
          ? await execa('cp', ['--reflink=auto', '--sparse=always', '--', old, raw], { reject: false, all: true })
          : await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', old, raw], { reject: false, all: true });
      if (copied.exitCode !== 0) return fail({ reason: 'patch-failed', message: `copying ${old} failed: ${copied.all}` });
    }
    const offset = await partitionOffset(raw, shape.partition);
    if (!offset.ok) return fail({ reason: 'patch-failed', message: offset.error });
    const dev = `${raw}?offset=${offset.value}`;
    const image = await probeImage(dev, scratch.dir, paths, next, opaque);
    const values = join(scratch.dir, 'values');
    await mkdir(values);
    let plan;
    try {
      plan = patchCommands({ paths, opaque, next, image: image.entries, imageXattrs: image.xattrs, sde: SDE, mtime: shape.mtime, valueFile: (i) => join(values, String(i)) });
    } catch (e) {
      return fail({ reason: 'unsupported', message: (e as Error).message });
    }
    const room = await freeSpace(raw, offset.value);
    if (!room.ok) return fail({ reason: 'patch-failed', message: room.error });
    if (plan.needBlocks > room.value.blocks || plan.needInodes > room.value.inodes) {
      return fail({
        reason: 'no-space',
        message: `the edit needs up to ${plan.needBlocks} blocks and ${plan.needInodes} inodes; the root filesystem has ${room.value.blocks} and ${room.value.inodes} free: the disk is made again`,
      });
    }
    for (const [f, v] of plan.values) await writeFile(f, v);
    const cmdFile = join(scratch.dir, 'patch.cmds');
    await writeFile(cmdFile, plan.commands.join('\n') + '\n');
    const env = { ...process.env, E2FSPROGS_FAKE_TIME: SOURCE_DATE_EPOCH, TZ: 'UTC', LC_ALL: 'C' };
    const w = await debugfs(['-w', '-f', cmdFile, dev], env);
    const errors = debugfsErrors(w.output);
    if (w.exitCode !== 0 || errors.length) return fail({ reason: 'patch-failed', message: `debugfs failed: ${errors.slice(0, 5).join('; ') || `exit ${w.exitCode}`}` });
    const fsck = await execa('e2fsck', ['-fn', dev], { reject: false, all: true, env });
    if (fsck.exitCode !== 0) return fail({ reason: 'patch-failed', message: `e2fsck -fn finds the patched filesystem unclean: ${(fsck.all ?? '').split('\n').slice(-8).join(' | ')}` });
    if (shape.kind === 'qcow2') {
      const opts = [...QCOW2_OPTIONS, ...(shape.compression && shape.compression !== 'none' ? [`compression_type=${shape.compression}`] : [])].join(',');
      const c = await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', opts, ...(shape.compression && shape.compression !== 'none' ? ['-c'] : []), raw, final], { reject: false, all: true });
      if (c.exitCode !== 0) return fail({ reason: 'patch-failed', message: `qemu-img convert failed: ${c.all}` });
      // The raw image now holds the new tree: the next patch starts from it.
      await keepStandby(o.outDir, shape.target, raw, o.newTree.key, shape.shapeKey);
    } else if (raw !== final) await rename(raw, final);
    await chmod(final, 0o644);
    await utimes(final, SDE, SDE);
    await chmod(into, OWNER_ONLY);
    // out/TARGET is now a patched image: the export's stamp no longer describes it.
    await rm(join(o.outDir, '.imgmake', `${shape.target}.json`), { force: true });
    await dropRecord(o.outDir, shape.target);
    // A raw target's previous image holds the recorded tree: it becomes the standby.
    const keep = shape.kind === 'raw' ? (gone: string) => keepStandby(o.outDir, shape.target, join(gone, shape.file), record.os, shape.shapeKey) : undefined;
    await swapIn(into, dest, keep);
    return ok({ path: dest, written: plan.written, removed: plan.removed, layers: layers.length, current: false, standby: base.raw !== undefined });
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await scratch.release();
  }
}

/**
 * The first touched path that is, is under, or replaces a path the boot stages read. A
 * directory a layer holds only because something under it changed (or that was made new) is
 * not a change of what they read: `/boot` copied up for a new `/boot/efi` mountpoint leaves
 * the kernel and GRUB's files as they were. Files, links, whiteouts and replaced directories are.
 */
export function bootConflict(paths: readonly string[], opaque: readonly string[], bootPaths: readonly string[], dirs: readonly string[] = []): string | undefined {
  const isOpaque = new Set(opaque);
  const plainDir = new Set(dirs);
  for (const p of paths) {
    if (plainDir.has(p) && !isOpaque.has(p)) continue;
    if (!p.includes('/') && BOOT_LINKS.test(p)) return `/${p}`;
    for (const b of bootPaths) {
      if (p === b || p.startsWith(b + '/')) return `/${p}`;
      // An ancestor replaced whole (or turned into a file or link) replaces the boot path too.
      if (b.startsWith(p + '/') && isOpaque.has(p)) return `/${p}`;
    }
  }
  return undefined;
}

/**
 * The new tree's entries at `paths` (and everything under the `opaque` directories and the
 * `replaced` paths that are directories in the new tree), read through its merged view in the
 * sandbox: a path is present when it resolves to itself (no symlink on the way) and exists;
 * what is present is packed with tar (owners, modes, xattrs, ACLs, hardlinks, devices; no
 * recursion) and unpacked into the scratch. `expanded`: the directories whose subtree was read.
 */
async function readNewTree(
  o: ApplyOptions,
  scratch: string,
  paths: readonly string[],
  opaque: readonly string[],
  replaced: readonly string[],
): Promise<Result<{ next: Map<string, NewEntry>; present: string[]; expanded: string[]; partial: Set<string> }, Refusal>> {
  const ran = await inNewTree(o, scratch, READ_SCRIPT, 'reading the new OS tree', {
    touched: paths.map((p) => p + '\n').join(''),
    opaque: [...opaque, ...replaced].map((p) => p + '\n').join(''),
  });
  if (!ran.ok) return ran;
  const x = ran.value;
  const present = (await readFile(join(x, 'present'), 'utf8')).split('\0').filter(Boolean);
  const expanded = (await readFile(join(x, 'expanded'), 'utf8')).split('\n').filter(Boolean);
  const bad = present.find((p) => p.includes('\n'));
  if (bad !== undefined) return fail({ reason: 'unsupported', message: `a file name holds a newline, which debugfs cannot name: ${JSON.stringify(bad)}` });
  const root = join(scratch, 'new');
  await mkdir(root);
  const un = await execa('tar', ['-x', '-f', join(x, 'diff.tar'), '-C', root, '--xattrs', "--xattrs-include=*", '--acls', '--numeric-owner', '--same-owner', '--same-permissions'], { reject: false, all: true });
  if (un.exitCode !== 0) return fail({ reason: 'patch-failed', message: `unpacking the new tree's files failed: ${un.all}` });
  // The tree's link counts of the files read (stat in the sandbox): "nlink inode mode-hex name".
  const groups = new Map<string, { nlink: number; names: number }>();
  for (const line of (await readFile(join(x, 'nlinks'), 'utf8')).split('\n')) {
    const m = /^(\d+) (\d+) ([0-9a-f]+) /.exec(line);
    if (!m || Number(m[1]) < 2 || (parseInt(m[3]!, 16) & 0o170000) !== 0o100000) continue;
    const g = groups.get(m[2]!) ?? { nlink: Number(m[1]), names: 0 };
    g.names++;
    groups.set(m[2]!, g);
  }
  const partial = new Set([...groups].filter(([, g]) => g.names < g.nlink).map(([ino]) => ino));
  const xattrs = await readXattrs(root);
  const next = new Map<string, NewEntry>();
  for (const p of present) {
    const host = join(root, p);
    const s = lstatSync(host, { bigint: true });
    const type = typeOfMode(Number(s.mode));
    if (type === 'sock') return fail({ reason: 'unsupported', message: `/${p} is a socket; a patch does not make sockets` });
    // Linux's dev_t: the minor's low 8 bits, the major's 12, the minor's next 12, then the rest.
    const rdev = s.rdev;
    next.set(p, {
      type,
      perm: Number(s.mode) & 0o7777,
      uid: Number(s.uid),
      gid: Number(s.gid),
      mtime: Number(s.mtimeMs / 1000n),
      size: Number(s.size),
      rdevMajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
      rdevMinor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
      ...(type === 'symlink' ? { target: readlinkSync(host, 'utf8') } : {}),
      host,
      inode: `${s.dev}:${s.ino}`,
      xattrs: xattrs.get(host) ?? new Map(),
    });
  }
  return ok({ next, present, expanded, partial });
}

const READ_SCRIPT = `${PRELUDE}
cd ${SANDBOX_TREE}
out=${SANDBOX_OUT}
: > "$out/present"
while IFS= read -r p; do
  r=$(in_tree "$p") || continue
  [ "$r" = "./$p" ] || continue
  [ -e "$r" ] || [ -L "$r" ] || continue
  printf '%s\\0' "$p" >> "$out/present"
done < "$out/touched"
: > "$out/expanded"
while IFS= read -r d; do
  [ -d "./$d" ] && [ ! -L "./$d" ] || continue
  r=$(in_tree "$d") || continue
  [ "$r" = "./$d" ] || continue
  printf '%s\\n' "$d" >> "$out/expanded"
  find "$d" -mindepth 1 -print0 >> "$out/present"
done < "$out/opaque"
xargs -0 -r stat -c '%h %i %f %n' -- < "$out/present" > "$out/nlinks"
exec tar --create --file "$out/diff.tar" --no-recursion --null --verbatim-files-from -T "$out/present" --xattrs --xattrs-include='*' --acls --numeric-owner --sparse
`;

/**
 * debugfs with its stderr on its stdout's pipe: its command echoes (stdout) and its errors
 * (stderr) in the order it wrote them. Two pipes read side by side (execa's `all`) interleave
 * as the reads happen to come, and a loaded machine then pins an error on the wrong command.
 */
async function debugfs(args: string[], env?: NodeJS.ProcessEnv): Promise<{ exitCode: number; output: string }> {
  const r = await execa('/bin/sh', ['-c', 'exec debugfs "$@" 2>&1', 'debugfs', ...args], { reject: false, ...(env ? { env } : {}) });
  return { exitCode: r.exitCode ?? 1, output: r.stdout };
}

/**
 * Runs `script` in the sandbox on the new tree's merged view (read-only, the host's tools),
 * with `files` written into a scratch folder it sees at SANDBOX_OUT, writable: that folder.
 */
async function inNewTree(o: ApplyOptions, scratch: string, script: string, what: string, files: Record<string, string> = {}): Promise<Result<string, Refusal>> {
  await mkdir(scratch);
  const x = join(scratch, 'x');
  await mkdir(x);
  for (const [name, text] of Object.entries(files)) await writeFile(join(x, name), text);
  const logFile = join(scratch, 'log');
  await writeFile(logFile, '');
  const r = await o.sandbox.run(
    {
      buildroot: { kind: 'host' },
      tree: { mount: o.store.readMount(o.newTree, join(scratch, 'mnt')), writable: false },
      inputs: [],
      binds: [{ src: x, dest: SANDBOX_OUT, writable: true }],
      argv: ['/bin/sh', '-c', script],
      env: { SOURCE_DATE_EPOCH },
    },
    { logFile, ...(o.signal ? { signal: o.signal } : {}) },
  );
  if (r.exitCode !== 0) return fail({ reason: 'patch-failed', message: `${what} failed: ${(await readFile(logFile, 'utf8')).trim() || `exit ${r.exitCode}`}` });
  return ok(x);
}

/** Every name in the new tree of the regular files whose inode numbers are `inodes` (one walk, in the sandbox). */
async function linkNames(o: ApplyOptions, scratch: string, inodes: ReadonlySet<string>): Promise<Result<string[], Refusal>> {
  const ran = await inNewTree(o, scratch, `cd ${SANDBOX_TREE} && exec find . -xdev -type f -links +1 -printf '%i %P\\0' > ${SANDBOX_OUT}/groups`, "listing the new OS tree's hardlinks");
  if (!ran.ok) return ran;
  const x = ran.value;
  const names: string[] = [];
  for (const rec of (await readFile(join(x, 'groups'), 'utf8')).split('\0')) {
    const sp = rec.indexOf(' ');
    if (sp > 0 && inodes.has(rec.slice(0, sp))) names.push(rec.slice(sp + 1));
  }
  return ok(names);
}

/** Every xattr under `root` (getfattr, hex values): host path → name → value. */
async function readXattrs(root: string): Promise<Map<string, Map<string, Buffer>>> {
  const r = await execa('getfattr', ['-R', '-P', '--absolute-names', '-d', '-m', '-', '-e', 'hex', root], { reject: false, stripFinalNewline: false });
  const out = new Map<string, Map<string, Buffer>>();
  let cur: Map<string, Buffer> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      out.set(unescape(line.slice(8)), cur);
    } else if (cur) {
      const m = /^([^=]+)=0x([0-9a-f]*)$/.exec(line);
      if (m) cur.set(m[1]!, Buffer.from(m[2]!, 'hex'));
      else if (/^[^=]+$/.test(line)) cur.set(line, Buffer.alloc(0));
    }
  }
  return out;
}

/** getfattr's escapes in a file name (\\ooo octal, \\\\). */
function unescape(s: string): string {
  return Buffer.from(s.replace(/\\([0-7]{3})|\\\\/g, (m, o: string | undefined) => (o ? String.fromCharCode(parseInt(o, 8)) : '\\')), 'latin1').toString('utf8');
}

/**
 * The byte offset of the partition (number or GPT name) in a raw disk image, read from its
 * primary GPT (disk.partition writes one): the header at LBA 1, then its entries.
 */
export async function partitionOffset(raw: string, ref: number | string): Promise<Result<number, string>> {
  const fh = await open(raw, 'r');
  try {
    const header = Buffer.alloc(92);
    await fh.read(header, 0, 92, 512);
    if (header.toString('latin1', 0, 8) !== 'EFI PART') return fail(`${raw}: no GPT partition table`);
    const entriesAt = Number(header.readBigUInt64LE(72)) * 512;
    const count = header.readUInt32LE(80);
    const size = header.readUInt32LE(84);
    if (size < 128 || count > 1024) return fail(`${raw}: a GPT header this reader does not know`);
    const entries = Buffer.alloc(count * size);
    await fh.read(entries, 0, entries.length, entriesAt);
    for (let i = 0; i < count; i++) {
      const e = entries.subarray(i * size, (i + 1) * size);
      if (e.subarray(0, 16).every((b) => b === 0)) continue;
      const name = e.subarray(56, 128).toString('utf16le').replace(/\0[\s\S]*$/, '');
      if ((typeof ref === 'number' && ref === i + 1) || (typeof ref === 'string' && name === ref)) return ok(Number(e.readBigUInt64LE(32)) * 512);
    }
    return fail(`the previous image has no partition ${JSON.stringify(ref)}`);
  } finally {
    await fh.close();
  }
}

/**
 * Free blocks (less the reserved ones) and inodes of the ext4 filesystem at byte `offset` of
 * `raw`, from its superblock (1024 bytes in). The counts are exact in a filesystem only
 * mke2fs and debugfs ever wrote (the library writes them on close; a mounted one would be
 * updated lazily). debugfs's `stats` says the same but reads every group: 0.5 s on 3 GiB.
 */
async function freeSpace(raw: string, offset: number): Promise<Result<{ blocks: number; inodes: number }, string>> {
  const fh = await open(raw, 'r');
  try {
    const sb = Buffer.alloc(1024);
    await fh.read(sb, 0, 1024, offset + 1024);
    if (sb.readUInt16LE(0x38) !== 0xef53) return fail(`${raw}: no ext4 superblock at the root partition`);
    const wide = (sb.readUInt32LE(0x60) & 0x80) !== 0; // INCOMPAT_64BIT: the counts' high halves
    const n = (lo: number, hi: number): number => sb.readUInt32LE(lo) + (wide ? sb.readUInt32LE(hi) * 2 ** 32 : 0);
    return ok({ blocks: n(0x0c, 0x158) - n(0x08, 0x154), inodes: sb.readUInt32LE(0x10) });
  } finally {
    await fh.close();
  }
}

/**
 * What the image holds at the touched paths, under every directory that goes, and the xattr
 * names of directories kept in place: `ls -p` of the touched paths' parents, then of each
 * directory to remove, level by level, and `ea_list` of the kept ones (read-only debugfs runs).
 */
async function probeImage(
  dev: string,
  scratch: string,
  paths: readonly string[],
  next: ReadonlyMap<string, NewEntry>,
  opaque: ReadonlySet<string>,
): Promise<{ entries: Map<string, ImageEntry>; xattrs: Map<string, string[]> }> {
  const entries = new Map<string, ImageEntry>();
  const file = join(scratch, 'probe.cmds');
  const run = async (cmds: string[]): Promise<string[]> => {
    await writeFile(file, cmds.join('\n') + '\n');
    return sections((await debugfs(['-f', file, dev])).output);
  };
  // One run does the most: the parents' listings and the xattrs of every directory the new
  // tree keeps (if the image has it as a directory too, they are what `ea_rm` removes); more
  // only when directories go (their contents, level by level).
  const keptDirs = paths.filter((p) => next.get(p)?.type === 'dir');
  const list = async (dirs: string[], more: string[] = []): Promise<{ found: string[]; rest: string[] }> => {
    const found: string[] = [];
    const out = await run([...dirs.map((d) => `ls -p ${dq('/' + d)}`), ...more]);
    dirs.forEach((d, i) => {
      for (const [name, e] of parseLs(out[i] ?? '') ?? []) {
        const p = d ? `${d}/${name}` : name;
        entries.set(p, e);
        if (e.type === 'dir') found.push(p);
      }
    });
    return { found, rest: out.slice(dirs.length) };
  };
  const parent = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
  const parents = [...new Set(paths.map(parent))].sort();
  const { rest } = await list(parents, keptDirs.map((d) => `ea_list ${dq('/' + d)}`));
  // Directories whose contents go: replaced by another type or gone, or children of a
  // replaced (opaque) directory the new tree lacks.
  let queue = paths.filter((p) => {
    const e = entries.get(p);
    return e?.type === 'dir' && (next.get(p)?.type !== 'dir' || opaque.has(p) || [...opaque].some((d) => p.startsWith(d + '/') && !next.has(p)));
  });
  const listed = new Set<string>();
  while (queue.length) {
    queue = queue.filter((d) => !listed.has(d));
    for (const d of queue) listed.add(d);
    if (!queue.length) break;
    queue = (await list(queue)).found;
  }
  const xattrs = new Map<string, string[]>();
  keptDirs.forEach((d, i) => {
    if (entries.get(d)?.type === 'dir') xattrs.set(d, parseEaList(rest[i] ?? ''));
  });
  return { entries, xattrs };
}
