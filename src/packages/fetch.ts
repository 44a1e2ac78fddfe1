/**
 * Fetch: a lock's artifacts, by URL, into the cache, each verified against the lock's
 * size and sha256 while it streams (net/download.ts). Artifacts are addressed by digest: one
 * already in the store is never downloaded again, whatever mirror (or format) it came from.
 *
 *     fetchArtifacts(artifacts, { locate, cacheDir, concurrency })  → Map<sha256, content path>
 *     storedArtifacts(artifacts, { cacheDir })                      → the same, for stored ones only
 *     missingArtifacts(artifacts, { cacheDir })                     → the ones that are not stored
 *
 * Store layout (store/entries.ts owns it): the index key is `deb:<sha256>` for every format (the
 * name dates from when .debs were the only artifacts; caches made since then keep working, and gc.ts
 * reads the same keys), the content is stored under its sha256 integrity
 * (`content-v2/sha256/<2>/<2>/<60>`), and the returned path is that content file: a stage
 * hard-links or binds it read-only. It is shared with the cache, so nothing may write through
 * such a link. An entry counts as present when its index entry or its content exists with the
 * locked size; content is not re-hashed (cacache stores only what matched its integrity on the
 * way in).
 *
 * A download goes to CACHE/tmp/OWNER-… first (swept if this process dies), where a cut is
 * resumed by the next attempt, then into the store, which checks the integrity again. A cancelled
 * signal stops everything at once, without retries. When some artifacts cannot be fetched, the
 * others are still stored, then one Error names every failed artifact and URL.
 *
 * This module does not resolve packages, read the lock file or know any format: `locate`
 * (the format's) says where an artifact is.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchFile, inParallel, LocalWriteError, type FetchFailure } from '../net/download.js';
import { fail, ok, type Result } from '../result.js';
import type { Logger } from '../event.js';
import { artifactPath, discardWrongSize, ENTRY, putArtifact } from '../store/entries.js';
import { ownedName } from '../store/orphans.js';
import type { StageDef } from '../definition.js';
import type { Diagnostic } from '../diagnostic.js';
import type { Sandbox } from '../sandbox/run.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { packagesOf } from './attach.js';
import type { Artifact, Formats } from './format.js';

export interface FetchOptions {
  /** The URL of an artifact (the format's `locate`); may throw when it has none. */
  locate: (a: Artifact) => string;
  /** The cacache directory (imgmake's cache root: artifacts share it with trees and logs). */
  cacheDir: string;
  /** Downloads in flight at once (default 6). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Tries per artifact before giving up (default 3). */
  attempts?: number;
  /** A download that receives nothing for this long is cut and retried (default 30 s). */
  idleTimeoutMs?: number;
  /** Progress, for the logger; the core never prints. */
  onEvent?: (e: FetchEvent) => void;
}

/** What happened to one artifact; `retry` carries why the attempt was discarded. */
export type FetchEvent =
  | { type: 'cached'; pkg: Artifact }
  | { type: 'start'; pkg: Artifact; url: string; attempt: number }
  | { type: 'retry'; pkg: Artifact; url: string; attempt: number; error: string }
  | { type: 'fetched'; pkg: Artifact; url: string; bytes: number; ms: number }
  /** Bytes of `pkg` received so far (its download is under way). */
  | { type: 'receiving'; pkg: Artifact; bytes: number }
  | { type: 'failed'; pkg: Artifact; url: string; error: string };

/** The cache's index key of an artifact (store/entries.ts). */
export const artifactKey = ENTRY.artifact;

/**
 * Makes sure every artifact is in the store, downloading what is missing, and returns
 * sha256 → content path for all of them. Throws one Error listing every artifact that could not
 * be fetched (name, version, URL, why); what was fetched meanwhile stays stored.
 */
export async function fetchArtifacts(artifacts: readonly Artifact[], opts: FetchOptions): Promise<Map<string, string>> {
  const unique = new Map<string, Artifact>();
  for (const a of artifacts) unique.set(a.sha256, a);
  const paths = new Map<string, string>();
  const failures: string[] = [];
  await inParallel([...unique.values()], opts.concurrency ?? 6, async (a) => {
    opts.signal?.throwIfAborted();
    const have = await storedPath(opts.cacheDir, a);
    if (have) {
      paths.set(a.sha256, have);
      opts.onEvent?.({ type: 'cached', pkg: a });
      return;
    }
    let url: string;
    try {
      url = opts.locate(a);
    } catch (e) {
      failures.push(`${a.name} ${a.version}: ${(e as Error).message}`);
      return;
    }
    await discardWrongSize(opts.cacheDir, { sha256: a.sha256, size: a.size, metadata: metadataOf(a) });
    const r = await download(a, url, opts);
    if (r.ok) paths.set(a.sha256, r.value);
    else {
      opts.onEvent?.({ type: 'failed', pkg: a, url, error: r.error });
      failures.push(`${a.name} ${a.version} (${url}): ${r.error}`);
    }
  });
  if (failures.length) {
    const n = failures.length;
    throw new Error(`could not fetch ${n} package${n === 1 ? '' : 's'}:\n  ${failures.sort().join('\n  ')}`);
  }
  return paths;
}

