/**
 * Fixtures the disk rules' tests share (no tests of its own, so not named *.test.ts): a
 * partitioned disk image made on the host, the partition table as sfdisk reads it, and input
 * trees with the things a root filesystem holds. It lives with the test helpers: only tests
 * import it, so it is no part of any rule's code digest (src/rule-code.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, linkSync, mkdtempSync, rmSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';

export const T = { timeout: 60_000 };

export const LABEL_ID = '4F3C1E2A-0B1D-4C5E-9A7B-1D2E3F405162';
export const BIOS_PARTUUID = '6A1B2C3D-0000-4000-8000-000000000003';
export const ESP_PARTUUID = '6A1B2C3D-0000-4000-8000-000000000001';
export const ROOT_PARTUUID = '6A1B2C3D-0000-4000-8000-000000000002';
export const ROOT_UUID = '0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d';

/** The small disk the tests write into: bios 1 MiB @ 1 MiB, esp 40 MiB @ 2 MiB, root 100 MiB @ 42 MiB. */
export const DISK = {
  size: '144M',
  label_id: LABEL_ID,
  partitions: [
    { name: 'bios', type: 'bios', size: '1M', uuid: BIOS_PARTUUID },
    { name: 'esp', type: 'esp', size: '40M', uuid: ESP_PARTUUID },
    { name: 'root', type: 'root-x86-64', size: 'rest', uuid: ROOT_PARTUUID },
  ],
};
export const ESP_OFFSET = 2 * 1024 * 1024;
export const ROOT_OFFSET = 42 * 1024 * 1024;

/** Makes DISK at `path` with the host's sfdisk (what disk.partition makes, without a sandbox run). */
export function makeDisk(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  execFileSync('truncate', ['-s', '144M', path]);
  const table = [
    'label: gpt',
    `label-id: ${LABEL_ID}`,
    'unit: sectors',
    'first-lba: 2048',
    'sector-size: 512',
    '',
    `start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, uuid=${BIOS_PARTUUID}, name="bios"`,
    `start=4096, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=${ESP_PARTUUID}, name="esp"`,
    `start=86016, size=206848, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=${ROOT_PARTUUID}, name="root"`,
    '',
  ].join('\n');
  execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', path], { input: table });
}

export interface SfdiskTable {
  label: string;
  id: string;
  firstlba: number;
  lastlba: number;
  sectorsize: number;
  partitions: { node: string; start: number; size: number; type: string; uuid: string; name?: string }[];
}

/** The partition table of a disk image, as `sfdisk -J` reads it. */
export function sfdiskJson(path: string): SfdiskTable {
  return (JSON.parse(execFileSync('sfdisk', ['-J', path], { encoding: 'utf8' })) as { partitiontable: SfdiskTable }).partitiontable;
}

/**
 * A temporary directory on tmpfs when there is one: there readdir lists entries newest first, so a
 * tree made there in reverse order is read in another order than one on ext4 (hash order).
 */
export function tmpfsDir(prefix: string): { dir: string; cleanup: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Bytes a file occupies on disk (sparse files: far less than their size). */
export function allocated(path: string): number {
  return lstatSync(path).blocks * 512;
}

/**
 * A small root-like tree; `reverse` creates the entries in the opposite order and `time` sets
 * every host mtime (after `cp -a`, ctimes and inode numbers differ anyway).
 */
export function makeRootTree(dir: string, { reverse = false, time }: { reverse?: boolean; time?: Date } = {}): void {
  const file = (rel: string, content: string | Buffer, mode = 0o644) => () => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content, { mode });
  };
  const steps: (() => void)[] = [
    file('etc/hostname', 'disk-test\n'),
    file('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640),
    file('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755),
    file('usr/lib/big.bin', Buffer.alloc(300 * 1024, 7)),
    file('home/user/notes', 'mine\n', 0o600),
    file('weird/with space "and" quote\\back', 'odd\n'),
    () => symlinkSync('usr/bin', join(dir, 'bin')),
    () => mkdirSync(join(dir, 'empty'), { recursive: true }),
  ];
  mkdirSync(dir, { recursive: true });
  for (const step of reverse ? [...steps].reverse() : steps) step();
  linkSync(join(dir, 'usr/bin/tool'), join(dir, 'usr/bin/tool-hardlink'));
  mkdirSync(join(dir, 'dev'));
  execFileSync('mknod', ['-m', '0666', join(dir, 'dev/null'), 'c', '1', '3']);
  execFileSync('mkfifo', ['-m', '0600', join(dir, 'dev/initctl')]);
  chownSync(join(dir, 'etc/shadow'), 0, 42);
  chownSync(join(dir, 'home/user'), 1000, 1000);
  chownSync(join(dir, 'home/user/notes'), 1000, 1000);
  execFileSync('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', join(dir, 'usr/bin/tool')]);
  if (time) touchAll(dir, time);
}

/** Sets the mtime and atime of everything under `dir` (links too, through `touch -h`). */
export function touchAll(dir: string, time: Date): void {
  const walk = (p: string): void => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) execFileSync('touch', ['-h', '-d', time.toISOString(), p]);
    else utimesSync(p, time, time);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(dir);
}
