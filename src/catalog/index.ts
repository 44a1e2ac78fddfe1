/**
 * The built-in catalog of image definitions (catalog/ in the package): its index
 * (catalog/catalog.yaml), what `imgmake list` shows, and which definition `imgmake build TYPE
 * [--distro D] [--arch A]` builds.
 *
 *     const cat = await readCatalog();                        // the index, checked
 *     listRows(cat.value, filters)                            // distro × arch × type rows
 *     pickImage(cat.value, { type: 'qcow2' })                 // the definition for a build
 *
 * The definitions are ordinary imgmake.yaml files read by the ordinary loader; the index only
 * repeats what `list` shows without loading them (test/catalog.test.ts checks they agree).
 * This module does not read blueprints or write definitions: compose.ts does.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { packageRoot } from '../package-root.js';
import { METADATA, OPTIONS, SECTIONS, SUPPORT, shortName } from '../blueprint/index.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { closest, listOf } from '../load/suggest.js';
import { fail, ok, type Result } from '../result.js';

/** catalog/ of this package. */
export const CATALOG_DIR = join(packageRoot, 'catalog');

export const CATALOG_INDEX = 'catalog.yaml';

/** The defaults a bare `imgmake build qcow2` builds. */
export const DEFAULT_DISTRO = 'debian-12';
export const DEFAULT_ARCH = 'x86_64';

export interface CatalogType {
  name: string;
  /** The file the target exports. */
  filename: string;
  /** The disk's default size (`3G`); absent for an archive. */
  size?: string;
}

export interface CatalogImage {
  distro: string;
  arch: string;
  /** The root definition, absolute. */
  definition: string;
  /**
   * Where a blueprint's packages go: the part (absolute) that defines the package stage, and
   * the kernel package in it, which a blueprint's kernel.name replaces (absent: no kernel.name).
   */
  /** `format`: the package format of that stage (a folder of src/packages/): how its repositories are written. */
  packages: { part: string; pipeline: string; stage: string; format: string; kernel?: string };
  /** Where a blueprint's filesystems go: the disk pipeline's partition stage and root filesystem stage. */
  disk: { part: string; pipeline: string; partitions: string; root: string };
  /** The stage writing /etc/fstab, which gets their entries. */
  fstab: { part: string; pipeline: string; stage: string };
  /**
   * The ostree commit stage, which `--ostree-parent` gives a parent input (absent: no ostree
   * types); for an ostree type, the package stage a blueprint's packages go to (in the same
   * part), and where its stages go: a pipeline on `blueprint.base`, which the variable
   * `blueprint.var` then names as the base of the tree that is committed.
   */
  ostree?: { part: string; pipeline: string; stage: string; packages: { pipeline: string; stage: string }; blueprint: { base: string; var: string } };
  types: CatalogType[];
}

/** Reads and checks the index; a broken index is the package's fault (Internal error). */
export async function readCatalog(dir = CATALOG_DIR): Promise<CatalogImage[]> {
  return parseCatalog(await readFile(join(dir, CATALOG_INDEX), 'utf8'), dir);
}

export function parseCatalog(text: string, dir: string): CatalogImage[] {
  const doc = parse(text) as { images?: unknown };
  const bad = (why: string): never => {
    throw new Error(`Internal error: ${join(dir, CATALOG_INDEX)}: ${why}`);
  };
  if (!doc || !Array.isArray(doc.images)) bad('expected "images:", a list');
  return (doc.images as Record<string, any>[]).map((e, i) => {
    const str = (v: unknown, what: string): string => (typeof v === 'string' && v !== '' ? v : bad(`images[${i}].${what} must be a string`));
    const types = e['types'] as Record<string, { filename?: unknown; size?: unknown }> | undefined;
    if (!types || typeof types !== 'object') bad(`images[${i}].types must be a mapping`);
    const p = (e['packages'] ?? {}) as Record<string, unknown>;
    const dk = (e['disk'] ?? {}) as Record<string, unknown>;
    const fs = (e['fstab'] ?? {}) as Record<string, unknown>;
    const os = e['ostree'] as Record<string, unknown> | undefined;
    return {
      distro: str(e['distro'], 'distro'),
      arch: str(e['arch'], 'arch'),
      definition: join(dir, str(e['definition'], 'definition')),
      packages: { part: join(dir, str(p['part'], 'packages.part')), pipeline: str(p['pipeline'], 'packages.pipeline'), stage: str(p['stage'], 'packages.stage'), format: str(p['format'], 'packages.format'), ...(p['kernel'] !== undefined ? { kernel: str(p['kernel'], 'packages.kernel') } : {}) },
      disk: { part: join(dir, str(dk['part'], 'disk.part')), pipeline: str(dk['pipeline'], 'disk.pipeline'), partitions: str(dk['partitions'], 'disk.partitions'), root: str(dk['root'], 'disk.root') },
      fstab: { part: join(dir, str(fs['part'], 'fstab.part')), pipeline: str(fs['pipeline'], 'fstab.pipeline'), stage: str(fs['stage'], 'fstab.stage') },
      ...(os ? { ostree: ostreeEntry(os, dir, str) } : {}),
      types: Object.entries(types!).map(([name, t]) => ({
        name,
        filename: str(t.filename, `types.${name}.filename`),
        ...(t.size !== undefined ? { size: str(t.size, `types.${name}.size`) } : {}),
      })),
    };
  });
}

