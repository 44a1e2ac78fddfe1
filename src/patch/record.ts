/**
 * record: what a patch knows about the image in out/TARGET/, kept beside it in
 * `out/.imgmake/TARGET.patch.json` by `build --patch` (and `watch --patch`) after each image it
 * writes, full or patched:
 *
 *     { v, target, file, os, shape, mode, digest?, stat: { dev, ino, size, mtimeNs, ctimeNs } }
 *
 * `os` is the OS tree's key the image's root filesystem holds, `shape` the disk's shape key
 * (shape.ts), `digest` the image's content digest (store/digest.ts's hashFile: sha256 over
 * 1 MiB chunks, a hole standing as one byte). The record is trusted only for that very image:
 * when the file's stat is still the one recorded (any write, chmod or touch changes its ctime,
 * which no call can set back) it is; otherwise its digest is computed again and must match.
 * An image booted with plain QEMU, edited, or replaced by a build without --patch is therefore
 * never patched: the build is a full one.
 *
 * A patched image's record is written first without its digest, the moment the image is in
 * place (`writeRecord(…, { digest: false })`), and completed after the build's other work
 * (`completeRecord`): hashing a whole disk is not on the path from the edit to the image. Until
 * it is complete the stat alone vouches for the image, so a touch then means a full build.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKey } from '../ids.js';
import { hashFile } from '../store/digest.js';
import { ownedName } from '../store/orphans.js';
import { fail, ok, type Result } from '../result.js';
import type { Refusal } from './shape.js';

export interface PatchRecord {
  v: 1;
  target: string;
  file: string;
  os: CacheKey;
  shape: string;
  /** Which mode made the image. */
  mode: 'full' | 'patched';
  /** Absent until `completeRecord` has hashed the image. */
  digest?: string;
  stat: StatId;
}

export interface StatId {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

export function recordPath(outDir: string, target: string): string {
  return join(outDir, '.imgmake', `${target}.patch.json`);
}

export async function statId(path: string): Promise<StatId> {
  const s = await stat(path, { bigint: true });
  return { dev: String(s.dev), ino: String(s.ino), size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs) };
}

/** Writes the record of the image `out/TARGET/FILE`, with its digest unless `digest: false`. */
export async function writeRecord(outDir: string, r: Omit<PatchRecord, 'v' | 'digest' | 'stat'>, o: { digest?: boolean } = {}): Promise<void> {
  const image = join(outDir, r.target, r.file);
  const before = await statId(image);
  const rec: PatchRecord = { v: 1, ...r, ...(o.digest === false ? {} : { digest: await hashFile(image) }), stat: before };
  await putRecord(outDir, rec);
}

/**
 * Adds the digest to target's record written without one, if the image is still the one it
 * describes (same stat before and after hashing); otherwise leaves the record as it is.
 */
export async function completeRecord(outDir: string, target: string): Promise<void> {
  const rec = await readFile(recordPath(outDir, target), 'utf8').then((t) => JSON.parse(t) as PatchRecord, () => undefined);
  if (!rec || rec.digest !== undefined) return;
  const image = join(outDir, target, rec.file);
  const same = async (): Promise<boolean> => {
    const now = await statId(image).catch(() => undefined);
    return now !== undefined && (Object.keys(now) as (keyof StatId)[]).every((k) => now[k] === rec.stat[k]);
  };
  if (!(await same())) return;
  const digest = await hashFile(image);
  if (await same()) await putRecord(outDir, { ...rec, digest });
}

async function putRecord(outDir: string, rec: PatchRecord): Promise<void> {
  const path = recordPath(outDir, rec.target);
  await mkdir(join(outDir, '.imgmake'), { recursive: true });
  const tmp = join(outDir, '.imgmake', ownedName(`${rec.target}.patch.json.`));
  await writeFile(tmp, JSON.stringify(rec));
  await rename(tmp, path);
}

export async function dropRecord(outDir: string, target: string): Promise<void> {
  await rm(recordPath(outDir, target), { force: true });
}

/**
 * The record of target's image, if it still describes the image in out/ (see the header):
 * a refusal (`no-record`, `image-changed`) otherwise.
 */
export async function readRecord(outDir: string, target: string, file: string): Promise<Result<PatchRecord, Refusal>> {
  const text = await readFile(recordPath(outDir, target), 'utf8').catch(() => undefined);
  let rec: PatchRecord | undefined;
  try {
    rec = text === undefined ? undefined : (JSON.parse(text) as PatchRecord);
  } catch {
    rec = undefined;
  }
  if (!rec || rec.v !== 1 || rec.file !== file || rec.target !== target) {
    return fail({ reason: 'no-record', message: `no record of which tree out/${target}/${file} was made from (the first build with --patch writes one)` });
  }
  const image = join(outDir, target, file);
  const now = await statId(image).catch(() => undefined);
  if (!now) return fail({ reason: 'no-record', message: `out/${target}/${file} is missing` });
  const same = (Object.keys(now) as (keyof StatId)[]).every((k) => now[k] === rec!.stat[k]);
  if (same) return ok(rec);
  if (rec.digest === undefined) {
    return fail({ reason: 'image-changed', message: `out/${target}/${file} was touched or changed since imgmake wrote it, before its digest was recorded: it is not patched` });
  }
  if ((await hashFile(image)) !== rec.digest) {
    return fail({ reason: 'image-changed', message: `out/${target}/${file} changed since imgmake wrote it (booted outside imgmake boot, edited, or rebuilt without --patch): it is not patched` });
  }
  return ok(rec);
}
