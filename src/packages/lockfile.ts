/**
 * imgmake.lock: the file beside the definition that holds one lock per distinct request, of
 * any format. The core reads and writes the frame; each format reads and writes its entries.
 *
 *     {
 *       "version": 2,
 *       "locks": [
 *         {
 *           "format": "NAME",
 *           "request": {…one line…},
 *           "packages": [
 *             {…one package per line…},
 *             …
 *           ]
 *         },
 *         …
 *       ]
 *     }
 *
 * Version 1 files (before formats had names) are read as they are: an entry without `format`
 * belongs to the table's `legacy` format (formats.ts). Writing always writes version 2 with
 * every `format`: the first `imgmake lock` (or build without --locked) after the upgrade adds
 * one line per lock and re-resolves nothing; keys do not change.
 *
 * This module does not decide which locks a definition needs (attach.ts does).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import type { Formats } from './format.js';

export const LOCK_FILE = 'imgmake.lock';
/** The version written. */
export const LOCK_FILE_VERSION = 2;
/** The versions read. */
const READS = [1, 2];

/** One lock: a format's request and the entries it resolved to. */
export interface Lock {
  format: string;
  request: unknown;
  packages: unknown[];
}

export interface LockTable {
  formats: Formats;
  /** The format of a version 1 entry, which has no `format`. */
  legacy: string;
}

/** Reads imgmake.lock (none yet: no locks); every problem says where and what to do. */
export async function readLocks(path: string, t: LockTable): Promise<Result<Lock[], Diagnostic>> {
  if (!existsSync(path)) return ok([]);
  const text = await readFile(path, 'utf8');
  const bad = (message: string) =>
    fail(diagnostic('usage', `${path}: ${message}`, undefined, 'fix the file, or delete it and run imgmake lock to make it again'));
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return bad(`not valid JSON: ${(e as Error).message}`);
  }
  const top = v as { version?: unknown; locks?: unknown };
  if (typeof v !== 'object' || v === null || typeof top.version !== 'number' || !Array.isArray(top.locks)) {
    return bad(`expected {"version": ${LOCK_FILE_VERSION}, "locks": […]}`);
  }
  if (!READS.includes(top.version)) {
    return bad(
      top.version > LOCK_FILE_VERSION
        ? `version ${top.version}; this imgmake reads versions ${READS.join(' and ')}: upgrade imgmake or lock again`
        : `"version" must be ${LOCK_FILE_VERSION}, got ${top.version}`,
    );
  }
  const locks: Lock[] = [];
  for (const [i, entry] of top.locks.entries()) {
    const where = `locks[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return bad(`${where}: expected an object`);
    const e = entry as Record<string, unknown>;
    const extra = Object.keys(e).find((k) => !['format', 'request', 'packages'].includes(k));
    if (extra !== undefined) return bad(`${where}: unknown field ${JSON.stringify(extra)}`);
    const name = e.format ?? (top.version === 1 ? t.legacy : undefined);
    const format = typeof name === 'string' ? t.formats.get(name) : undefined;
    if (!format) {
      return bad(`${where}: "format" must be one of ${[...t.formats.keys()].map((f) => JSON.stringify(f)).join(', ')}, got ${JSON.stringify(e.format)}`);
    }
    const one = format.lock.parse(e.request, e.packages);
    if (!one.ok) return bad(`${where}: ${one.error}`);
    locks.push({ format: format.name, request: one.value.request, packages: one.value.packages });
  }
  return ok(locks);
}

/** The text of imgmake.lock: locks in the order given, one package per line, a final newline. */
export function locksText(locks: readonly Lock[], formats: Formats): string {
  const entries = locks.map((l) => {
    const format = formats.get(l.format);
    if (!format) throw new Error(`Internal error: a lock of unknown format ${l.format}`);
    const j = format.lock.json(l.request, l.packages);
    const body = j.packages.length ? `[\n        ${j.packages.map((p) => JSON.stringify(p)).join(',\n        ')}\n      ]` : '[]';
    return `    {\n      "format": ${JSON.stringify(l.format)},\n      "request": ${JSON.stringify(j.request)},\n      "packages": ${body}\n    }`;
  });
  return `{\n  "version": ${LOCK_FILE_VERSION},\n  "locks": [\n${entries.join(',\n')}\n  ]\n}\n`;
}