/** The artifacts not in the store. */
export async function missingArtifacts(artifacts: readonly Artifact[], opts: { cacheDir: string }): Promise<Artifact[]> {
  const out: Artifact[] = [];
  for (const a of artifacts) if (!(await storedPath(opts.cacheDir, a))) out.push(a);
  return out;
}

/** sha256 → content path of the stored artifacts (those missing are left out); downloads nothing. */
export async function storedArtifacts(artifacts: readonly Artifact[], opts: { cacheDir: string }): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const a of artifacts) {
    const p = await storedPath(opts.cacheDir, a);
    if (p) out.set(a.sha256, p);
  }
  return out;
}

const metadataOf = (a: Artifact) => a.metadata ?? { name: a.name, version: a.version };

/** The content path of a stored artifact, or undefined (store/entries.ts). */
const storedPath = (cacheDir: string, a: Artifact): Promise<string | undefined> => artifactPath(cacheDir, { sha256: a.sha256, size: a.size, metadata: metadataOf(a) });

/** The lock's words for a failed attempt. */
function words(f: FetchFailure, a: Artifact): string {
  switch (f.reason) {
    case 'size':
      return `${f.bytes > a.size ? 'more than' : 'got'} ${f.bytes} bytes, the lock says ${a.size}`;
    case 'sha256':
      return `sha256 ${f.got} does not match the lock's ${a.sha256}`;
    case 'cut':
      return `download cut after ${f.bytes} of ${a.size} bytes: ${f.cause}`;
    case 'http':
      return `HTTP ${f.status}${f.statusText ? ` ${f.statusText}` : ''}`;
    case 'unreachable':
      return f.cause;
  }
}

/** Downloads one artifact into the store: its content path, or why not. */
async function download(a: Artifact, url: string, opts: FetchOptions): Promise<Result<string, string>> {
  const tmpDir = join(opts.cacheDir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const file = join(tmpDir, ownedName());
  let t0 = performance.now();
  try {
    let r;
    try {
      r = await fetchFile(url, file, a, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        attempts: opts.attempts ?? 3,
        idleMs: opts.idleTimeoutMs ?? 30_000,
        onAttempt: (attempt) => {
          t0 = performance.now();
          opts.onEvent?.({ type: 'start', pkg: a, url, attempt });
        },
        onRetry: (attempt, f) => opts.onEvent?.({ type: 'retry', pkg: a, url, attempt, error: words(f, a) }),
        onBytes: (bytes) => opts.onEvent?.({ type: 'receiving', pkg: a, bytes }),
      });
    } catch (e) {
      // The disk is full: this machine's failure, named with the file, not the mirror's.
      if (e instanceof LocalWriteError) return fail(e.message);
      throw e;
    }
    if (!r.ok) {
      const { failure, attempts } = r.error;
      const retried = !(failure.reason === 'http' && failure.permanent);
      return fail(`${words(failure, a)}${retried ? ` (after ${attempts} attempt${attempts === 1 ? '' : 's'})` : ''}`);
    }
    // Verified; the store checks the integrity and size once more on the way in.
    let path: string;
    try {
      path = await putArtifact(opts.cacheDir, { sha256: a.sha256, size: a.size, metadata: metadataOf(a) }, createReadStream(file));
    } catch (e) {
      return fail(`storing in ${opts.cacheDir} failed: ${(e as Error).message}`);
    }
    opts.onEvent?.({ type: 'fetched', pkg: a, url, bytes: a.size, ms: Math.round(performance.now() - t0) });
    return ok(path);
  } finally {
    await rm(file, { force: true });
  }
}

export interface InputsFetchOptions {
  formats: Formats;
  /** The definition's variables: where each format's artifacts are (`locate`). */
  vars: Readonly<Record<string, string>>;
  cacheDir: string;
  /** For the formats' `verify`: the sandbox, and a scratch folder (one per format inside). */
  sandbox: Sandbox;
  workDir: string;
  /** The buildroot a stage's `verify` may use, when the caller has it (format.ts, VerifyContext). */
  buildrootOf?: (stage: StageDef) => Promise<SandboxSpec['buildroot'] | undefined>;
  signal?: AbortSignal;
  /**
   * Where progress goes (the core never prints): `progress` events while fetching (bytes) and
   * verifying, then one `fetched` event when anything was downloaded.
   */
  logger?: Logger;
}

/** At most one byte-progress event per this many ms. */
const PROGRESS_EVERY_MS = 250;

/**
 * Every artifact of the given stages' package inputs, in the cache and verified (sha256, then
 * the format's `verify`, stage by stage): sha256 → content path, or one message naming what
 * failed and what to do. A stage whose variables name no mirror fails only when something must
 * be downloaded.
 */
