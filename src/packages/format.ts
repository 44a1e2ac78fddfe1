/**
 * The package-format contract: what a format (Debian's and RPM's today; Arch's or Alpine's
 * would be a folder beside them) must supply, and the one shape in which the engine core sees its result.
 *
 * What the core knows of packages is a **package input**: locked artifacts, each with a name, a
 * sha256, a size and where to fetch it, fetched into the cache, verified, and bound read-only
 * into the stage's sandbox as one directory. Its key is a digest the format computes over the
 * locked set, so the slow package stage is reused exactly as long as the lock says the same.
 *
 *     rule.json "lock": NAME ──▶ the format in src/packages/NAME/ (formats.ts finds them)
 *     stage options ─request()─▶ request ─(imgmake.lock has it? else resolve())─▶ entries
 *       ─artifact()/digest()/files()─▶ the stage's package input ─fetch (core)─▶ cache
 *       ─verify()─▶ bound at /run/imgmake/inputs/<input>/ ─▶ the rule installs them
 *
 * What a format does (all of it in its own folder, src/packages/NAME/):
 * - names itself (`name`, what rule.json's `lock` says) and the stage input its rule reads
 *   (`input`; the name is part of the stage's key);
 * - turns a stage's validated options into a **request**: everything that decides the package
 *   set but the mirror, canonical (sorted), so a lock made against one mirror builds from any;
 * - **resolves** a request into locked entries (network on, in the sandbox it is handed, with a
 *   scratch directory of its own that survives between runs);
 * - reads, validates and writes its entries in imgmake.lock (`lock.parse`, `lock.json`);
 * - maps each entry to an **artifact** (name, version, sha256, size, file name, `where`), says
 *   where `where` is on the network given the definition's variables (`locate`), and may check
 *   fetched files beyond their sha256 (`verify`: signatures);
 * - adds files the install needs beside the artifacts (`files`: Debian's index `override`);
 * - may provide host variables (Debian's: `debian_mirror`, read from the host's sources);
 * - may read the package database of a tree it installed (`database`: an image's SBOM).
 *
 * What the core does for it: finds the package stages, keeps imgmake.lock (one file, one entry
 * per distinct request, written atomically, unused entries dropped), decides when to resolve
 * (`imgmake lock`, `--locked`, `--update`), fetches every artifact once by sha256 (parallel,
 * resumable, verified while streaming: net/download.ts) into the cache, links them into the
 * stage's input directory, and puts the format's digest into the stage's key.
 *
 * This module holds types only. The core imports only input.ts (the package input's shape,
 * which imports nothing of the core), so no import cycle runs through src/packages/, not even
 * one of type imports. Formats never import the core's CLI; the core never imports
 * a format folder (only the table in formats.ts does, and only the CLI imports that).
 */
import type { Diagnostic } from '../diagnostic.js';
import type { Digest } from '../ids.js';
import type { Result } from '../result.js';
import type { Sandbox } from '../sandbox/run.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import type { HostDefault } from '../load/vars.js';
import type { Artifact, PackageDatabase, RepositoryOptions, RepositoryWriter } from './input.js';

export type { Artifact, InstalledPackage, PackageDatabase, PackageInput } from './input.js';

/** What a resolve runs with. */
export interface ResolveContext {
  /** The definition's variables (mirrors come from here). */
  vars: Readonly<Record<string, string>>;
  /** Runs the resolver; its spec may turn the network on. */
  sandbox: Sandbox;
  /** The format's scratch directory (created; kept between runs, e.g. for index caches). */
  workDir: string;
  /** Where the resolver's output is appended; named in failures. */
  logFile: string;
  /**
   * The stage's buildroot, when the caller has it in the cache (a resolver whose tools are not
   * on the host needs one). Absent: the format runs on the host's /usr, or says what to
   * build first.
   */
  buildroot?: SandboxSpec['buildroot'];
  signal?: AbortSignal;
}

/** What `verify` checks: each fetched artifact, its locked entry and the file the cache holds for it. */
export interface Fetched<ENTRY = unknown> {
  artifact: Artifact;
  entry: ENTRY;
  path: string;
}

/** What `verify` runs with: ResolveContext's, for the stage whose artifacts these are. */
export interface VerifyContext<REQ = unknown> {
  /** The stage's request (as `request()` made it). */
  request: REQ;
  vars: Readonly<Record<string, string>>;
  sandbox: Sandbox;
  /** The format's scratch directory (created; kept between runs). */
  workDir: string;
  logFile: string;
  /** The stage's buildroot, when the caller has it in the cache. */
  buildroot?: SandboxSpec['buildroot'];
  signal?: AbortSignal;
}

/**
 * One package format. REQ: its request (JSON, canonical); ENTRY: one locked package (JSON);
 * LREQ: the part of a request a lock keeps and is matched by (REQ itself unless `lockRequest`
 * says otherwise). Every method is pure unless it says otherwise.
 */
