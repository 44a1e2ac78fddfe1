/**
 * The table of package formats, made from the folders beside this module: every
 * `src/packages/NAME/` whose `index.ts` exports `format`, a PackageFormat whose `name` is NAME,
 * is one. So a new format is a folder and nothing else (docs/packages.md has the checklist),
 * and no file outside the format folders names a format.
 *
 *     packageFormats()  name → format, sorted by name (imported once, on the first call)
 *     lockTable(f)      the formats, and the format of a version 1 imgmake.lock's entries
 *                       (`legacyLocks`)
 *
 * A promise, not a top-level `await`: the CLI's bundle is one CommonJS script (scripts/bundle.ts,
 * for V8's code cache), which cannot hold a module that awaits at its top.
 *
 * Only composition imports this module (engine/project.ts: openEngine's and hostDefaults'
 * defaults); the engine core takes a `Formats` map as an argument, so it never imports a
 * format folder.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compiledSrc } from '../package-root.js';
import type { Formats, PackageFormat } from './format.js';
import type { LockTable } from './lockfile.js';

const FOLDER = /^[a-z][a-z0-9-]*$/;

/**
 * The formats in the subfolders of dist/src/packages/ (compiled: NAME/index.js), checked, sorted
 * by name. Each is imported by a template literal relative to this module, so the CLI's bundle
 * (scripts/bundle.ts) holds every folder beside this one that has an index.js, and the same
 * import finds it there; read from the folder's absolute path, a bundled CLI would load a second
 * copy of each format's modules.
 */
export async function discoverFormats(): Promise<Formats> {
  const dir = join(compiledSrc, 'packages');
  const out = new Map<string, PackageFormat>();
  for (const name of readdirSync(dir).sort()) {
    const index = join(dir, name, 'index.js');
    if (!FOLDER.test(name) || !existsSync(index)) continue;
    const mod = (await import(`./${name}/index.js`)) as { format?: PackageFormat };
    const f = mod.format;
    if (!f || f.name !== name) throw new Error(`Internal error: ${index} must export \`format\`, a package format named ${name}`);
    out.set(name, f);
  }
  return out;
}

/** FORMATS as imgmake.lock reads them: one format at most may own version 1's unnamed entries. */
export function lockTable(formats: Formats): LockTable {
  const legacy = [...formats.values()].filter((f) => f.legacyLocks);
  if (legacy.length !== 1) throw new Error(`Internal error: ${legacy.length} package formats claim version 1 lock entries`);
  return { formats, legacy: legacy[0]!.name };
}

let formats: Promise<Formats> | undefined;

/** The package formats, discovered on the first call. */
export function packageFormats(): Promise<Formats> {
  return (formats ??= discoverFormats());
}