export async function fetchPackageInputs(stages: readonly StageDef[], o: InputsFetchOptions): Promise<Result<Map<string, string>, string>> {
  const bound = stages.flatMap((stage) => stage.inputs.flatMap((input) => (input.kind === 'packages' ? [{ stage, input }] : [])));
  const all = packagesOf(stages);
  if (all.length === 0) return ok(new Map());
  for (const { input } of bound) if (!o.formats.has(input.format)) throw new Error(`Internal error: a package input of unknown format ${input.format}`);
  const started = performance.now();
  let fetched = 0;
  let bytes = 0;
  // Bytes of every artifact, found or fetched: the live line's "12 MiB of 45 MiB".
  const total = all.reduce((n, a) => n + a.size, 0);
  let done = 0;
  // Downloads under way: bytes received so far, by sha256.
  const receiving = new Map<string, number>();
  let shown = 0;
  const progress = (state: 'running' | 'done'): void => {
    const now = performance.now();
    if (state === 'running' && now - shown < PROGRESS_EVERY_MS) return;
    shown = now;
    let partial = 0;
    for (const n of receiving.values()) partial += n;
    o.logger?.log({ type: 'progress', task: 'fetch', subject: 'packages', state, unit: 'bytes', done: Math.min(total, done + partial), total });
  };
  const paths = new Map<string, string>();
  for (const [name, format] of o.formats) {
    const mine = bound.filter((b) => b.input.format === name);
    if (mine.length === 0) continue;
    // Each artifact's URL comes from the stage that locked it (an RPM stage names its repositories).
    const locators = new Map<string, () => string>();
    let missingMirror: Diagnostic | undefined;
    for (const { input } of mine) {
      const where = format.locate(o.vars, input.request);
      input.artifacts.forEach((a, i) =>
        locators.set(a.sha256, () => {
          if (!where.ok) {
            missingMirror ??= where.error;
            throw new Error(where.error.message);
          }
          return where.value(a, input.entries[i]);
        }),
      );
    }
    let got: Map<string, string>;
    try {
      got = await fetchArtifacts(packagesOf(mine.map((b) => b.stage)).filter((a) => locators.has(a.sha256)), {
        locate: (a) => locators.get(a.sha256)!(),
        cacheDir: o.cacheDir,
        ...(o.signal ? { signal: o.signal } : {}),
        onEvent: (e) => {
          if (e.type === 'fetched') {
            fetched++;
            bytes += e.bytes;
          }
          if (e.type === 'receiving') receiving.set(e.pkg.sha256, e.bytes);
          if (e.type === 'fetched' || e.type === 'cached' || e.type === 'failed') receiving.delete(e.pkg.sha256);
          if (e.type === 'fetched' || e.type === 'cached') done += e.pkg.size;
          if (e.type !== 'start' && e.type !== 'retry') progress('running');
        },
      });
    } catch (e) {
      progress('done');
      // Cancelled too: the build reports it and stops, as for any other fetch failure.
      const m = missingMirror as Diagnostic | undefined;
      if (m) return fail(`fetching packages failed: ${m.message}${m.hint ? `\nhint: ${m.hint}` : ''}`);
      const message = (e as Error).message;
      const gone = /HTTP 404/.test(message) ? `\nhint: ${format.goneHint ? `${format.goneHint}; ` : ''}run \`imgmake lock --update\` to lock the current ones` : '';
      return fail(`fetching packages failed: ${message}${gone}`);
    }
    progress('done');
    if (format.verify) {
      for (const { stage, input } of mine) {
        const subject = `${stage.pipeline}.${stage.id}`;
        o.logger?.log({ type: 'progress', task: 'verify', subject, state: 'running' });
        const workDir = join(o.workDir, name);
        await mkdir(workDir, { recursive: true });
        const buildroot = await o.buildrootOf?.(stage);
        const v = await format
          .verify(
            input.artifacts.map((artifact, i) => ({ artifact, entry: input.entries[i], path: got.get(artifact.sha256)! })),
            {
              request: input.request,
              vars: o.vars,
              sandbox: o.sandbox,
              workDir,
              logFile: join(o.workDir, 'verify.log'),
              ...(buildroot ? { buildroot } : {}),
              ...(o.signal ? { signal: o.signal } : {}),
            },
          )
          .catch((e: Error) => fail([e.message]));
        o.logger?.log({ type: 'progress', task: 'verify', subject, state: 'done' });
        if (!v.ok) return fail(`verifying the ${format.noun} of ${stage.pipeline}.${stage.id} failed:\n  ${v.error.join('\n  ')}`);
      }
    }
    for (const [k, v] of got) paths.set(k, v);
  }
  if (fetched) o.logger?.log({ type: 'fetched', packages: all.length, fetched, bytes, ms: Math.round(performance.now() - started) });
  return ok(paths);
}