export interface PackageFormat<REQ = unknown, ENTRY = unknown, LREQ = REQ> {
  /** What rule.json's `lock` names, and an imgmake.lock entry's `format`. */
  readonly name: string;
  /** The stage input the artifacts are bound as (`debs`): the rule reads `$INPUTS/<input>`. */
  readonly input: string;
  /** Words for "packages" in messages: `.debs`. */
  readonly noun: string;
  /**
   * This format's locks were the only kind before imgmake.lock named formats: a version 1
   * file's entries, which name none, are read as this format's. At most one format says so.
   */
  readonly legacyLocks?: boolean;
  /**
   * `resolve` and `verify` run in the stage's buildroot (its pipeline's `build:` tree), never
   * on the host's tools (a resolver, a signature checker). A caller that locks or verifies
   * such a stage builds that pipeline first when the cache lacks it (src/engine/lock.ts),
   * and locks the other formats' stages before (the buildroot's own stages are among them).
   */
  readonly needsBuildroot?: boolean;

  /** The request a stage's validated options make (canonical: equal requests share a lock). */
  request(options: Record<string, unknown>, vars: Readonly<Record<string, string>>): REQ;
  /**
   * The part of REQUEST a lock keeps and is matched by, when not all of it: an RPM request's
   * repository URLs are left out, so a lock made against one mirror builds from any.
   * Absent: the whole request.
   */
  lockRequest?(request: REQ): LREQ;
  /**
   * The stage's validated options as its cache key holds them, when some of them only say
   * where packages come from: an RPM stage's repository URLs (Debian's mirror is a variable,
   * never an option, so Debian's format needs none). Only fields the format's rule does not read may go:
   * what the rule installs is the locked set, whose digest is in the key. Absent: all of them.
   * Example: `{repos: [{id: 'fedora', baseurl: 'https://…'}], packages: ['bash']}` →
   * `{repos: [{id: 'fedora'}], packages: ['bash']}`.
   */
  keyOptions?(options: Record<string, unknown>): Record<string, unknown>;
  /** A request in a few words, for messages: `bookworm essential + hello`. */
  describe(request: REQ): string;
  /**
   * Resolves REQUEST (network, sandbox). Entries sorted as the lock keeps them. A usage
   * diagnostic when the definition lacks what it needs (no mirror); an Error's message for a
   * resolver that failed (unknown package, unreachable mirror), which the core reports with
   * the stage's position.
   */
  resolve(request: REQ, ctx: ResolveContext): Promise<Result<ENTRY[], Diagnostic | string>>;

  /** imgmake.lock's view of one lock of this format. */
  lock: {
    /** Checks one entry's `request` and `packages` as read from JSON; the message says where. */
    parse(request: unknown, packages: unknown): Result<{ request: LREQ; packages: ENTRY[] }, string>;
    /** The JSON written: the request and one object per package, in a fixed key order. */
    json(request: LREQ, packages: readonly ENTRY[]): { request: object; packages: object[] };
  };

  artifact(entry: ENTRY): Artifact;
  /** The key digest of a locked set: every field that changes what is installed, no more. */
  digest(entries: readonly ENTRY[]): Digest;
  /** Files beside the artifacts in the input directory. */
  files?(entries: readonly ENTRY[]): Record<string, string>;
  /**
   * Where a stage's artifacts are fetched from, given the definition's variables and the
   * stage's request: a function from an artifact (and its entry) to its URL, or a usage diagnostic (no mirror). Called only when something must be
   * downloaded.
   */
  locate(vars: Readonly<Record<string, string>>, request: REQ): Result<(artifact: Artifact, entry: ENTRY) => string, Diagnostic>;
  /** Said after a download failed with HTTP 404 (the core adds "run imgmake lock --update"). */
  readonly goneHint?: string;
  /**
   * Checks fetched files beyond their sha256 (signatures); runs on each stage's artifacts
   * (that stage's request in `ctx`) before the stage runs. Failures name the artifact. Absent: the lock's sha256 is the trust (Debian's
   * InRelease signatures were checked when the lock was made).
   */
  verify?(fetched: readonly Fetched<ENTRY>[], ctx: VerifyContext<REQ>): Promise<Result<void, string[]>>;
  /**
   * Variables the host provides (the weakest of all: a file's `vars:` and `--var` win), read
   * under ROOT. Not pure: reads files.
   */
  hostVariables?(root: string): Promise<Record<string, HostDefault>>;
  /**
   * Reads the package database of a tree this format installed into (`imgmake build
   * --with-sbom`): which files to copy out of it and how to parse them (input.ts). Absent: the
   * format's images get no SBOM (the build says so).
   */
  readonly database?: PackageDatabase;
  /**
   * The files that make a blueprint's extra repositories known to the image's own package
   * manager (its sources and keys), errors pushed at the blueprint's lines. Pure. Absent: the
   * format's catalog images refuse `customizations.repositories`.
   */
  readonly repositoryFiles?: RepositoryWriter;
  /**
   * The options a blueprint's repositories marked `install_from` add to the image's package
   * stage, so they take part in its lock (input.ts). Pure. Absent: the format's catalog images
   * refuse `install_from = true`.
   */
  readonly installFrom?: RepositoryOptions;
}

/** The formats this imgmake knows, by name (formats.ts finds them; tests may hand in their own). */
export type Formats = ReadonlyMap<string, PackageFormat>;
