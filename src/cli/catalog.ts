/**
 * The catalog on the command line: `imgmake list`, and the choice `build`, `plan`, `boot`,
 * `watch` and `lock` make between a project's imgmake.yaml and the catalog.
 *
 * The choice (docs/catalog.md):
 *   1. `--blueprint`, `--distro` or `--arch` given: the catalog (with `-f`: a usage error).
 *   2. else `-f FILE`, or an imgmake.yaml here or in a folder above: that project, exactly as
 *      without the catalog.
 *   3. else a TYPE named (`imgmake build qcow2`): the catalog's definition of TYPE.
 *   4. else: the "no imgmake.yaml" usage error, which now names `imgmake list`.
 *
 * A catalog build composes its definition (src/catalog/compose.ts) into
 * CACHE/catalog/DISTRO-ARCH-ID/ (ID: a digest of the blueprint's absolute path), where its
 * imgmake.lock lives too; the cache is the per-user one unless --cache or IMGMAKE_CACHE.
 *
 * The catalog, the blueprint readers and the package formats are imported when a catalog build
 * or `list` needs them: a project's command (case 2) loads none of them (docs/bench.md, "Start-up").
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { CatalogImage, Filter } from '../catalog/index.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import { cacheDirOf, findDefinition, parseVars, type CatalogBuild, type GlobalOptions } from './context.js';
import { parseDocument } from 'yaml';
import { EXIT_OK } from './exit.js';
import { out, reportDiagnostics } from './output.js';
import { jsonLine } from '../logging/index.js';

/** The options build, plan, boot, watch and lock take to build from the catalog. */
export interface CatalogOptions {
  blueprint?: string;
  distro?: string;
  arch?: string;
  /** `--output-dir DIR`: where targets are exported (as --out). */
  outputDir?: string;
  /** `--ostree-parent PATH|URL`: the previous build's ostree repository (a tarball, a folder or an HTTP URL) for an ostree type. */
  ostreeParent?: string;
}

/**
 * GlobalOptions for the command: unchanged for a project, with `catalog` (and the output folder)
 * for a catalog build. `types`: the TARGET arguments (a catalog build takes at most one).
 */
export async function selectCatalog(types: string[], o: GlobalOptions, co: CatalogOptions): Promise<Result<GlobalOptions, Diagnostic[]>> {
  const asked = co.blueprint !== undefined || co.distro !== undefined || co.arch !== undefined || co.ostreeParent !== undefined;
  const withOut = (x: GlobalOptions): GlobalOptions => (co.outputDir !== undefined ? { ...x, out: co.outputDir } : x);
  if (asked && o.file !== undefined) {
    return fail([diagnostic('usage', '--blueprint, --distro and --arch build from the catalog, and -f names a project definition', undefined, 'give one or the other: a project builds its own definition')]);
  }
  if (!asked && (o.file !== undefined || findDefinition(process.cwd()) || types.length === 0)) return ok(withOut(o));
  if (types.length > 1) {
    return fail([diagnostic('usage', `a catalog build makes one image type, not ${types.join(', ')}`, undefined, 'name one: imgmake build qcow2 --blueprint FILE; imgmake list shows them')]);
  }
  const { CATALOG_DIR, pickImage, readCatalog } = await import('../catalog/index.js');
  const { readBlueprint } = await import('../blueprint/index.js');
  const images = await readCatalog();
  // The blueprint's own distro and architecture, unless the command line names them.
  let distro = co.distro;
  let arch = co.arch;
  const bpFile = co.blueprint !== undefined ? resolve(co.blueprint) : undefined;
  let fromBlueprint: Diagnostic['loc'];
  if (bpFile) {
    const bp = await readBlueprint(bpFile);
    if (bp.ok) {
      const d = distro === undefined ? bp.value.distro : undefined;
      const a = arch === undefined ? bp.value.architecture : undefined;
      distro ??= d?.value;
      arch ??= a?.value;
      // An unknown name the blueprint gave is an error at its line.
      if (d && !images.some((i) => i.distro === d.value)) fromBlueprint = d.loc;
      else if (a && !images.some((i) => i.distro === distro && i.arch === a.value)) fromBlueprint = a.loc;
    }
  }
  const type = types[0] ?? 'qcow2';
  const picked = pickImage(images, { type, distro, arch });
  if (!picked.ok) return fail([fromBlueprint ? { ...picked.error, loc: fromBlueprint } : picked.error]);
  const { image } = picked.value;
  const parent = co.ostreeParent !== undefined ? ostreeParent(co.ostreeParent, image, type) : undefined;
  if (parent && !parent.ok) return fail([parent.error]);
  const id = createHash('sha256').update(bpFile ?? '').digest('hex').slice(0, 12);
  const catalogDir = join(cacheDirOf({ ...o, catalog: {} as CatalogBuild }, ''), 'catalog');
  const dir = join(catalogDir, `${image.distro}-${image.arch}-${bpFile ? id : 'plain'}`);
  // An HTTP parent is fetched (on each prepare: the server's ref may move) into a folder named
  // by its commit under parentsDir, which the definition then reads like a local parent.
  const parentsDir = join(catalogDir, 'ostree-parents');
  const remote = parent?.ok && parent.value.kind === 'url' ? { url: parent.value.url, ref: await ostreeRef(image, o) } : undefined;
  if (remote && !remote.ref.ok) return fail([remote.ref.error]);
  const catalog: CatalogBuild = {
    definition: join(dir, 'imgmake.yaml'),
    // A parent outside the project is read through its folder, as --allow-path would.
    allow: [CATALOG_DIR, ...(parent?.ok ? [parent.value.kind === 'path' ? dirname(parent.value.path) : parentsDir] : [])],
    ...(bpFile ? { blueprint: bpFile } : {}),
    prepare: async () => {
      let path = parent?.ok && parent.value.kind === 'path' ? parent.value.path : undefined;
      if (remote?.ref.ok) {
        const { fetchOstreeParent } = await import('../catalog/ostree-remote.js');
        const fetched = await fetchOstreeParent({ url: remote.url, ref: remote.ref.value, parentsDir });
        if (!fetched.ok) {
          return fail([diagnostic('network', `--ostree-parent ${remote.url}: ${fetched.error.message} (${fetched.error.url})`, undefined, 'check the URL (the repository\'s folder: the one holding config, objects/ and refs/) and that the server answers; nothing was built')]);
        }
        const f = fetched.value;
        process.stderr.write(`imgmake: ostree parent ${remote.url}: ${remote.ref.value} = ${f.commit}${f.fetched ? ` (${f.commits.length} commit${f.commits.length === 1 ? '' : 's'} fetched)` : ' (fetched before)'}\n`);
        path = f.dir;
      }
      return prepare(image, type, bpFile, dir, { ...co, ...(path !== undefined ? { ostreeParent: path } : {}) });
    },
  };
  return ok({ ...o, catalog, out: co.outputDir ?? o.out ?? resolve('out') });
}

