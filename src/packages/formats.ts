/**
 * The table of package formats: the one place that names them. A new format is a folder
 * (src/packages/NAME/, whose index.ts exports a PackageFormat) and one line here
 * (docs/packages.md has the checklist).
 *
 * Only the CLI's composition (cli/context.ts, cli/build.ts) imports this module; the engine
 * core takes a `Formats` map as an argument, so it never imports a format folder.
 */
import { apt } from './apt/index.js';
import type { Formats, PackageFormat } from './format.js';
import type { LockTable } from './lockfile.js';

const ALL: PackageFormat[] = [apt as PackageFormat];

export const FORMATS: Formats = new Map(ALL.map((f) => [f.name, f]));

/** The formats, and the one a version 1 imgmake.lock's entries (which name none) belong to. */
export const LOCK_TABLE: LockTable = { formats: FORMATS, legacy: apt.name };
