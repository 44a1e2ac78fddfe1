/**
 * What `imgmake build --with-sbom` and `--with-manifest` add after a target is exported, composed
 * here with the real package formats (the SBOM's readers) and imgmake's version; the work is in
 * src/sbom/ and src/manifest/, imported when an SBOM or manifest is written or an old one removed
 * (a no-op build does neither: issue 18, docs/bench.md "Start-up"). The build calls
 * `afterExport` once per exported target.
 */
import { join } from 'node:path';
import type { Logger } from '../event.js';
import type { TargetDef } from '../definition.js';
import { packageFormats } from '../packages/formats.js';
import type { Formats } from '../packages/format.js';
import type { PackageDatabase } from '../packages/input.js';
import type { LockWriter } from '../manifest/index.js';
import { locksText } from '../packages/lockfile.js';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { fail, ok, type Result } from '../result.js';
import type { Context } from './context.js';

/** `--with-sbom`, `--with-manifest`. */
export interface ExportExtras {
  withSbom?: boolean | undefined;
  withManifest?: boolean | undefined;
  /** `imgmake-VERSION`: the SBOM's creator. */
  tool?: string;
}

/** imgmake.lock's side of a manifest, from the real formats. */
const locking = (formats: Formats): LockWriter => ({
  lockRequest(format, request) {
    const f = formats.get(format);
    if (!f) throw new Error(`Internal error: a package input of unknown format ${format}`);
    return f.lockRequest ? f.lockRequest(request) : request;
  },
  text: (locks) => locksText(locks, formats),
});

/** The formats that can read an image's package database, by name. */
export async function packageDatabases(): Promise<Map<string, PackageDatabase>> {
  const m = new Map<string, PackageDatabase>();
  for (const f of (await packageFormats()).values()) if (f.database) m.set(f.name, f.database);
  return m;
}

/**
 * Writes what EXTRAS ask for beside TARGET's export; false (after saying why) when one failed.
 * `fresh`: the export wrote a new image. Then an SBOM or manifest not asked for this time is
 * removed: it described the image before (one of an unchanged image stays: it is still true).
 */
export async function afterExport(ctx: Context, target: TargetDef, extras: ExportExtras & { fresh: boolean }, logger: Logger, signal?: AbortSignal): Promise<boolean> {
  const sbom = extras.fresh || extras.withSbom ? await import('../sbom/index.js') : undefined;
  const manifest = extras.fresh || extras.withManifest ? await import('../manifest/index.js') : undefined;
  if (extras.fresh && !extras.withSbom) await rm(sbom!.sbomPath(ctx.outDir, target.name), { force: true });
  if (extras.fresh && !extras.withManifest) await rm(manifest!.manifestDir(ctx.outDir, target.name), { recursive: true, force: true });
  if (extras.withSbom) {
    // A scratch folder of the store's: removed after, or by the next open after a crash.
    const held = await ctx.store.scratch();
    const scratch = join(held.dir, 'sbom');
    try {
      const s = await sbom!.writeSbom(target, { def: ctx.def, graph: ctx.graph, keys: ctx.keys, store: ctx.store, sandbox: ctx.sandbox, outDir: ctx.outDir, scratch, databases: await packageDatabases(), tool: extras.tool ?? 'imgmake', signal });
      if (!s.ok) {
        logger.log({ type: 'export-failed', target: target.name, message: `the SBOM of ${target.name} failed: ${s.error}` });
        return false;
      }
      logger.log({ type: 'info', message: `imgmake: ${target.name}: SBOM of ${s.value.packages} packages (pipeline ${s.value.pipeline}) in ${s.value.path}` });
    } finally {
      await held.release();
    }
  }
  if (extras.withManifest) {
    const m = await manifest!.writeManifest(target, { def: ctx.def, outDir: ctx.outDir, locking: locking(await packageFormats()) });
    if (!m.ok) {
      logger.log({ type: 'export-failed', target: target.name, message: `the manifest of ${target.name} failed: ${m.error}` });
      return false;
    }
    logger.log({ type: 'info', message: `imgmake: ${target.name}: manifest in ${m.value}` });
  }
  if (target.export.includes(OSTREE_COMMIT)) {
    const c = await ostreeCommitOf(join(ctx.outDir, target.name, OSTREE_COMMIT));
    if (!c.ok) {
      logger.log({ type: 'export-failed', target: target.name, message: c.error });
      return false;
    }
    logger.log({ type: 'ostree-commit', target: target.name, ...c.value });
    // The manifest names the commit it makes: a rebuild from it can be checked against it.
    if (extras.withManifest) await writeFile(join(manifest!.manifestDir(ctx.outDir, target.name), OSTREE_COMMIT), `${JSON.stringify(c.value)}\n`);
  }
  return true;
}

/** What the ostree.commit rule exports beside its repository: the commit it made. */
const OSTREE_COMMIT = 'ostree-commit.json';

type OstreeCommit = { ref: string; commit: string; parent: string | null };

/** The commit of an exported `ostree-commit.json`, checked: a sha256 checksum, a ref, a parent or null. */
export async function ostreeCommitOf(path: string): Promise<Result<OstreeCommit, string>> {
  const bad = (why: string) => fail(`${path}: ${why}; it is written by the ostree.commit rule (rebuild the target)`);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    return bad(`cannot be read as JSON (${(e as Error).message})`);
  }
  const hex = (x: unknown): x is string => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
  if (typeof j['ref'] !== 'string' || !j['ref'] || !hex(j['commit']) || !(j['parent'] === null || hex(j['parent']))) return bad('has no ref, commit checksum and parent (checksum or null)');
  return ok({ ref: j['ref'], commit: j['commit'], parent: j['parent'] });
}
