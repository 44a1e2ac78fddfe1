/**
 * The package layer as the rest of imgmake sees it: the contract (format.ts), imgmake.lock
 * (lockfile.ts), attaching locks to stages (attach.ts) and fetching artifacts (fetch.ts). The
 * formats themselves are in their folders, listed in formats.ts. docs/packages.md explains it.
 */
export type { Artifact, Fetched, Formats, PackageFormat, PackageInput, ResolveContext, VerifyContext } from './format.js';
export { LOCK_FILE, LOCK_FILE_VERSION, locksText, readLocks, type Lock, type LockTable } from './lockfile.js';
export { attachLocks, packageInput, packageInputsOf, packagesOf, packageStages, type LockOptions, type Locked, type PackageStage } from './attach.js';
export { artifactKey, fetchArtifacts, fetchPackageInputs, missingArtifacts, storedArtifacts, type FetchEvent, type FetchOptions, type InputsFetchOptions } from './fetch.js';
