/**
 * A package input as the engine core sees it: locked artifacts, fetched and verified, bound
 * as one directory. This is the only module of src/packages/ the core (definition, key,
 * sandbox) imports, and it imports nothing but ids.ts: so no import cycle, not even one of
 * type imports, runs through the package layer. What a format supplies is in format.ts.
 */
import type { Digest } from '../ids.js';

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

