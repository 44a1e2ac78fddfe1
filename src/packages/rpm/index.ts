/**
 * The rpm format: RPM packages from rpm-md repositories, resolved by dnf in a buildroot
 * (resolve.ts), locked by NEVRA, sha256, repository id and location (lock.ts), fetched from the
 * repositories' base URLs, verified by sha256 and by signature against each repository's
 * gpgkey (verify.ts), installed by rules/rpm.install from the `rpms` input.
 *
 * `format` is the package layer's contract (src/packages/format.ts) for RPM. Because an RPM
 * repository's URL is in the stage's options (not in a variable, as Debian's mirror is):
 * - a lock entry is matched by `lockRequest(request)`, which leaves the URLs out, so a lock
 *   made against one mirror builds from another;
 * - `locate` takes the stage's request beside the variables (the base URLs are there);
 * - `resolve` and `verify` need the stage's buildroot (dnf and rpmkeys are never the host's)
 *   and `verify` the request (which repositories have gpgcheck, and their gpgkey URLs).
 *
 * Trust: repomd.xml's signature when `repo_gpgcheck` (at lock time, by dnf); each package's
 * sha256 from the lock; each package's signature when `gpgcheck` (at fetch time, rpmkeys).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Sandbox } from '../../sandbox/run.js';
import type { SandboxSpec } from '../../sandbox/spec.js';
import { fail, ok, type Result } from '../../result.js';
import { diagnostic, type Diagnostic } from '../../diagnostic.js';
import type { Artifact, Fetched, PackageFormat, VerifyContext } from '../format.js';
import { artifactOf, keyOptionsOf, lockJson, lockRequestOf, packagesDigest, packageUrl, parseLockEntry, type RpmLockRequest } from './lock.js';
import { requestOf, resolve, type RpmStageOptions } from './resolve.js';
import { verify, type FetchedRpm } from './verify.js';

/** dnf's (librepo's, curl's) words for a repository it could not reach. */
const UNREACHABLE = /Couldn't connect|Could not resolve host|Failed to connect|Connection refused|Timeout was reached|Network is unreachable|No route to host/;
import { nevra, type LockedRpm, type RpmRequest } from './types.js';

export type { LockedRpm, RpmRepo, RpmRequest, RpmResolveError, RpmVerifyError } from './types.js';
export type { RpmLockRequest } from './lock.js';
export { nevra } from './types.js';
export { requestOf, resolve, problemOf, RESOLVER_SCRIPT } from './resolve.js';
export { verify, checksum, type FetchedRpm, type VerifyOptions } from './verify.js';
export { artifactOf, keyOptionsOf, lockJson, lockRequestOf, packagesDigest, packageUrl, parseLockEntry, evr } from './lock.js';

/** What resolve and verify run with (the contract's ResolveContext, buildroot required in effect). */
export interface RpmContext {
  sandbox: Sandbox;
  workDir: string;
  logFile: string;
  buildroot?: SandboxSpec['buildroot'];
  signal?: AbortSignal;
}

const NEEDS_BUILDROOT =
  'the rpm format runs dnf and rpmkeys in the stage\'s buildroot, never on the host: give the pipeline a build: pipeline whose tree has dnf, python3-dnf, rpm and ca-certificates (see docs/rpm.md), and build it first';