/** Reads the blueprint (again: watch calls this on every change), checks it for `type`, writes the definition. */
async function prepare(image: CatalogImage, type: string, bpFile: string | undefined, dir: string, co: CatalogOptions): Promise<Result<void, Diagnostic[]>> {
  const { compose, writeComposed } = await import('../catalog/compose.js');
  let custom: Parameters<typeof compose>[0]['custom'] = { packages: [], vars: {}, stages: [], filesystems: [] };
  // An ostree type: the blueprint goes onto the ostree tree, its users in at first boot.
  const ostreeType = image.ostree !== undefined && type.startsWith('ostree-');
  if (bpFile) {
    const { checkSupport, readBlueprint, sortDiagnostics } = await import('../blueprint/index.js');
    const { mapBlueprint } = await import('../catalog/customize.js');
    const FORMATS = await (await import('../packages/formats.js')).packageFormats();
    const bp = await readBlueprint(bpFile);
    if (!bp.ok) return bp;
    const errors = [...checkSupport(bp.value, type), ...mismatch(bp.value.distro, co.distro, image.distro, 'distro'), ...mismatch(bp.value.architecture, co.arch, image.arch, 'architecture')];
    // The repositories are written the way the image's own package format reads them.
    const format = FORMATS.get(image.packages.format);
    const mapped = mapBlueprint(bp.value, { repositories: format?.repositoryFiles, installFrom: format?.installFrom, usersAtBoot: ostreeType });
    if (!mapped.ok) errors.push(...mapped.error);
    if (errors.length) return fail(sortDiagnostics(errors));
    if (mapped.ok) custom = mapped.value;
  }
  const parts: Record<string, string> = {};
  for (const part of [image.packages.part, image.disk.part, image.fstab.part, ...(image.ostree ? [image.ostree.part] : [])]) parts[part] = await readFile(part, 'utf8');
  const size = image.types.find((t) => t.name === type)?.size;
  const composed = compose({
    image,
    rootText: await readFile(image.definition, 'utf8'),
    parts,
    custom,
    ...(size ? { diskSize: size } : {}),
    ...(bpFile ? { blueprintFile: bpFile } : {}),
    ...(co.ostreeParent !== undefined ? { ostreeParent: co.ostreeParent } : {}),
    ...(ostreeType ? { ostreeType } : {}),
  });
  await writeComposed(dir, composed);
  return ok(undefined);
}

/** Where the parent comes from: a tarball or folder of this host, or an HTTP repository. */
type ParentSource = { kind: 'path'; path: string } | { kind: 'url'; url: string };

