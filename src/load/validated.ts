/**
 * The options a build validated before, kept in its cache (CACHE/options.json), so that a build
 * whose definition did not change neither loads ajv nor compiles a schema (docs/bench.md,
 * "Start-up": about a sixth of a no-op's CPU time).
 *
 * Validating is a pure function: the same options against the same schema, by the same ajv,
 * always give the same answer and the same defaults. The memo maps the digest of
 * `[MEMO_VERSION, ajv's version, the rule's options schema, the options as written]` to the
 * options with their defaults filled in: data, never code. Only options that passed are kept;
 * options that fail are validated every time (their diagnostics come from ajv's errors).
 *
 * Trust: the memo is in the cache, which only root can write (docs/store.md, "Who can read the
 * cache"); who can write it can already replace any tree a key names, so a memo grants nothing
 * more. This module reads and writes the memo; it does not validate (load/options.ts does).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** The memo's file in the cache folder. */
export const VALIDATED_FILE = 'options.json';

/** Bumped when what a memo entry means changes (then every entry is a miss). */
const MEMO_VERSION = 1;

/** More entries than this are trimmed to the ones the last build used. */
const MAX_ENTRIES = 4096;

let ajvVersion: string | undefined;

/** ajv's version, from its package.json (read once, without loading ajv). */
function ajvVersionOf(): string {
  return (ajvVersion ??= (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('ajv/package.json'), 'utf8')) as { version: string }).version);
}

export class ValidatedOptions {
  private readonly used = new Map<string, Record<string, unknown>>();
  private added = false;

  private constructor(
    readonly file: string,
    private readonly known: Record<string, Record<string, unknown>>,
  ) {}

  /** The memo in FILE; empty when there is none or it cannot be read (it is only a memo). */
  static async open(file: string): Promise<ValidatedOptions> {
    let known: Record<string, Record<string, unknown>> = {};
    try {
      const j = JSON.parse(await readFile(file, 'utf8')) as { version?: unknown; entries?: unknown };
      if (j.version === MEMO_VERSION && j.entries !== null && typeof j.entries === 'object') known = j.entries as typeof known;
    } catch {
      // missing or torn: every lookup misses, and the next save writes it anew
    }
    return new ValidatedOptions(file, known);
  }

  /** The digest OPTIONS (as written, before any default) are kept under for SCHEMA. */
  digest(schema: unknown, options: unknown): string {
    return createHash('sha256').update(JSON.stringify([MEMO_VERSION, ajvVersionOf(), schema, options])).digest('hex');
  }

  /** The options with defaults validated under DIGEST before, as a fresh copy; undefined if none. */
  get(digest: string): Record<string, unknown> | undefined {
    const hit = this.known[digest];
    if (hit === undefined || hit === null || typeof hit !== 'object') return undefined;
    this.used.set(digest, hit);
    return structuredClone(hit);
  }

  /** Keeps OPTIONS (valid, defaults filled in) under DIGEST. */
  set(digest: string, options: Record<string, unknown>): void {
    const copy = structuredClone(options);
    this.known[digest] = copy;
    this.used.set(digest, copy);
    this.added = true;
  }

  /**
   * Writes the memo when this build validated something new (write and rename: a reader sees the
   * old file or the new one). Past MAX_ENTRIES only this build's entries are kept. A failure to
   * write is ignored: the next build validates again.
   */
  async save(): Promise<void> {
    if (!this.added) return;
    const all = Object.keys(this.known).length > MAX_ENTRIES ? Object.fromEntries(this.used) : this.known;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify({ version: MEMO_VERSION, entries: all }));
      await rename(tmp, this.file);
      this.added = false;
    } catch {
      // a full disk or a read-only cache: only a memo lost
    }
  }
}
