/**
 * `--ostree-parent http://HOST/REPO`: the parent's history, fetched on the host before anything
 * is keyed, as a small content-addressed repository the commit stage reads like any parent
 * folder (docs/ostree.md, "History from an HTTP repository").
 *
 *     GET URL/config                 an ostree repository, archive mode (what HTTP serves)
 *     GET URL/refs/heads/REF         the ref's commit now: C
 *     GET URL/objects/C[:2]/C[2:].commit   verified: its sha256 is C (a commit object's checksum
 *                                    is the sha256 of its bytes); its parent P, then P's, …
 *
 * and writes CACHEDIR/ostree-parents/C/ as an archive repository holding only those commit
 * objects, REF → C, and each commit marked partial (`state/X.commitpartial`, ostree's mark for
 * "metadata without content"): made in a temporary folder and renamed into place, so it exists
 * whole or not at all, and reused while the server's REF still names C.
 *
 * Why this keeps the commit stage's key honest: the folder is the stage's `parent` file input,
 * keyed by its content digest (key.ts `digestPath`), and its content is a function of C alone
 * (fixed names and modes, bytes verified against their checksums). A new commit on the server
 * gives another C, another folder, another key; the same C, the same key: the URL is never in
 * the key. Stages never reach the network: the fetch is here, on the host, before the plan.
 *
 * A parent whose history stops (a commit the server does not hold: it pruned it, or it too
 * had a partial parent) ends the walk there, as `ostree pull --depth=-1` does; the tip itself
 * missing is an error. Detached metadata (`.commitmeta`: signatures) is not fetched: it is not
 * covered by the checksum, and the new commit's history does not need it.
 *
 * It does not pull file content (the new commit does not share objects with its parent through
 * this) and knows no summary file, static deltas or collections: refs/heads/REF is what every
 * archive repository served over HTTP has.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describeFetchError } from '../net/download.js';
import { fail, ok, type Result } from '../result.js';

/** What was fetched: the ref's commit now, the commits written (newest first), the folder. */
export interface FetchedParent {
  commit: string;
  commits: string[];
  dir: string;
  /** False when the folder was there already (the server's REF has not moved). */
  fetched: boolean;
}

/** Why the parent could not be fetched: the words for the message, the URL that failed. */
export interface ParentFetchFailure {
  message: string;
  url: string;
}

export interface FetchParentOptions {
  /** The repository's URL (http or https), without a trailing slash needed. */
  url: string;
  ref: string;
  /** Where fetched parents live: each under its commit checksum. */
  parentsDir: string;
  signal?: AbortSignal;
  /** Per request: no answer within this long fails it (default 30 s). */
  timeoutMs?: number;
  /** Commits walked at most (default 100 000: no real history is that long). */
  maxCommits?: number;
}

const CHECKSUM = /^[0-9a-f]{64}$/;
/** A commit object larger than this is not one (its metadata is a few strings). */
const MAX_COMMIT_BYTES = 16 * 1024 * 1024;
/** The config ostree init writes for an archive repository, byte for byte. */
const ARCHIVE_CONFIG = '[core]\nrepo_version=1\nmode=archive-z2\n';

