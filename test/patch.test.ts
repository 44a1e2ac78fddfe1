/**
 * `build --patch` (src/patch/, docs/patch.md) on a small bootable disk (helpers/patch-disk.ts):
 * real bubblewrap, real debugfs, real qemu-img, one QEMU boot.
 *
 * - The patched image and a full build of the same definition hold the same filesystem: every
 *   path with its type, mode, owner, size, content, symlink target, device number, link count,
 *   times and xattrs (helpers/ext4-walk.ts reads both with debugfs), for an edit that deletes,
 *   replaces, re-owns, re-links and adds; the bytes outside the root partition (partition
 *   table, BIOS boot, ESP) are the same too. As a raw disk and as a qcow2.
 * - Refused, with the reason, and built in full: the disk's layout changed (disk-changed), an
 *   edit of what GRUB reads from the OS tree (boot-files), a growth past the free space
 *   (no-space), an out/ image changed since it was written (image-changed); a touched but
 *   unchanged image is still patched (its digest matches).
 * - The patched image boots and shows the edited file on the serial console.
 * - Pure parts: the debugfs commands for a small diff; the qcow2 options are disk.convert's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, utimesSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, startImgmake } from './helpers/cli.js';
import { events } from './helpers/events.js';
import { once } from 'node:events';
import { patchDisk, type PatchDiskOptions } from './helpers/patch-disk.js';
import { partitionOffset, walkExt4 } from './helpers/ext4-walk.js';
import { patchCommands, type NewEntry } from '../src/patch/debugfs.js';
import { bootConflict, QCOW2_OPTIONS } from '../src/patch/index.js';
import convert from '../rules/disk.convert/index.js';

const T = { timeout: 600_000 };

async function project(): Promise<{ dir: string; file: string; write(o: PatchDiskOptions): Promise<void>; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-patch-'));
  const file = join(dir, 'imgmake.yaml');
  return { dir, file, write: (o) => writeFile(file, patchDisk(o)), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

async function build(p: { file: string; dir: string }, targets: string[], extra: string[] = []) {
  // --patch is build's own option; the others (--out) are global.
  const own = extra.filter((a) => a === '--patch');
  const global = extra.filter((a) => a !== '--patch');
  const r = await imgmake(['--json', '-f', p.file, '--cache', join(p.dir, 'cache'), ...global, 'build', ...targets, ...own]);
  assert.equal(r.code, 0, r.stderr);
  const patch = r.events.filter((e) => e['type'] === 'patch');
  const exported = r.events.filter((e) => e['type'] === 'export');
  const timing = r.events.find((e) => e['type'] === 'timing')?.['phases'] as Record<string, number>;
  const summary = r.events.find((e) => e['type'] === 'summary')!;
  return { patch, exported, timing, summary, events: r.events };
}

function qcowToRaw(qcow: string, raw: string): void {
  execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow, raw]);
}

function bytes(file: string, start: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  readSync(fd, b, 0, length, start);
  closeSync(fd);
  return b;
}

/** Deletes a tree, replaces a file by a directory and a directory by a link, re-owns, re-links, adds. */
const EDIT = `
rm -rf opt/gone
rm opt/replaced && mkdir opt/replaced && printf 'inside\\n' > opt/replaced/file
rm -rf opt/dir-to-link && ln -s /etc opt/dir-to-link
chown 5:6 usr/bin/tool && chmod 4710 usr/bin/tool
setfattr -x user.colour usr/share/doc/big.txt
setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 usr/bin/tool
setfattr -n user.new -v fresh etc/message
rm -rf usr/share/doc && mkdir -p usr/share/doc && printf 'new doc\\n' > usr/share/doc/readme && setfattr -n user.dir -v again usr/share/doc
mkdir -p srv/new/deep && printf 'a\\n' > srv/new/deep/a && ln srv/new/deep/a srv/new/deep/b
ln -s /a/very/long/target/that/does/not/fit/in/the/inode/itself/at/all/0123456789 srv/new/long-link
mknod dev/tty0 c 4 0 && mknod dev/sda b 8 0
chmod 1777 var/empty
touch -d @100000000 srv/new/deep/a
`;