function ostreeEntry(os: Record<string, unknown>, dir: string, str: (v: unknown, what: string) => string): NonNullable<CatalogImage['ostree']> {
  const pk = (os['packages'] ?? {}) as Record<string, unknown>;
  const bp = (os['blueprint'] ?? {}) as Record<string, unknown>;
  return {
    part: join(dir, str(os['part'], 'ostree.part')),
    pipeline: str(os['pipeline'], 'ostree.pipeline'),
    stage: str(os['stage'], 'ostree.stage'),
    packages: { pipeline: str(pk['pipeline'], 'ostree.packages.pipeline'), stage: str(pk['stage'], 'ostree.packages.stage') },
    blueprint: { base: str(bp['base'], 'ostree.blueprint.base'), var: str(bp['var'], 'ostree.blueprint.var') },
  };
}

/** One row of `imgmake list`: an image type of one distro on one architecture. */
export interface ListRow {
  distro: string;
  arch: string;
  type: string;
  filename: string;
  size?: string;
  /** The blueprint options this type supports (short names, support.ts), container rows left out. */
  options: string[];
}

export const FILTER_KEYS = ['distro', 'arch', 'type'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export interface Filter {
  key: FilterKey;
  /** A glob: `*` any run of characters, `?` one. */
  glob: string;
}

/** `distro:debian-*` → a filter; anything else is a usage diagnostic. */
export function parseFilter(text: string): Result<Filter, Diagnostic> {
  const colon = text.indexOf(':');
  const key = colon > 0 ? text.slice(0, colon) : '';
  if (!(FILTER_KEYS as readonly string[]).includes(key) || colon === text.length - 1) {
    const guess = closest(key, [...FILTER_KEYS]);
    return fail(
      diagnostic('usage', `--filter ${text}: not KEY:VALUE with KEY one of ${listOf([...FILTER_KEYS])}`, undefined, `${guess && key ? `did you mean ${guess}:${text.slice(colon + 1)}? ` : ''}write --filter type:qcow2 or --filter distro:debian-*`),
    );
  }
  return ok({ key: key as FilterKey, glob: text.slice(colon + 1) });
}

export function globMatch(glob: string, value: string): boolean {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(value);
}

/** Every distro × arch × type, those matching every filter (filters on one key: any of them). */
export function listRows(images: readonly CatalogImage[], filters: readonly Filter[] = []): ListRow[] {
  const rows: ListRow[] = [];
  for (const img of images) {
    for (const t of img.types) {
      const row: ListRow = { distro: img.distro, arch: img.arch, type: t.name, filename: t.filename, ...(t.size ? { size: t.size } : {}), options: supportedOptions(t.name) };
      const pass = FILTER_KEYS.every((k) => {
        const fs = filters.filter((f) => f.key === k);
        return fs.length === 0 || fs.some((f) => globMatch(f.glob, row[k]));
      });
      if (pass) rows.push(row);
    }
  }
  return rows;
}

/** The options of support.ts's table for `type`, short names, without rows that only hold others. */
export function supportedOptions(type: string): string[] {
  const supported = SUPPORT[type] ?? [];
  // Metadata, and sections that only hold other options (their supported options are listed).
  const leaveOut = [...METADATA, ...SECTIONS];
  return OPTIONS.filter((o) => supported.includes(o.option) && !leaveOut.includes(o.option)).map((o) => shortName(o.option));
}

export interface Pick {
  type: string;
  distro?: string | undefined;
  arch?: string | undefined;
}

/** The image for a build; an unknown distro, arch or type is a usage diagnostic naming the known ones. */
export function pickImage(images: readonly CatalogImage[], p: Pick): Result<{ image: CatalogImage; type: CatalogType }, Diagnostic> {
  const distro = p.distro ?? DEFAULT_DISTRO;
  const arch = p.arch ?? DEFAULT_ARCH;
  const unknown = (what: string, value: string, known: string[]): Result<never, Diagnostic> => {
    const guess = closest(value, known);
    return fail(diagnostic('usage', `the catalog has no ${what} ${JSON.stringify(value)}`, undefined, `${guess ? `did you mean ${guess}? ` : ''}it has ${listOf(known)}; imgmake list shows every image`));
  };
  const byDistro = images.filter((i) => i.distro === distro);
  if (byDistro.length === 0) return unknown('distro', distro, [...new Set(images.map((i) => i.distro))]);
  const image = byDistro.find((i) => i.arch === arch);
  if (!image) return unknown(`architecture for ${distro}`, arch, byDistro.map((i) => i.arch));
  const type = image.types.find((t) => t.name === p.type);
  if (!type) return unknown(`image type for ${distro} ${arch}`, p.type, image.types.map((t) => t.name));
  return ok({ image, type });
}

export { userCacheDir } from './user-cache.js';
