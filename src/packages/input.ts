/**
 * A package input as the engine core sees it: locked artifacts, fetched and verified, bound
 * as one directory. This is the only module of src/packages/ the core (definition, key,
 * sandbox) imports, and it imports nothing but ids.ts: so no import cycle, not even one of
 * type imports, runs through the package layer. What a format supplies is in format.ts.
 */
import type { Digest } from '../ids.js';
import type { Repository } from '../blueprint/index.js';
import type { Diagnostic } from '../diagnostic.js';

/**
 * One file a package input binds: what the core fetches, verifies and links. Example (Debian's):
 * `{ name: 'hello', version: '2.10-3', sha256: '…', size: 53000,
 *    file: 'hello_2.10-3_amd64.deb', where: 'archive:pool/main/h/hello/hello_2.10-3_amd64.deb' }`.
 */
export interface Artifact {
  /** For messages and `cache ls`. */
  name: string;
  version: string;
  /** 64 lowercase hex digits: the artifact's identity in the cache. */
  sha256: string;
  size: number;
  /** Its name in the stage's input directory (no `/`). */
  file: string;
  /** Where to fetch it, in the format's own terms; `locate` turns it into a URL. */
  where: string;
  /** Kept beside it in the cache (cache ls shows `name` and `version`). */
  metadata?: Record<string, string | number>;
}

/**
 * A stage's package input as the definition carries it (InputDef kind `packages`): attached
 * from imgmake.lock, never written by a user.
 */
export interface PackageInput {
  /** The format's `input`: the directory's name under /run/imgmake/inputs/. */
  name: string;
  format: string;
  artifacts: Artifact[];
  /** The format's digest of the locked set: the input's part of the stage's key. */
  digest: Digest;
  /** Extra files written beside the artifacts (name → content). */
  files: Record<string, string>;
  /**
   * The format's own data, which the core passes back and never reads: the stage's request
   * (for `locate` and `verify`: an RPM request holds its repositories' URLs) and the locked
   * entries, in the order of `artifacts`.
   */
  request: unknown;
  entries: readonly unknown[];
  /**
   * The stage's options as its key holds them, when the format leaves some out (`keyOptions`
   * in format.ts: an RPM stage's repository URLs). Absent: all of them. Set from the stage's
   * own options when its lock is attached, so a key never sees options of another stage.
   */
  keyOptions?: Record<string, unknown>;
}


/**
 * One package installed in a tree, as a format's package database says (`PackageDatabase.read`),
 * in the format-neutral terms an SBOM needs (src/sbom/ writes it as an SPDX package). Example
 * (Debian's): `{ name: 'hello', version: '2.10-3', architecture: 'amd64',
 *   supplier: 'Organization: Santiago Vila (sanvila@debian.invalid)', license: 'GPL-3.0-or-later',
 *   sha256: '…', fileName: 'hello_2.10-3_amd64.deb', purl: 'pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12' }`.
 */
export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
  /** SPDX's `supplier`: `Organization: NAME (EMAIL)` or `Person: …`; absent when the database names none. */
  supplier?: string;
  /**
   * The declared license as an SPDX license expression (`GPL-2.0-or-later OR Artistic-1.0`),
   * only where the package says so in machine-readable form; a name SPDX does not list is a
   * `LicenseRef-…` that `licenseRefs` defines.
   */
  license?: string;
  licenseRefs?: { id: string; name: string; text: string }[];
  /** The sha256 of the package file it was installed from (the lock's), when the lock has it. */
  sha256?: string;
  fileName?: string;
  /** Its package URL (purl.dev): `pkg:deb/debian/NAME@VERSION?arch=ARCH`. */
  purl: string;
}

/**
 * A format's reader of the package database a tree holds (the optional `database` member of
 * a PackageFormat). It never runs anything: the core copies the files it asks for out of the
 * tree (in the sandbox, each path resolved inside the tree, only regular files, bounded in
 * size: the tree is untrusted) and hands them over as text; the reader parses them.
 *
 *     want(∅) → [the database file, …] ─copy─▶ want(its text) → [each package's license file, …]
 *       ─copy─▶ want(…) → [] ─▶ read(files, lockedEntries) → InstalledPackage[]
 */
export interface PackageDatabase {
  /** A path (relative to the tree's root) whose presence says the tree holds this database. */
  readonly marker: string;
  /**
   * The paths to copy, given the files copied so far (path → text; absent: not a regular
   * file in the tree). The core copies those it has not asked for yet and calls again, until
   * nothing new is asked (at most 4 rounds).
   */
  want(files: ReadonlyMap<string, string>): string[];
  /**
   * The installed packages, sorted by name then architecture. ENTRIES: the locked entries of
   * this format's stages in the definition (for each package file's sha256). A message when
   * the database cannot be read.
   */
  read(files: ReadonlyMap<string, string>, entries: readonly unknown[]): { ok: true; value: InstalledPackage[] } | { ok: false; error: string };
}

/**
 * A blueprint's repositories → the files that make them known to the image's own package
 * manager (a format's `repositoryFiles`, format.ts); errors pushed at the blueprint's lines.
 * src/catalog/customize.ts writes what it returns into the image.
 */
export type RepositoryWriter = (repos: readonly Repository[], errors: Diagnostic[]) => { path: string; content: string; mode?: string }[];

/**
 * A blueprint's repositories marked for installing (composer's `install_from`) → options added
 * to the image's package stage, so its lock resolves from them too (a format's `installFrom`,
 * format.ts; Debian's: `{repositories: [...]}`); errors pushed at the blueprint's lines. The
 * options only say where packages come from: the format leaves them out of the stage's key
 * (`keyOptions`), so they change it through the locked set alone. Repositories not marked are
 * not passed; an empty result adds nothing.
 */
export type RepositoryOptions = (repos: readonly Repository[], errors: Diagnostic[]) => Record<string, unknown>;