test('a patched image holds what a full build holds (raw and qcow2), and its ESP and partition table are the previous image\'s', T, async (t) => {
  const p = await project();
  t.after(p.cleanup);
  await p.write({ message: 'first' });
  const first = await build(p, ['raw', 'qcow2'], []);
  // Without --patch: no record, no mode.
  assert.ok(first.exported.every((e) => e['mode'] === undefined));
  const full1 = await build(p, ['raw', 'qcow2'], []);
  assert.deepEqual(full1.patch, []);
  // With --patch the first time: nothing to compare with, so a full build, and a record.
  const r1 = await imgmake(['--json', '-f', p.file, '--cache', join(p.dir, 'cache'), 'build', 'raw', 'qcow2', '--patch']);
  assert.equal(r1.code, 0, r1.stderr);
  assert.deepEqual(r1.events.filter((e) => e['type'] === 'patch').map((e) => [e['target'], e['result'], e['reason']]), [['raw', 'refused', 'no-record'], ['qcow2', 'refused', 'no-record']]);
  assert.deepEqual(r1.events.filter((e) => e['type'] === 'export').map((e) => e['mode']), ['full', 'full']);

  await p.write({ message: 'second', extra: EDIT });
  const patched = await build(p, ['raw', 'qcow2'], ['--patch']);
  assert.deepEqual(patched.patch.map((e) => [e['target'], e['result']]), [['raw', 'patched'], ['qcow2', 'patched']], JSON.stringify(patched.patch));
  assert.deepEqual(patched.exported.map((e) => e['mode']), ['patched', 'patched']);
  assert.ok(patched.patch[0]!['written'] > 10 && patched.patch[0]!['removed'] > 3, JSON.stringify(patched.patch[0]));
  // Only the OS tree's stages ran: no disk stage.
  assert.ok(!patched.events.some((e) => e['type'] === 'stage' && e['status'] === 'ran' && /^(disk|qcow2)\./.test(e['node'])), 'no disk stage ran');
  t.diagnostic(`patched edit: ${JSON.stringify(patched.timing)}; patch events ${JSON.stringify(patched.patch.map((e) => e['ms']))}`);

  const patchedRaw = join(p.dir, 'out', 'raw', 'disk.raw');
  const patchedQcowRaw = join(p.dir, 'patched-qcow.raw');
  qcowToRaw(join(p.dir, 'out', 'qcow2', 'disk.qcow2'), patchedQcowRaw);
  // The same definition, built in full into another folder.
  const fullOut = join(p.dir, 'full');
  const full = await build(p, ['raw'], ['--out', fullOut]);
  t.diagnostic(`full build of the same edit: ${JSON.stringify(full.timing)}`);
  const fullRaw = join(fullOut, 'raw', 'disk.raw');
  const root = partitionOffset(fullRaw, 'root');
  const want = walkExt4(fullRaw, root);
  assert.ok(want.get('/srv/new/deep/b')?.linkOf === '/srv/new/deep/a', 'the full build has the hardlink');
  assert.ok(want.get('/usr/bin/tool')!.xattrs.includes('security.capability'));
  for (const [name, image] of [['raw', patchedRaw], ['qcow2', patchedQcowRaw]] as const) {
    assert.equal(partitionOffset(image, 'root'), root);
    const got = walkExt4(image, root);
    assert.deepEqual([...got.keys()], [...want.keys()], `${name}: the same paths`);
    for (const [path, e] of want) assert.deepEqual(got.get(path), e, `${name}: ${path}`);
    const fsck = execFileSync('e2fsck', ['-fn', `${image}?offset=${root}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(fsck, /files/);
    // The partition table, GRUB's core.img and the ESP: the previous image's bytes, which are
    // a full build's (the disk stages are reproducible).
    assert.ok(bytes(image, 0, root).equals(bytes(fullRaw, 0, root)), `${name}: the bytes before the root partition`);
    const size = statSync(fullRaw).size;
    assert.ok(bytes(image, size - 33 * 512, 33 * 512).equals(bytes(fullRaw, size - 33 * 512, 33 * 512)), `${name}: the backup GPT`);
  }
  // `build` without --patch stays what it was: the full build's image, bit for bit, as before.
  const again = await build(p, ['raw'], ['--out', join(p.dir, 'full2')]);
  assert.ok(again.exported.every((e) => e['mode'] === undefined));
  assert.equal(execFileSync('sha256sum', [join(p.dir, 'full2', 'raw', 'disk.raw')], { encoding: 'utf8' }).split(' ')[0], execFileSync('sha256sum', [fullRaw], { encoding: 'utf8' }).split(' ')[0]);
  // A second --patch build with nothing changed leaves the image alone.
  const current = await build(p, ['raw'], ['--patch']);
  assert.deepEqual(current.patch.map((e) => e['result']), ['current']);
});

test('refused with the reason, then built in full: the disk layout, GRUB\'s files, the free space, a changed out/ image', T, async (t) => {
  const p = await project();
  t.after(p.cleanup);
  const refusedAs = async (o: PatchDiskOptions, reason: string) => {
    await p.write(o);
    const r = await build(p, ['raw'], ['--patch']);
    assert.deepEqual(r.patch.map((e) => [e['result'], e['reason']]), [['refused', reason]], JSON.stringify(r.patch));
    assert.deepEqual(r.exported.map((e) => e['mode']), ['full']);
    assert.ok(r.summary['ok']);
    return r;
  };
  // A 30 MiB root holding a 12 MiB file.
  const big = (mib: number) => `head -c ${mib * 1048576} /dev/zero | tr '\\0' 'y' > opt/big`;
  await p.write({ message: 'one', rootSize: '30M', extra: big(12), grubFromTree: true });
  await build(p, ['raw'], ['--patch']);
  await p.write({ message: 'two', rootSize: '30M', extra: big(12), grubFromTree: true });
  assert.deepEqual((await build(p, ['raw'], ['--patch'])).patch.map((e) => e['result']), ['patched']);

  // The partition layout (the root partition's size) is a disk stage's option.
  await refusedAs({ message: 'two', rootSize: '31M', extra: big(12), grubFromTree: true }, 'disk-changed');
  // The ESP's own tree.
  await refusedAs({ message: 'two', rootSize: '31M', extra: big(12), grubFromTree: true, espText: 'another ESP' }, 'disk-changed');
  // 12 MiB replaced by 16 MiB: more than the filesystem has free (nothing freed is counted);
  // the full build fits.
  await refusedAs({ message: 'two', rootSize: '31M', extra: big(16), grubFromTree: true, espText: 'another ESP' }, 'no-space');
  // GRUB (grub.bios reads its modules from the OS tree): an edit under /usr/lib/grub or /boot.
  await refusedAs({ message: 'two', rootSize: '31M', extra: `${big(16)}\nprintf '# edited\\n' >> boot/grub/grub.cfg`, grubFromTree: true, espText: 'another ESP' }, 'boot-files');

  // out/'s image written to after the export (a byte of the ESP): never patched.
  const image = join(p.dir, 'out', 'raw', 'disk.raw');
  const fd = openSync(image, 'r+');
  writeSync(fd, Buffer.from([0x42]), 0, 1, 3 * 1024 * 1024);
  closeSync(fd);
  const tampered = await refusedAs({ message: 'three', rootSize: '31M', extra: `${big(16)}\nprintf '# edited\\n' >> boot/grub/grub.cfg`, grubFromTree: true, espText: 'another ESP' }, 'image-changed');
  assert.match(tampered.patch[0]!['message'], /changed since imgmake wrote it/);
  assert.notEqual(bytes(image, 3 * 1024 * 1024, 1)[0], 0x42, 'the full build replaced the tampered image');
  // Touched (a new mtime and ctime) but not changed: the digest still matches, so it is patched.
  utimesSync(image, new Date(), new Date());
  await p.write({ message: 'four', rootSize: '31M', extra: `${big(16)}\nprintf '# edited\\n' >> boot/grub/grub.cfg`, grubFromTree: true, espText: 'another ESP' });
  assert.deepEqual((await build(p, ['raw'], ['--patch'])).patch.map((e) => e['result']), ['patched']);
  const root = partitionOffset(image, 'root');
  assert.equal(execFileSync('debugfs', ['-R', 'cat /etc/message', `${image}?offset=${root}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), 'four\n');
});

test('the patched image boots and shows the edited file on the console', { timeout: 600_000 }, async (t) => {
  const p = await project();
  t.after(p.cleanup);
  await p.write({ message: 'BEFORE-THE-EDIT' });
  await build(p, ['raw'], ['--patch']);
  await p.write({ message: 'PATCHED-MESSAGE' });
  const r = await build(p, ['raw'], ['--patch']);
  assert.deepEqual(r.patch.map((e) => e['result']), ['patched']);
  const child = startImgmake(['-f', p.file, '--cache', join(p.dir, 'cache'), 'boot', 'raw', '--bios', '--accel', 'tcg', '--memory', '64']);
  t.after(() => child.kill('SIGKILL'));
  let console = '';
  child.stdout!.on('data', (d) => (console += d));
  child.stderr!.on('data', (d) => (console += d));
  const started = Date.now();
  // A generous bound: a software-emulated boot on a loaded machine.
  while (!console.includes('PATCH-BOOT-END') && Date.now() - started < 300_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  t.diagnostic(`boot: ${Date.now() - started} ms`);
  // Between the markers, the patched file's line and nothing of the old one. A stray byte of the
  // serial line (a "!" between two of GRUB's lines was seen once, 2026-12-06) is not the image's.
  const shown = /PATCH-BOOT-BEGIN([\s\S]*?)PATCH-BOOT-END/.exec(console)?.[1] ?? '';
  assert.match(shown, /^\s*(?:\S?\s+)?PATCHED-MESSAGE\s*$/, console);
});

/** Asserts that each image's root filesystem is a full build's of the same definition (into `into`). */
async function sameAsFull(p: { file: string; dir: string }, images: [string, string][], into: string): Promise<void> {
  await build(p, ['raw'], ['--out', into]);
  const fullRaw = join(into, 'raw', 'disk.raw');
  const root = partitionOffset(fullRaw, 'root');
  const want = walkExt4(fullRaw, root);
  for (const [name, image] of images) {
    const got = walkExt4(image, root);
    assert.deepEqual([...got.keys()], [...want.keys()], `${name}: the same paths`);
    for (const [path, e] of want) assert.deepEqual(got.get(path), e, `${name}: ${path}`);
  }
}

test('the standby image: later patches write into it, never a copy; a chain of patches (an edit, its undoing, again) stays a full build\'s filesystem', T, async (t) => {
  const p = await project();
  t.after(p.cleanup);
  const out = join(p.dir, 'out');
  const standby = (target: string) => join(out, '.imgmake', `${target}.standby`, 'disk.raw');
  const step = async (message: string, extra: string, standbyUsed: boolean[]) => {
    await p.write({ message, extra });
    const r = await build(p, ['raw', 'qcow2'], ['--patch']);
    assert.deepEqual(r.patch.map((e) => [e['target'], e['result'], e['standby']]), [['raw', 'patched', standbyUsed[0]], ['qcow2', 'patched', standbyUsed[1]]], JSON.stringify(r.patch));
    t.diagnostic(`${message}: patch ${JSON.stringify(r.patch.map((e) => e['ms']))} ms, timing ${JSON.stringify(r.timing)}`);
    const qcowRaw = join(p.dir, `${message}.raw`);
    qcowToRaw(join(out, 'qcow2', 'disk.qcow2'), qcowRaw);
    await sameAsFull(p, [['raw', join(out, 'raw', 'disk.raw')], ['qcow2', qcowRaw], ['qcow2 standby', standby('qcow2')]], join(p.dir, `full-${message}`));
    // Each patched image's record gets its digest before the build ends (record.ts).
    for (const target of ['raw', 'qcow2']) assert.match(JSON.parse(readFileSync(join(out, '.imgmake', `${target}.patch.json`), 'utf8')).digest, /^[0-9a-f]{64}$/);
  };
  await p.write({ message: 'first' });
  await build(p, ['raw', 'qcow2'], ['--patch']);
  // The first patch copies out/'s images; the raw image it replaces becomes the raw standby,
  // the qcow2's raw scratch the qcow2 standby.
  await step('second', EDIT, [false, false]);
  // The raw standby holds 'first', the new tree is 'third' (the edit undone); the qcow2 standby
  // holds 'second': each patch writes the diff from the standby's own tree.
  await step('third', '', [true, true]);
  await step('fourth', EDIT, [true, true]);
  // A process holding the standby open (a VM started on the image before the last swap) keeps
  // it from being written: the patch copies out/'s image instead, and is still right.
  const held = openSync(standby('raw'), 'r');
  try {
    await step('fifth', '', [false, true]);
  } finally {
    closeSync(held);
  }
  // Touched behind imgmake's back: the standby is not trusted (ctime), the patch copies.
  utimesSync(standby('qcow2'), new Date(), new Date());
  await step('sixth', EDIT, [true, false]);
});

test('watch --patch: a save of the OS tree patches the previous image; the rebuild says so', T, async (t) => {
  const p = await project();
  t.after(p.cleanup);
  await p.write({ message: 'watched-one' });
  const child = startImgmake(['--json', '-f', p.file, '--cache', join(p.dir, 'cache'), 'watch', 'raw', '--patch']);
  t.after(() => child.kill('SIGKILL'));
  const ev = events(child);
  const rebuilt = (e: Record<string, any>) => e['type'] === 'rebuild';
  const first = await ev.next(rebuilt, 'first build', 300_000);
  assert.deepEqual(first.filter((e) => e['type'] === 'patch').map((e) => e['reason']), ['no-record']);
  await ev.next((e) => e['type'] === 'watch' && e['state'] === 'idle', 'idle');
  await p.write({ message: 'watched-two' });
  const second = await ev.next(rebuilt, 'rebuild', 300_000);
  assert.deepEqual(second.filter((e) => e['type'] === 'patch').map((e) => e['result']), ['patched']);
  assert.equal(second.at(-1)!['result'], 'built');
  t.diagnostic(`watch --patch: save → patched image ${second.at(-1)!['wallMs']} ms; ${JSON.stringify(second.find((e) => e['type'] === 'timing')?.['phases'])}`);
  const image = join(p.dir, 'out', 'raw', 'disk.raw');
  assert.equal(execFileSync('debugfs', ['-R', 'cat /etc/message', `${image}?offset=${partitionOffset(image, 'root')}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), 'watched-two\n');
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  assert.equal(code, 130);
});

test('the commands for a small diff: a file rewritten, a tree removed deepest first, a kept directory re-owned', () => {
  const e = (o: Partial<NewEntry>): NewEntry => ({ type: 'file', perm: 0o644, uid: 0, gid: 0, mtime: 1, size: 3, rdevMajor: 0, rdevMinor: 0, host: '/h/x', inode: String(Math.random()), xattrs: new Map(), ...o });
  const r = patchCommands({
    paths: ['etc', 'etc/hostname', 'opt', 'opt/gone'],
    opaque: new Set(),
    next: new Map([
      ['etc', e({ type: 'dir', perm: 0o755, uid: 7, mtime: 315532800 })],
      ['etc/hostname', e({ host: '/h/etc/hostname', mtime: 999999999999 })],
      ['opt', e({ type: 'dir', perm: 0o755 })],
    ]),
    image: new Map([
      ['etc', { type: 'dir', ino: 12 }],
      ['etc/hostname', { type: 'file', ino: 13 }],
      ['opt', { type: 'dir', ino: 14 }],
      ['opt/gone', { type: 'dir', ino: 15 }],
      ['opt/gone/f', { type: 'file', ino: 16 }],
    ]),
    imageXattrs: new Map([['etc', ['user.old']]]),
    sde: 315532800,
    mtime: 'clamp',
    valueFile: (i) => `/v/${i}`,
  });
  assert.deepEqual(r.commands, [
    'sif "/etc" mode 040755',
    'sif "/etc" uid 7',
    'sif "/etc" gid 0',
    'ea_rm "/etc" "user.old"',
    'rm "/etc/hostname"',
    'write "/h/etc/hostname" "/etc/hostname"',
    'sif "/etc/hostname" mode 0100644',
    'sif "/etc/hostname" uid 0',
    'sif "/etc/hostname" gid 0',
    'sif "/etc/hostname" mtime @315532800',
    'sif "/opt" mode 040755',
    'sif "/opt" uid 0',
    'sif "/opt" gid 0',
    'rm "/opt/gone/f"',
    'rmdir "/opt/gone"',
    'sif "/opt" mtime @1',
    'sif "/etc" mtime @315532800',
  ]);
  assert.equal(r.removed, 3);
  assert.equal(bootConflict(['etc', 'etc/hostname'], [], ['boot', 'usr/lib/grub']), undefined);
  assert.equal(bootConflict(['usr', 'usr/lib', 'usr/lib/grub/i386-pc/x.mod'], [], ['usr/lib/grub']), '/usr/lib/grub/i386-pc/x.mod');
  assert.equal(bootConflict(['usr', 'usr/lib'], ['usr/lib'], ['usr/lib/grub']), '/usr/lib', 'a replaced parent replaces it');
  assert.equal(bootConflict(['vmlinuz'], [], []), '/vmlinuz');
  assert.equal(bootConflict(['boot', 'boot/efi'], [], ['boot'], ['boot', 'boot/efi']), undefined, 'a mountpoint made under /boot');
  assert.equal(bootConflict(['boot', 'boot/vmlinuz-6.1'], [], ['boot'], ['boot']), '/boot/vmlinuz-6.1');
});

test('a patched qcow2 is made with disk.convert\'s own options', () => {
  const inv = convert({ format: 'qcow2', source: 'disk.raw', filename: 'disk.qcow2', compression: 'none' }, { tree: '/t', run: '/r', inputs: { tree: { kind: 'tree', path: '/i' } } } as never);
  assert.ok(JSON.stringify(inv).includes(`-o ${QCOW2_OPTIONS.join(',')}`), JSON.stringify(inv).slice(0, 2000));
});
