/**
 * The RPM format's part of imgmake.lock, and what the core fetches for it. Pure.
 *
 *     lockRequestOf(request)          → RpmLockRequest (what a lock keeps: no URL)
 *     lockJson(lockRequest, packages) → { request, packages } (fixed key order)
 *     parseLockEntry(request, pkgs)   → Result<{ request, packages }, string>
 *     packagesDigest(packages)        → Digest (the package stage's key part)
 *     keyOptionsOf(options)           → the stage's options as its key holds them (no URL)
 *     artifactOf(p), packageUrl(repos, p)
 *
 * A lock records, per package, the repository id and the location below that repository's
 * base URL — never a URL — so one lock fetches from any mirror of the same repositories (the
 * URLs come from the stage's options, which come from definition variables). One entry:
 *
 *     {"name":"imgtest-logger-a","epoch":1,"version":"2.0","release":"3","arch":"noarch",
 *      "repo":"test","location":"imgtest-logger-a-2.0-3.noarch.rpm","size":6229,"sha256":"…"}
 */
import { formatDigest, type Digest } from '../../ids.js';
import { canonicalJson, sha256 } from '../../key.js';
import { fail, ok, type Result } from '../../result.js';
import { sortRpms } from './resolve.js';
import type { LockedRpm, RpmRepo, RpmRequest } from './types.js';

/** The request as a lock keeps it: repositories by id and their checks, no URL. */
export interface RpmLockRequest {
  repos: { id: string; gpgcheck: boolean; repo_gpgcheck: boolean }[];
  packages: string[];
  arch: string;
  releasever: string;
}

export function lockRequestOf(req: RpmRequest): RpmLockRequest {
  return {
    repos: req.repos.map((r) => ({ id: r.id, gpgcheck: r.gpgcheck ?? true, repo_gpgcheck: r.repo_gpgcheck ?? false })),
    packages: [...req.packages],
    arch: req.arch,
    releasever: req.releasever,
  };
}

/**
 * An rpm.install stage's options as its cache key holds them: each repository without the URLs
 * that only say where its packages are (`baseurl`, `metalink`, `mirrorlist`, `gpgkey`), the rest
 * as given. The lock's digest pins what is installed, so the same stage built from another
 * mirror (a variable changed) is the cached tree; rules/rpm.install reads none of these. Pure.
 */
export function keyOptionsOf<O extends { repos: RpmRepo[] }>(options: O): O {
  return { ...options, repos: options.repos.map(({ baseurl: _b, metalink: _m, mirrorlist: _l, gpgkey: _k, ...rest }) => rest) };
}

export function lockJson(req: RpmLockRequest, packages: readonly LockedRpm[]): { request: object; packages: object[] } {
  return {
    request: {
      repos: req.repos.map((r) => ({ id: r.id, gpgcheck: r.gpgcheck, repo_gpgcheck: r.repo_gpgcheck })),
      packages: req.packages,
      arch: req.arch,
      releasever: req.releasever,
    },
    packages: sortRpms([...packages]).map((p) => ({
      name: p.name,
      epoch: p.epoch,
      version: p.version,
      release: p.release,
      arch: p.arch,
      repo: p.repo,
      location: p.location,
      size: p.size,
      sha256: p.sha256,
    })),
  };
}

const NAME = /^[A-Za-z0-9_.+-]+$/;
const EVR_PART = /^[A-Za-z0-9._+~^]+$/;
const ARCH = /^[a-z0-9_]+$/;
const REPO_ID = /^[A-Za-z0-9_.-]+$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** Checks a lock entry read from JSON; the message says where (`packages[2] (bash): …`). */
export function parseLockEntry(request: unknown, packages: unknown): Result<{ request: RpmLockRequest; packages: LockedRpm[] }, string> {
  if (!isObject(request)) return fail('request: expected an object');
  const extra = unknownKey(request, ['repos', 'packages', 'arch', 'releasever']);
  if (extra) return fail(`request: unknown field ${extra}`);
  if (!Array.isArray(request.repos) || request.repos.length === 0) return fail('request.repos: expected a non-empty list');
  const repos: RpmLockRequest['repos'] = [];
  for (const [i, r] of request.repos.entries()) {
    if (!isObject(r) || typeof r.id !== 'string' || !REPO_ID.test(r.id) || typeof r.gpgcheck !== 'boolean' || typeof r.repo_gpgcheck !== 'boolean' || unknownKey(r, ['id', 'gpgcheck', 'repo_gpgcheck'])) {
      return fail(`request.repos[${i}]: expected {"id": ID, "gpgcheck": BOOL, "repo_gpgcheck": BOOL}, got ${JSON.stringify(r)}`);
    }
    repos.push({ id: r.id, gpgcheck: r.gpgcheck, repo_gpgcheck: r.repo_gpgcheck });
  }
  if (!Array.isArray(request.packages) || !request.packages.every((p) => typeof p === 'string' && p.length > 0)) return fail('request.packages: expected a list of package specs');
  if (typeof request.arch !== 'string' || !ARCH.test(request.arch)) return fail(`request.arch: expected an rpm architecture, got ${JSON.stringify(request.arch)}`);
  if (typeof request.releasever !== 'string') return fail('request.releasever: expected a string');
  const req: RpmLockRequest = { repos, packages: request.packages as string[], arch: request.arch, releasever: request.releasever };

  if (!Array.isArray(packages)) return fail('packages: expected a list');
  const ids = new Set(repos.map((r) => r.id));
  const out: LockedRpm[] = [];
  for (const [i, p] of packages.entries()) {
    const where = `packages[${i}]${isObject(p) && typeof p.name === 'string' ? ` (${p.name})` : ''}`;
    if (!isObject(p)) return fail(`${where}: expected an object`);
    const e = checkPackage(p, ids);
    if (e) return fail(`${where}: ${e}`);
    const pkg = p as unknown as LockedRpm;
    const prev = out[out.length - 1];
    if (prev && `${prev.name}\0${prev.arch}` >= `${pkg.name}\0${pkg.arch}`) return fail(`${where}: packages must be sorted by name and arch without duplicates (after ${prev.name}.${prev.arch})`);
    out.push(pkg);
  }
  return ok({ request: req, packages: out });
}

