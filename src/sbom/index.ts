/**
 * `imgmake build --with-sbom`: beside each exported target, `out/TARGET.spdx.json`, an SPDX 2.3
 * document of the packages installed in the image, read from the image's own package database.
 *
 * Which tree holds that database: a disk image's tree holds a disk file, not a root
 * filesystem, so the reader looks for the **nearest pipeline, from the target's, whose tree
 * holds a package database**: breadth-first from the target's pipeline over what its tree is
 * made of (its `base:`, then the pipelines its stages take as inputs, in the order the stages
 * and their inputs are written), never a `build:` pipeline (a buildroot's packages are not in
 * the image). examples/debian-12's `qcow2` → `disk` → `os`. A tree holds a database when a
 * format's `marker` (the file its package database is kept in) is a regular file in it; the first format
 * (by name) whose marker is there reads it.
 *
 * Reading never runs the image's code: gather.ts copies the files a format's reader asks for
 * out of the tree in the sandbox, resolved inside the tree. The document is written atomically
 * (temporary file, rename). The bytes depend on the image's key, the target's name, its
 * exported files and imgmake's version only (spdx.ts).
 *
 * It does not build anything: the trees it reads are the ones the build just used or found in
 * the cache; one that is missing (collected, or only on a remote) is a failure that says so.
 */
