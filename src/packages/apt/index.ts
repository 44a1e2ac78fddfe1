/**
 * The apt format: Debian packages, resolved by apt in the sandbox (lock.ts), fetched from the
 * mirror the `debian_mirror` and `debian_security_mirror` variables name (by default the
 * host's apt sources, sources.ts), installed by rules/apt.install from the `debs` input: the
 * .debs and an `override` file (PACKAGE PRIORITY SECTION, the mirror's values, which the
 * install selects by).
 *
 * Trust: the InRelease signatures are checked against the Debian archive keyring when a lock
 * is made (an extra repository's, from the stage's `repositories` option, against its own
 * keys); after that the lock's sha256 is the trust, so there is no `verify` hook.
 *
 * Extra repositories only say where packages come from: the lock keeps their ids, suites,
 * components and key digests (not their URIs), each package names its repository as `source`,
 * and the stage's key leaves the option out (`keyOptions`): what they add to the tree changes
 * the key through the locked set's digest alone.
 *
 * This module is the format's whole face to the core (format.ts); lock.ts, sources.ts and
 * database.ts (an image's installed packages, for its SBOM) are its parts.
 */
import { basename } from 'node:path';
import { diagnostic, type Diagnostic } from '../../diagnostic.js';
import { formatDigest, type Digest } from '../../ids.js';
import { canonicalJson, sha256 } from '../../key.js';
import { fail, ok, type Result } from '../../result.js';
import type { HostDefault } from '../../load/vars.js';
import type { PackageFormat } from '../format.js';
import { lockJson, lockRequestOf, MirrorUnreachable, parseLockEntry, resolvePackages, SignatureFailed, type DebianVariant, type ExtraRepository, type LockedPackage, type LockRequestMeta } from './lock.js';
import { hostDebianMirror, type DebianMirror } from './sources.js';
import { database } from './database.js';
import { installFrom, repositoryFiles } from './repositories.js';

/** The mirror the variables name; a position-less usage error when there is none. */
export function mirrorOf(vars: Readonly<Record<string, string>>): Result<DebianMirror, Diagnostic> {
  const archive = vars['debian_mirror'];
  if (!archive) {
    return fail(diagnostic('usage', 'no Debian mirror: this host has no apt sources naming one', undefined, 'set it with --var debian_mirror=URL or IMGMAKE_VAR_debian_mirror=URL'));
  }
  const security = vars['debian_security_mirror'];
  return ok({ archive: archive.replace(/\/+$/, ''), ...(security ? { security: security.replace(/\/+$/, '') } : {}) });
}

/**
 * The URL of a locked package on a mirror or an extra repository (each path segment
 * URL-encoded, as apt does).
 */
export function packageUrl(mirror: DebianMirror, pkg: Pick<LockedPackage, 'source' | 'path' | 'name'>, repositories: readonly ExtraRepository[] = []): string {
  const extra = pkg.source === 'archive' || pkg.source === 'security' ? undefined : repositories.find((r) => r.id === pkg.source);
  if (pkg.source !== 'archive' && pkg.source !== 'security' && !extra) throw new Error(`${pkg.name} comes from repository "${pkg.source}", which the stage's repositories do not name`);
  const base = extra ? extra.uri : pkg.source === 'security' ? mirror.security : mirror.archive;
  if (!base) throw new Error(`${pkg.name} comes from the security archive, but the mirror names none`);
  return `${base.replace(/\/+$/, '')}/${pkg.path.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * The digest of a locked package set: what a package stage's tree depends on. Each package's
 * name, version, architecture, sha256 and the mirror's priority and section (the install
 * selects by priority); not its path, size or source, which only say where to fetch it.
 * (Unchanged since key schema v1: a Debian package stage keeps its key.)
 */
export function packagesDigest(packages: readonly LockedPackage[]): Digest {
  const rows = packages
    .map((p) => [p.name, p.version, p.architecture, p.sha256, p.priority, p.section])
    .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
  return formatDigest(sha256(canonicalJson(rows)));
}

/** `debian_mirror` and `debian_security_mirror` from the apt sources under ROOT. */
export async function hostVariables(root = '/'): Promise<Record<string, HostDefault>> {
  const m = await hostDebianMirror(root).catch(() => undefined);
  const missing = (name: string, what: string) =>
    `imgmake reads it from this host's apt sources (/etc/apt/sources.list.d), which name no ${what}: ` +
    `set it with --var ${name}=URL, or IMGMAKE_VAR_${name}=URL in the environment`;
  return {
    debian_mirror: { value: m?.archive, missing: missing('debian_mirror', 'Debian archive') },
    debian_security_mirror: { value: m?.security, missing: missing('debian_security_mirror', 'Debian security archive') },
  };
}

