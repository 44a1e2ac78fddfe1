/**
 * The RPM format's data: what a stage asks for (repositories in rpm-md form and package specs),
 * what a lock holds for each package, and the ways resolving and verifying can fail.
 *
 * This module only describes; resolve.ts asks dnf, verify.ts checks fetched files, and
 * rules/rpm.install installs them.
 */

/**
 * One repository, as a `.repo` file describes it. At least one of `baseurl`, `metalink`,
 * `mirrorlist`. `$basearch` and `$releasever` are expanded by dnf.
 *
 * Example: `{ id: 'fedora', metalink: '${fedora_metalink}', gpgkey: ['${fedora_key_url}'],
 * gpgcheck: true }` — the URLs come from definition variables, never from imgmake.
 */
export interface RpmRepo {
  /** dnf's repo id: `[a-zA-Z0-9_.-]+`. The lock records it for each package. */
  id: string;
  baseurl?: string;
  metalink?: string;
  mirrorlist?: string;
  /** URLs (or file: paths) of the armored public keys the packages are signed with. */
  gpgkey?: string[];
  /** Check each package's signature against `gpgkey` (default true). */
  gpgcheck?: boolean;
  /** Check repomd.xml's detached signature against `gpgkey` while resolving (default false). */
  repo_gpgcheck?: boolean;
}

/** What to resolve: the rule's options reduced to what decides the package set. */
export interface RpmRequest {
  repos: RpmRepo[];
  /** dnf specs: names, `name-version`, capabilities (`libimgtest >= 1.0`), sorted, unique. */
  packages: string[];
  /** The image's architecture (`$basearch`): `x86_64`. */
  arch: string;
  /** `$releasever` (`40`, `9`); empty when the repos do not use it. */
  releasever: string;
}

/**
 * One locked package. Example: `{ name: 'imgtest-logger-a', epoch: 1, version: '2.0',
 * release: '3', arch: 'noarch', repo: 'test', location: 'imgtest-logger-a-2.0-3.noarch.rpm',
 * size: 6229, sha256: '…' }`. `location` is relative to the repository's base URL (never a
 * mirror's host), so one lock fetches from any mirror of that repository.
 */
export interface LockedRpm {
  name: string;
  epoch: number;
  version: string;
  release: string;
  arch: string;
  /** The id of the repository (RpmRepo.id) it came from. */
  repo: string;
  location: string;
  size: number;
  sha256: string;
}

/** `name-[epoch:]version-release.arch`, as rpm and dnf print it (the epoch only when non-zero). */
export function nevra(p: Pick<LockedRpm, 'name' | 'epoch' | 'version' | 'release' | 'arch'>): string {
  return `${p.name}-${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
}

/** Why a resolution failed; every variant carries a `message` fit to show the user as it is. */
export type RpmResolveError =
  /** A requested spec matches no package of any repository. */
  | { reason: 'rpm-no-such-package'; spec: string; message: string }
  /**
   * A dependency nobody provides. `chain` runs from a requested package to the missing
   * capability: `['imgtest-broken-app', 'imgtest-broken', 'imgtest-missing']`.
   */
  | { reason: 'rpm-unresolvable'; chain: string[]; problems: string[]; message: string }
  /** Two packages that cannot be installed together: `package` conflicts with `with`. */
  | { reason: 'rpm-conflict'; package: string; with: string; problems: string[]; message: string }
  /** A repository could not be read (unreachable, bad metadata, a repomd.xml signature that fails). */
  | { reason: 'rpm-repo-failed'; message: string }
  /** dnf itself failed; `logFile` has its output. */
  | { reason: 'rpm-resolver-failed'; message: string; logFile: string }
  | { reason: 'rpm-bad-request'; message: string };

/** Why a fetched package was refused. */
export type RpmVerifyError =
  | { reason: 'rpm-checksum-mismatch'; package: string; file: string; expected: string; actual: string; message: string }
  | { reason: 'rpm-bad-signature'; package: string; file: string; detail: string; message: string }
  | { reason: 'rpm-no-key'; package: string; repo: string; message: string }
  | { reason: 'rpm-verifier-failed'; message: string; logFile: string };