export const rpmFormat = {
  name: 'rpm',
  input: 'rpms',
  noun: '.rpms',
  needsBuildroot: true,
  goneHint: 'the repository no longer serves this package (repositories drop superseded builds)',

  request(options: Record<string, unknown>): RpmRequest {
    return requestOf(options as RpmStageOptions);
  },
  /** The part of a request a lock entry is matched by (no URLs). */
  lockRequest(request: RpmRequest): RpmLockRequest {
    return lockRequestOf(request);
  },
  /** The stage's options without the repositories' URLs (baseurl, metalink, mirrorlist, gpgkey): a mirror is not an input. */
  keyOptions(options: Record<string, unknown>): Record<string, unknown> {
    return keyOptionsOf(options as unknown as RpmStageOptions) as Record<string, unknown>;
  },
  describe(request: RpmRequest): string {
    return `${request.repos.map((r) => r.id).join(',')} ${request.arch} + ${request.packages.join(' ')}`;
  },

  async resolve(request: RpmRequest, ctx: RpmContext): Promise<Result<LockedRpm[], Diagnostic | string>> {
    if (!ctx.buildroot || ctx.buildroot.kind !== 'tree') return fail(NEEDS_BUILDROOT);
    const r = await resolve(request, { sandbox: ctx.sandbox, buildroot: ctx.buildroot.mount, workDir: ctx.workDir, logFile: ctx.logFile, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    if (r.ok) return r;
    // A repository dnf could not reach is the run's failure (exit 1), not the request's. dnf
    // often says only "All mirrors were tried": the repositories are asked once more from here.
    const gone = r.error.reason === 'rpm-repo-failed' ? (UNREACHABLE.test(r.error.message) ? r.error.message : await unreachable(request)) : undefined;
    if (gone !== undefined) {
      return fail(diagnostic('network', `a repository could not be reached while locking: ${gone}`, undefined, 'check the network and the repositories\' baseurl (or metalink, mirrorlist), then lock again; nothing was written'));
    }
    return fail(r.error.message);
  },

  lock: {
    parse: parseLockEntry,
    json: lockJson,
  },
  artifact: artifactOf,
  digest: packagesDigest,

  /** A function from a locked package to its URL, from the request's base URLs (the variables hold no mirror for RPM). */
  locate(_vars: Readonly<Record<string, string>>, request: RpmRequest): Result<(artifact: Artifact, entry: LockedRpm) => string, Diagnostic> {
    return ok((_a, p) => packageUrl(request.repos, p, request));
  },

  /**
   * Checks the fetched files of a stage: sha256, then signatures for repositories with
   * gpgcheck, against the keys their gpgkey URLs serve. Failures name the package.
   */
  async verify(fetched: readonly Fetched<LockedRpm>[], ctx: VerifyContext<RpmRequest>): Promise<Result<void, string[]>> {
    if (!ctx.buildroot || ctx.buildroot.kind !== 'tree') return fail([NEEDS_BUILDROOT]);
    const request = ctx.request;
    const keys = await fetchKeys(request, ctx.signal);
    if (!keys.ok) return fail([keys.error]);
    const pkgs: FetchedRpm[] = fetched.map((f) => ({ file: f.path, locked: f.entry }));
    const r = await verify(pkgs, {
      repos: request.repos,
      keys: keys.value,
      sandbox: ctx.sandbox,
      buildroot: ctx.buildroot.mount,
      workDir: ctx.workDir,
      logFile: ctx.logFile,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return r.ok ? ok(undefined) : fail([r.error.message]);
  },
};

/** The rpm format, as the package layer finds it (src/packages/formats.ts). */
/**
 * The first repository whose URL does not answer at all (refused, unresolvable, timed out), as
 * `ID (URL): why`; undefined when every one answers (any HTTP status: a 404 is the request's
 * problem, which dnf's own message says).
 */
async function unreachable(request: RpmRequest): Promise<string | undefined> {
  for (const repo of request.repos) {
    const url = repo.baseurl ?? repo.metalink ?? repo.mirrorlist;
    if (!url) continue;
    try {
      const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return `${repo.id} (${url}): ${cause?.code ?? cause?.message ?? (e as Error).message}`;
    }
  }
  return undefined;
}

export const format = rpmFormat as unknown as PackageFormat;

/**
 * The armored keys of every repository with gpgcheck, read from its gpgkey URLs (http(s) or
 * file://). A key that cannot be read fails the whole set, naming the repository and URL.
 */
export async function fetchKeys(request: RpmRequest, signal?: AbortSignal): Promise<Result<Record<string, string[]>, string>> {
  const out: Record<string, string[]> = {};
  for (const repo of request.repos) {
    if (!(repo.gpgcheck ?? true)) continue;
    const keys: string[] = [];
    for (const url of repo.gpgkey ?? []) {
      try {
        if (url.startsWith('file://')) keys.push(await readFile(fileURLToPath(url), 'utf8'));
        else {
          const res = await fetch(url, { ...(signal ? { signal } : {}) });
          if (!res.ok) return fail(`repository ${repo.id}: gpgkey ${url}: HTTP ${res.status}`);
          keys.push(await res.text());
        }
      } catch (e) {
        return fail(`repository ${repo.id}: gpgkey ${url}: ${(e as Error).message}`);
      }
      if (!/-----BEGIN PGP PUBLIC KEY BLOCK-----/.test(keys[keys.length - 1]!)) return fail(`repository ${repo.id}: gpgkey ${url} is not an armored OpenPGP public key`);
    }
    out[repo.id] = keys;
  }
  return ok(out);
}

/** For messages: the package a locked entry is (`name-[epoch:]version-release.arch`). */
export function describePackage(p: LockedRpm): string {
  return nevra(p);
}