function checkPackage(p: Record<string, unknown>, repos: Set<string>): string | undefined {
  const extra = unknownKey(p, ['name', 'epoch', 'version', 'release', 'arch', 'repo', 'location', 'size', 'sha256']);
  if (extra) return `unknown field ${extra}`;
  const str = (k: string, re: RegExp, what: string) => (typeof p[k] === 'string' && re.test(p[k] as string) ? undefined : `${k}: expected ${what}, got ${JSON.stringify(p[k])}`);
  return (
    str('name', NAME, 'a package name') ??
    (Number.isSafeInteger(p.epoch) && (p.epoch as number) >= 0 ? undefined : `epoch: expected a non-negative integer, got ${JSON.stringify(p.epoch)}`) ??
    str('version', EVR_PART, 'an rpm version') ??
    str('release', EVR_PART, 'an rpm release') ??
    str('arch', ARCH, 'an rpm architecture') ??
    (typeof p.repo === 'string' && repos.has(p.repo) ? undefined : `repo: expected one of the request's repository ids (${[...repos].join(', ')}), got ${JSON.stringify(p.repo)}`) ??
    (typeof p.location === 'string' && /^[^\s/][^\s]*\.rpm$/.test(p.location) && !p.location.split('/').includes('..') && !/^[a-z]+:/.test(p.location)
      ? undefined
      : `location: expected a relative path to an .rpm, got ${JSON.stringify(p.location)}`) ??
    (Number.isSafeInteger(p.size) && (p.size as number) > 0 ? undefined : `size: expected a positive integer, got ${JSON.stringify(p.size)}`) ??
    str('sha256', SHA256, '64 lowercase hex digits')
  );
}

/**
 * The digest of a locked set: what an rpm stage's tree depends on — each package's NEVRA and
 * sha256; not its repository, location or size, which only say where to fetch it.
 */
export function packagesDigest(packages: readonly LockedRpm[]): Digest {
  const rows = sortRpms([...packages]).map((p) => [p.name, p.epoch, p.version, p.release, p.arch, p.sha256]);
  return formatDigest(sha256(canonicalJson({ format: 'rpm', packages: rows })));
}

/** `[epoch:]version-release`. */
export function evr(p: Pick<LockedRpm, 'epoch' | 'version' | 'release'>): string {
  return `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`;
}

/**
 * What the core fetches for one locked package (the shape of the package layer's Artifact):
 * the file is named as rpmbuild names it (`name-version-release.arch.rpm`), unique within a
 * locked set (rpm cannot install two packages of one name and arch with different EVRs from
 * one lock); `where` is `REPO:LOCATION`.
 */
export function artifactOf(p: LockedRpm): { name: string; version: string; sha256: string; size: number; file: string; where: string; metadata: Record<string, string | number> } {
  return {
    name: p.name,
    version: evr(p),
    sha256: p.sha256,
    size: p.size,
    file: `${p.name}-${p.version}-${p.release}.${p.arch}.rpm`,
    where: `${p.repo}:${p.location}`,
    metadata: { arch: p.arch, repo: p.repo },
  };
}

/**
 * The URL of a locked package: its repository's base URL (from the stage's options) joined
 * with its location, each path segment URL-encoded. A repository known only by metalink or
 * mirrorlist has no base URL here: the caller must pick a mirror (an Error says so).
 */
export function packageUrl(repos: readonly Pick<RpmRepo, 'id' | 'baseurl'>[], p: Pick<LockedRpm, 'repo' | 'location' | 'name'>, subst: { arch: string; releasever: string }): string {
  const repo = repos.find((r) => r.id === p.repo);
  if (!repo) throw new Error(`${p.name} comes from repository ${p.repo}, which the stage no longer names: update the lock`);
  if (!repo.baseurl) throw new Error(`repository ${p.repo} has no baseurl (only a metalink or mirrorlist): imgmake fetches from a baseurl; set one (a mirror of your choice)`);
  const base = repo.baseurl.replaceAll('$basearch', subst.arch).replaceAll('$arch', subst.arch).replaceAll('$releasever', subst.releasever).replace(/\/+$/, '');
  return `${base}/${p.location.split('/').map(encodeURIComponent).join('/')}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKey(o: Record<string, unknown>, known: string[]): string | undefined {
  const k = Object.keys(o).find((x) => !known.includes(x));
  return k === undefined ? undefined : JSON.stringify(k);
}