interface AptOptions {
  suite: string;
  components: string[];
  architecture: 'amd64';
  variant: DebianVariant;
  packages: string[];
  repositories?: ExtraRepository[];
}

/**
 * A stage's request: what the lock keeps (LockRequestMeta) and, apart, the extra
 * repositories with their URIs and keys, which resolving and fetching need and the lock does not keep.
 */
export interface AptRequest {
  meta: LockRequestMeta;
  repositories: ExtraRepository[];
}

export const apt: PackageFormat<AptRequest, LockedPackage, LockRequestMeta> = {
  name: 'apt',
  input: 'debs',
  noun: '.debs',
  legacyLocks: true,

  request(options, vars) {
    const o = options as unknown as AptOptions;
    // Which archives the mirror has is part of the request (a lock made without the security
    // archive is another lock); the URLs are not.
    const m = vars['debian_mirror'] !== undefined ? mirrorOf(vars) : undefined;
    const mirror = m?.ok ? m.value : { archive: '' };
    const repositories = o.repositories ?? [];
    return { meta: lockRequestOf({ mirror, suite: o.suite, components: o.components, architecture: o.architecture, variant: o.variant, packages: o.packages, repositories }), repositories };
  },

  lockRequest: (r) => r.meta,

  // The rule installs the locked .debs and never reads `repositories`: where packages come
  // from is not the tree's business, what they are is (the locked set's digest, in the key).
  keyOptions: ({ repositories: _r, ...rest }) => rest,

  describe: ({ meta: m }) => `${m.suite} ${m.variant}${m.packages.length ? ` + ${m.packages.join(' ')}` : ''}${m.repositories ? ` (also from ${m.repositories.map((r) => r.id).join(', ')})` : ''}`,

  async resolve({ meta: m, repositories }, ctx) {
    const mirror = mirrorOf(ctx.vars);
    if (!mirror.ok) return mirror;
    try {
      const packages = await resolvePackages(
        { mirror: mirror.value, suite: m.suite, components: m.components, architecture: m.architecture, variant: m.variant, packages: m.packages, repositories },
        { sandbox: ctx.sandbox, workDir: ctx.workDir, logFile: ctx.logFile, ...(ctx.signal ? { signal: ctx.signal } : {}) },
      );
      return ok(packages);
    } catch (e) {
      if (e instanceof MirrorUnreachable) {
        return fail(diagnostic('network', e.message, undefined, 'check the network and the mirror (--var debian_mirror=URL or IMGMAKE_VAR_debian_mirror names another), then lock again; nothing was written'));
      }
      if (e instanceof SignatureFailed) {
        return fail(
          diagnostic(
            'signature',
            e.message,
            undefined,
            e.extra
              ? 'check that the repository\'s gpgkeys (the stage\'s repositories[].keys) hold the key its Release file is signed with (gpg --show-keys FILE shows a key\'s id), and that nothing between you and it changed its files; nothing was written'
              : 'check the mirror (--var debian_mirror=URL names another) and that the host\'s debian-archive-keyring is current; nothing was written',
          ),
        );
      }
      return fail((e as Error).message);
    }
  },

  lock: {
    parse: (request, packages) => parseLockEntry(request, packages),
    json: (request, packages) => lockJson(packages, request),
  },

  artifact: (p) => ({
    name: p.name,
    version: p.version,
    sha256: p.sha256,
    size: p.size,
    file: basename(p.path),
    where: `${p.source}:${p.path}`,
    metadata: { name: p.name, version: p.version, architecture: p.architecture, path: p.path },
  }),

  digest: packagesDigest,

  files: (packages) => ({ override: packages.map((p) => `${p.name} ${p.priority} ${p.section}\n`).join('') }),

  locate(vars, request) {
    const mirror = mirrorOf(vars);
    if (!mirror.ok) return mirror;
    return ok((a, p) => {
      // The mirror's packages by their locator alone (callers may hand no entry); an extra
      // repository's by the entry's source, whose id may hold a ":".
      const m = /^(archive|security):(.*)$/.exec(a.where);
      if (m) return packageUrl(mirror.value, { name: a.name, source: m[1]!, path: m[2]! });
      if (!p) throw new Error(`Internal error: ${a.name} comes from a repository (${a.where}), but no lock entry was given`);
      return packageUrl(mirror.value, p, request?.repositories ?? []);
    });
  },

  goneHint: 'a Debian mirror keeps only the current version of each package',

  hostVariables,

  database,

  repositoryFiles,

  installFrom,
};

/** The format, as formats.ts finds it. */
export const format = apt as PackageFormat;