export async function fetchOstreeParent(o: FetchParentOptions): Promise<Result<FetchedParent, ParentFetchFailure>> {
  const base = o.url.replace(/\/+$/, '');
  const get = (path: string, max: number) => getBytes(`${base}/${path}`, max, o);

  const config = await get('config', 64 * 1024);
  if (!config.ok) return config.error.status === 404 ? fail({ message: `no ostree repository there (its config: HTTP 404)`, url: `${base}/config` }) : config;
  const mode = /^\s*mode\s*=\s*(\S+)/m.exec(config.value.toString('utf8'))?.[1];
  if (mode !== 'archive-z2' && mode !== 'archive') {
    return fail({ message: `the repository's mode is ${mode ?? 'not said'}, and only an archive-mode repository is served over HTTP`, url: `${base}/config` });
  }
  const head = await get(`refs/heads/${o.ref}`, 1024);
  if (!head.ok) return head.error.status === 404 ? fail({ message: `the repository has no ref ${o.ref}`, url: `${base}/refs/heads/${o.ref}` }) : head;
  const commit = head.value.toString('utf8').trim();
  if (!CHECKSUM.test(commit)) return fail({ message: `ref ${o.ref} holds no commit checksum`, url: `${base}/refs/heads/${o.ref}` });

  const dir = join(o.parentsDir, commit);
  if (await exists(join(dir, 'config'))) return ok({ commit, commits: [], dir, fetched: false });

  const objects: Array<{ checksum: string; bytes: Buffer }> = [];
  const max = o.maxCommits ?? 100_000;
  for (let c: string | null = commit; c !== null && objects.length < max; ) {
    const path = `objects/${c.slice(0, 2)}/${c.slice(2)}.commit`;
    const got = await get(path, MAX_COMMIT_BYTES);
    if (!got.ok) {
      // The history ends where the server's does; the tip must be there.
      if (got.error.status === 404 && objects.length > 0) break;
      return fail(got.error.status === 404 ? { message: `the repository has no commit object for ${o.ref}'s commit ${c}`, url: got.error.url } : got.error);
    }
    const sum = createHash('sha256').update(got.value).digest('hex');
    if (sum !== c) return fail({ message: `the commit object's sha256 is ${sum}, not the checksum ${c} it is stored under`, url: `${base}/${path}` });
    objects.push({ checksum: c, bytes: got.value });
    const parent = commitParent(got.value);
    if (!parent.ok) return fail({ message: `commit ${c}: ${parent.error}`, url: `${base}/${path}` });
    c = parent.value;
  }

  // Written whole into a temporary folder, then renamed: the folder exists complete or not at
  // all. Fixed modes, so its digest is a function of the commits alone.
  await mkdir(o.parentsDir, { recursive: true });
  const tmp = await mkdtemp(join(o.parentsDir, `.${commit.slice(0, 12)}-`));
  try {
    for (const d of ['extensions', 'objects', 'refs/heads', 'refs/mirrors', 'refs/remotes', 'state', 'tmp/cache']) await mkdir(join(tmp, d), { recursive: true });
    await writeFile(join(tmp, 'config'), ARCHIVE_CONFIG);
    await mkdir(dirname(join(tmp, 'refs/heads', o.ref)), { recursive: true });
    await writeFile(join(tmp, 'refs/heads', o.ref), `${commit}\n`);
    for (const { checksum, bytes } of objects) {
      await mkdir(join(tmp, 'objects', checksum.slice(0, 2)), { recursive: true });
      await writeFile(join(tmp, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.commit`), bytes);
      await writeFile(join(tmp, 'state', `${checksum}.commitpartial`), '');
    }
    await fixModes(tmp);
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another build fetched the same commit at the same time: its folder is the same.
      if (!(await exists(join(dir, 'config')))) throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return ok({ commit, commits: objects.map((x) => x.checksum), dir, fetched: true });
}

/**
 * The parent checksum of a commit object (GVariant `(a{sv}aya(say)sstayay)`), null for none.
 * The tuple's first two members vary in size, so their end offsets are the last two framing
 * offsets of the container (stored last member first, each as wide as the container's size
 * needs); the parent is the bytes between them: 32, or none.
 */
export function commitParent(bytes: Buffer): Result<string | null, string> {
  const size = bytes.length;
  const w = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8;
  if (size < 2 * w) return fail('not a commit object (too short)');
  const read = (at: number): number => (w === 1 ? bytes.readUInt8(at) : w === 2 ? bytes.readUInt16LE(at) : w === 4 ? bytes.readUInt32LE(at) : Number(bytes.readBigUInt64LE(at)));
  const metaEnd = read(size - w);
  const parentEnd = read(size - 2 * w);
  if (metaEnd > parentEnd || parentEnd > size - 2 * w) return fail('not a commit object (its framing offsets do not fit)');
  const parent = bytes.subarray(metaEnd, parentEnd);
  if (parent.length === 0) return ok(null);
  if (parent.length !== 32) return fail(`not a commit object (a parent of ${parent.length} bytes)`);
  return ok(parent.toString('hex'));
}

type GetFailure = ParentFetchFailure & { status?: number };

async function getBytes(url: string, max: number, o: FetchParentOptions): Promise<Result<Buffer, GetFailure>> {
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 30_000);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (e) {
    o.signal?.throwIfAborted();
    return fail({ message: `unreachable: ${describeFetchError(e, signal)}`, url });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    return fail({ message: `HTTP ${res.status} ${res.statusText}`.trim(), url, status: res.status });
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body) {
      n += chunk.length;
      if (n > max) {
        await res.body.cancel().catch(() => undefined);
        return fail({ message: `more than ${max} bytes: not what an ostree repository holds there`, url });
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (e) {
    o.signal?.throwIfAborted();
    return fail({ message: `cut: ${describeFetchError(e, signal)}`, url });
  }
  return ok(Buffer.concat(chunks));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Folders 0755, files 0644, whatever the umask: the folder's digest holds modes. */
async function fixModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await fixModes(p);
    else await chmod(p, 0o644);
  }
}