/**
 * `--ostree-parent PATH|URL` checked, for a type built from the ostree commit: a tarball or
 * folder of this host (absolute, no symlink), or an http(s) URL of an archive repository
 * (fetched by `prepare`, src/catalog/ostree-remote.ts). Another scheme is a usage error.
 */
function ostreeParent(given: string, image: CatalogImage, type: string): Result<ParentSource, Diagnostic> {
  if (!image.ostree || !type.startsWith('ostree-')) {
    return fail(diagnostic('usage', `--ostree-parent is for the ostree image types, not ${type}`, undefined, `build ${image.ostree ? 'ostree-commit' : 'an ostree type of another image'} with it, or leave it out`));
  }
  if (/^https?:\/\/[^/]/i.test(given)) {
    try {
      const u = new URL(given);
      if (u.search || u.hash || u.username || u.password) throw new Error('query, fragment or credentials');
      return ok({ kind: 'url', url: u.href.replace(/\/+$/, '') });
    } catch {
      return fail(diagnostic('usage', `--ostree-parent ${given}: not a repository URL`, undefined, 'give http://HOST/PATH of the repository folder (the one holding config, objects/ and refs/), without a query, a fragment or credentials'));
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(given)) {
    return fail(diagnostic('usage', `--ostree-parent ${given}: only http and https repositories are fetched`, undefined, 'give an http(s) URL of the repository, or a tarball or folder of this host'));
  }
  let path: string;
  try {
    path = realpathSync(resolve(given));
    const st = statSync(path);
    if (!st.isFile() && !st.isDirectory()) throw new Error('not a file or folder');
  } catch {
    return fail(diagnostic('usage', `--ostree-parent ${given}: no such file or folder`, undefined, 'give the ostree-repo.tar (or the repository folder) an earlier build of ostree-commit wrote'));
  }
  return ok({ kind: 'path', path });
}

/**
 * The ref the commit stage will use, which an HTTP parent is read at: `--var ostree_ref` (or
 * IMGMAKE_VAR_ostree_ref), else the ostree part's default.
 */
async function ostreeRef(image: CatalogImage, o: GlobalOptions): Promise<Result<string, Diagnostic>> {
  const given = parseVars(o.var, process.env);
  if (!given.ok) return fail(given.error);
  const set = given.value.vars[OSTREE_REF_VAR];
  if (set !== undefined) return ok(set);
  const part = parseDocument(await readFile(image.ostree!.part, 'utf8')).getIn(['vars', OSTREE_REF_VAR]);
  if (typeof part !== 'string' || part.includes('${')) throw new Error(`Internal error: ${image.ostree!.part} has no plain vars.${OSTREE_REF_VAR}`);
  return ok(part);
}

/** The variable the catalog's ostree part names its ref with. */
const OSTREE_REF_VAR = 'ostree_ref';

/** The blueprint's `distro = "…"` against a different `--distro`: an error at the blueprint's line. */
function mismatch(field: { value: string; loc: Diagnostic['loc'] } | undefined, given: string | undefined, used: string, what: string): Diagnostic[] {
  if (!field || given === undefined || field.value === used) return [];
  return [diagnostic('usage', `the blueprint asks for ${what} ${JSON.stringify(field.value)}, and the command line for ${JSON.stringify(used)}`, field.loc, `remove one of them, or make them agree`)];
}

export interface ListOptions {
  filter?: string[];
  json?: boolean;
}

/** `imgmake list`: one line per distro × arch × type (a JSON object with --json). */
export async function listCommand(o: GlobalOptions & ListOptions): Promise<number> {
  const { listRows, parseFilter, readCatalog } = await import('../catalog/index.js');
  const filters: Filter[] = [];
  for (const f of o.filter ?? []) {
    const parsed = parseFilter(f);
    if (!parsed.ok) return reportDiagnostics([parsed.error], o);
    filters.push(parsed.value);
  }
  const rows = listRows(await readCatalog(), filters);
  if (o.json) {
    for (const r of rows) out(jsonLine({ type: 'image', distro: r.distro, arch: r.arch, imageType: r.type, filename: r.filename, size: r.size ?? null, options: r.options }));
    return EXIT_OK;
  }
  if (rows.length === 0) {
    process.stderr.write('imgmake list: no image matches the filters (imgmake list without --filter shows them all)\n');
    return EXIT_OK;
  }
  const table = [['DISTRO', 'ARCH', 'TYPE', 'FILENAME', 'SIZE', 'BLUEPRINT OPTIONS'], ...rows.map((r) => [r.distro, r.arch, r.type, r.filename, r.size ?? '-', r.options.join(', ')])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) out(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  return EXIT_OK;
}