import { lstat, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { sha256File } from '../hash.js';
import type { Definition, TargetDef } from '../definition.js';
import type { BuildGraph } from '../graph.js';
import type { PipelineName } from '../ids.js';
import type { Keys } from '../key.js';
import { SOURCE_DATE_EPOCH } from '../key.js';
import type { PackageDatabase } from '../packages/input.js';
import { fail, ok, type Result } from '../result.js';
import type { Sandbox } from '../sandbox/run.js';
import { ownedName } from '../store/orphans.js';
import type { Store, TreeRecord } from '../store/types.js';
import { gatherFiles } from './gather.js';
import { spdxText } from './spdx.js';

export { spdxDocument, spdxText, type SpdxImage } from './spdx.js';

/** Where a target's SBOM is written: beside `out/TARGET`, so a whole-tree export stays the tree. */
export function sbomPath(outDir: string, target: string): string {
  return join(outDir, `${target}.spdx.json`);
}

/**
 * The pipelines whose trees the target's image is made of, nearest first (see the module
 * header): the target's own, then breadth-first through `base:` and pipeline inputs.
 */
export function candidatePipelines(def: Definition, target: TargetDef): PipelineName[] {
  const seen = new Set<PipelineName>([target.pipeline]);
  const queue: PipelineName[] = [target.pipeline];
  for (let i = 0; i < queue.length; i++) {
    const pl = def.pipelines.get(queue[i]!);
    if (!pl) continue;
    const next: PipelineName[] = [];
    if (pl.base) next.push(pl.base.pipeline);
    for (const s of pl.stages) for (const inp of s.inputs) if (inp.kind === 'pipeline') next.push(inp.pipeline);
    for (const n of next) {
      if (seen.has(n)) continue;
      seen.add(n);
      queue.push(n);
    }
  }
  return queue;
}

export interface SbomOptions {
  def: Definition;
  graph: BuildGraph;
  keys: Keys;
  store: Store;
  sandbox: Sandbox;
  outDir: string;
  /** A directory this run may use (made and removed here). */
  scratch: string;
  /** Format name → its package-database reader (the formats that have one). */
  databases: ReadonlyMap<string, PackageDatabase>;
  /** `imgmake-0.1.0`. */
  tool: string;
  signal?: AbortSignal | undefined;
}

export interface SbomWritten {
  path: string;
  pipeline: PipelineName;
  packages: number;
}

/** Writes `out/TARGET.spdx.json` for an exported target; fails with what went wrong. */
export async function writeSbom(target: TargetDef, o: SbomOptions): Promise<Result<SbomWritten, string>> {
  const treeOf = async (pipeline: PipelineName): Promise<TreeRecord | undefined> => {
    const k = o.keys.get(o.graph.final(pipeline));
    return k ? await o.store.get(k.key) : undefined;
  };
  // Only its key is named: the last stage of a target may have delivered its file to out/
  // without a tree in the cache (src/deliver.ts).
  const image = o.keys.get(o.graph.final(target.pipeline));
  if (!image) return fail(`target ${target.name} has no key`);
  const formats = [...o.databases.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const pipeline of candidatePipelines(o.def, target)) {
    const tree = await treeOf(pipeline);
    if (!tree) return fail(`the tree of pipeline ${pipeline} (which ${target.name} is made from) is not in the cache: build it again with --from ${o.graph.final(pipeline)} to read its packages`);
    const markers = await gatherFiles([...new Set(formats.map(([, d]) => d.marker))], { tree, store: o.store, sandbox: o.sandbox, scratch: o.scratch, signal: o.signal });
    if (!markers.ok) return markers;
    const found = formats.find(([, d]) => markers.value.has(d.marker));
    if (!found) continue;
    const [format, db] = found;
    const files = await readDatabase(db, tree, o);
    if (!files.ok) return files;
    const entries = lockedEntries(o.def, format);
    const packages = db.read(files.value, entries);
    if (!packages.ok) return fail(`the ${format} package database of pipeline ${pipeline}: ${packages.error}`);
    const text = spdxText(
      {
        target: target.name,
        key: image.key,
        files: await exportedFiles(join(o.outDir, target.name), target),
        pipeline,
        tool: o.tool,
        created: new Date(Number(SOURCE_DATE_EPOCH) * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
      },
      packages.value,
    );
    const path = sbomPath(o.outDir, target.name);
    // Named as sweepOut (store/orphans.ts) knows a dead build's leftovers in out/.
    const tmp = join(o.outDir, ownedName(`.${target.name}.spdx.json.new-`));
    await writeFile(tmp, text);
    await rename(tmp, path);
    return ok({ path, pipeline, packages: packages.value.length });
  }
  const readers = formats.map(([name]) => name).join(', ') || 'none';
  return fail(`no tree target ${target.name} is made from holds a package database imgmake can read (looked in ${candidatePipelines(o.def, target).join(', ')}; formats with a reader: ${readers})`);
}

/** The reader's rounds of `want` → copy, until it asks for nothing new (4 at most). */
async function readDatabase(db: PackageDatabase, tree: TreeRecord, o: SbomOptions): Promise<Result<Map<string, string>, string>> {
  const files = new Map<string, string>();
  const asked = new Set<string>();
  for (let round = 0; round < 4; round++) {
    const want = db.want(files).filter((p) => !asked.has(p));
    if (!want.length) break;
    for (const p of want) asked.add(p);
    const got = await gatherFiles(want, { tree, store: o.store, sandbox: o.sandbox, scratch: o.scratch, signal: o.signal });
    if (!got.ok) return got;
    for (const [k, v] of got.value) files.set(k, v);
  }
  return ok(files);
}

/** The locked entries of every package stage of FORMAT in the definition (the sha256 of each package file). */
function lockedEntries(def: Definition, format: string): unknown[] {
  const out: unknown[] = [];
  for (const pl of def.pipelines.values()) for (const s of pl.stages) for (const i of s.inputs) if (i.kind === 'packages' && i.format === format) out.push(...i.entries);
  return out;
}

/** The target's exported files as out/TARGET holds them, each regular file with its sha256. */
async function exportedFiles(dir: string, target: TargetDef): Promise<{ name: string; sha256?: string }[]> {
  const out: { name: string; sha256?: string }[] = [];
  for (const p of target.export) {
    const name = basename(p);
    const st = await lstat(join(dir, name)).catch(() => undefined);
    out.push(st?.isFile() ? { name, sha256: await sha256File(join(dir, name)) } : { name });
  }
  return out;
}
