/**
 * standby: the second raw image a patch writes into, so that a patch never copies the whole
 * disk (docs/patch.md, "The standby image"). It lives beside out/'s image, never in the cache:
 *
 *     out/.imgmake/TARGET.standby/disk.raw      the image
 *     out/.imgmake/TARGET.standby/standby.json  { v, os, shape, stat }: the OS tree it holds
 *
 * - A raw target swaps: the patch updates the standby to the new tree and renames it into out/;
 *   the image out/ held becomes the standby (it holds the tree before). Like A/B partitions, each
 *   patch writes only the paths that differ between the standby's tree and the new one.
 * - A qcow2 target keeps the raw image the patch converted from: it holds out/'s tree, and the
 *   next patch writes into it and converts again (no qcow2 → raw conversion).
 *
 * The record vouches for the file by its stat alone (dev, inode, size, mtime, ctime): nobody
 * but imgmake writes under out/.imgmake, and anything that does changes the ctime, so the standby
 * is then discarded (the patch copies out/'s image as before). Taking the standby removes its
 * record first: a patch that fails or is killed half way leaves a file no record vouches for.
 * An image still open by a process (a VM started on it before the last swap) is never written:
 * its pages would change under the guest.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKey } from '../ids.js';
import { ownedName } from '../store/orphans.js';
import { statId, type StatId } from './record.js';

interface StandbyRecord {
  v: 1;
  os: CacheKey;
  shape: string;
  stat: StatId;
}

export interface Standby {
  /** The raw image, taken: no record vouches for it until `keepStandby`. */
  path: string;
  /** The OS tree the image's root filesystem holds. */
  os: CacheKey;
}

const dirOf = (outDir: string, target: string): string => join(outDir, '.imgmake', `${target}.standby`);
/** Where target's standby image is (or goes). */
const standbyPath = (outDir: string, target: string): string => join(dirOf(outDir, target), 'disk.raw');
const recordOf = (outDir: string, target: string): string => join(dirOf(outDir, target), 'standby.json');

/**
 * Target's standby image, if there is one of disk shape `shape` that nothing touched since it
 * was kept and that no process holds open. Its record is removed: the caller writes into it and
 * keeps it again (`keepStandby`) or drops it. Undefined (and the standby removed) otherwise.
 */
export async function takeStandby(outDir: string, target: string, shape: string): Promise<Standby | undefined> {
  const text = await readFile(recordOf(outDir, target), 'utf8').catch(() => undefined);
  if (text === undefined) {
    await dropStandby(outDir, target);
    return undefined;
  }
  await rm(recordOf(outDir, target), { force: true });
  let rec: StandbyRecord | undefined;
  try {
    rec = JSON.parse(text) as StandbyRecord;
  } catch {
    rec = undefined;
  }
  const path = standbyPath(outDir, target);
  const now = await statId(path).catch(() => undefined);
  const same = rec?.v === 1 && rec.shape === shape && now !== undefined && (Object.keys(now) as (keyof StatId)[]).every((k) => now[k] === rec!.stat[k]);
  if (!same || (await openedByAnyProcess(path))) {
    await dropStandby(outDir, target);
    return undefined;
  }
  return { path, os: rec!.os };
}

/** Moves the raw image `file` into target's standby place (replacing any) and vouches for it as holding `os`. */
export async function keepStandby(outDir: string, target: string, file: string, os: CacheKey, shape: string): Promise<void> {
  const dir = dirOf(outDir, target);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await rm(recordOf(outDir, target), { force: true });
  const path = standbyPath(outDir, target);
  if (file !== path) await rename(file, path);
  const rec: StandbyRecord = { v: 1, os, shape, stat: await statId(path) };
  const tmp = join(dir, ownedName('standby.json.'));
  await writeFile(tmp, JSON.stringify(rec));
  await rename(tmp, recordOf(outDir, target));
}

export async function dropStandby(outDir: string, target: string): Promise<void> {
  await rm(dirOf(outDir, target), { recursive: true, force: true });
}

/**
 * Whether any process of this machine has `path` open (its /proc/PID/fd links, compared by
 * device and inode, so a process in another mount namespace counts too). A process whose fds
 * cannot be read (gone, or not ours to read) is taken not to hold it.
 */
async function openedByAnyProcess(path: string): Promise<boolean> {
  const want = await stat(path).catch(() => undefined);
  if (!want) return false;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const s = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
      if (s && s.ino === want.ino && s.dev === want.dev) return true;
    }
  }
  return false;
}
