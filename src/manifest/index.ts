/**
 * `imgmake build --with-manifest`: beside each exported target, `out/TARGET.manifest/`, holding
 * `imgmake.yaml` (the target's fully resolved definition as one self-contained file) and
 * `imgmake.lock` (the locks of its package stages), such that
 * `imgmake build -f out/TARGET.manifest/imgmake.yaml` builds the identical image anywhere: every
 * stage gets the key it has here, so with the same cache nothing runs.
 *
 * What "resolved" means, field by field:
 * - includes inlined: only the pipelines the target needs (its own, and through `base:`,
 *   `build:` and pipeline inputs, every one it is made from), in the definition's order;
 * - variables substituted: the stages' options as validated (defaults filled in), with every
 *   `${` written `$${` so that loading the manifest substitutes nothing; no `vars:` (the host's
 *   mirror variables still come from the host: mirrors are never part of a key);
 * - every file the definition reads from the project: `file:` inputs become `inline:` inputs
 *   (inline.ts), which carry exactly what their key digests. Includes are read into the
 *   pipelines themselves; nothing else of the project is read by a definition;
 * - package stages keep their rule and options; their locked sets go into the manifest's
 *   `imgmake.lock` (the format's lock request and entries, as imgmake.lock keeps them);
 * - `cache:` is left out: where a cache is, or how big, is not part of an image.
 *
 * Deterministic: the same definition gives the same bytes (no time, no host path).
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Definition, StageDef, TargetDef } from '../definition.js';
import type { PipelineName } from '../ids.js';
import { canonicalJson } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import { ownedName } from '../store/orphans.js';
import { inlineOf } from './inline.js';

/** Where a target's manifest goes: `out/TARGET.manifest/` (beside `out/TARGET`). */
export function manifestDir(outDir: string, target: string): string {
  return join(outDir, `${target}.manifest`);
}

/** The pipelines TARGET is built from, in the definition's order. */
export function neededPipelines(def: Definition, target: TargetDef): PipelineName[] {
  const need = new Set<PipelineName>();
  const visit = (name: PipelineName): void => {
    if (need.has(name)) return;
    need.add(name);
    const pl = def.pipelines.get(name);
    if (!pl) return;
    if (pl.base) visit(pl.base.pipeline);
    if (pl.build) visit(pl.build.pipeline);
    for (const s of pl.stages) for (const i of s.inputs) if (i.kind === 'pipeline') visit(i.pipeline);
  };
  visit(target.pipeline);
  return [...def.pipelines.keys()].filter((n) => need.has(n));
}

/** `${` → `$${` in every string (the loader's escape), at any depth. */
export function escapeVars(v: unknown): unknown {
  // A function, not a string: in a replacement string `$$` means one `$`.
  if (typeof v === 'string') return v.replaceAll('${', () => '$${');
  if (Array.isArray(v)) return v.map(escapeVars);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeVars(x)]));
  return v;
}

/** One lock as imgmake.lock keeps it (packages/lockfile.ts's Lock). */
export interface ManifestLock {
  format: string;
  request: unknown;
  packages: unknown[];
}

/**
 * The lock file's side, handed in by the CLI (the core sees no package format): a stage's
 * request as its lock keeps it, and imgmake.lock's text of some locks.
 */
export interface LockWriter {
  lockRequest(format: string, request: unknown): unknown;
  text(locks: readonly ManifestLock[]): string;
}

export interface Manifest {
  yaml: string;
  lock: string;
}

/** The manifest of TARGET (pure but for reading the project files its inputs name). */
export function manifestOf(def: Definition, target: TargetDef, locking: LockWriter): Result<Manifest, string> {
  const pipelines: Record<string, unknown> = {};
  const locks: ManifestLock[] = [];
  const lockSeen = new Set<string>();
  for (const name of neededPipelines(def, target)) {
    const pl = def.pipelines.get(name)!;
    const stages: unknown[] = [];
    for (const s of pl.stages) {
      const st = stageOf(s);
      if (!st.ok) return st;
      stages.push(st.value);
      for (const i of s.inputs) {
        if (i.kind !== 'packages') continue;
        const request = locking.lockRequest(i.format, i.request);
        const id = canonicalJson([i.format, request]);
        if (lockSeen.has(id)) continue;
        lockSeen.add(id);
        locks.push({ format: i.format, request, packages: [...i.entries] });
      }
    }
    pipelines[name] = {
      ...(pl.base ? { base: pl.base.pipeline } : {}),
      ...(pl.build ? { build: pl.build.pipeline } : {}),
      stages,
    };
  }
  const doc = {
    version: 1,
    pipelines,
    targets: { [target.name]: { pipeline: target.pipeline, ...(target.export.length ? { export: target.export } : {}), default: true } },
  };
  const header =
    `# The resolved definition of target ${target.name}, written by imgmake build --with-manifest:\n` +
    `# includes inlined, variables substituted, project files carried inline; its packages are\n` +
    `# pinned by the imgmake.lock beside it. imgmake -f THIS_FILE build makes the identical image.\n`;
  return ok({ yaml: header + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false }), lock: locks.length ? locking.text(locks) : '' });
}

function stageOf(s: StageDef): Result<Record<string, unknown>, string> {
  const inputs: Record<string, unknown> = {};
  for (const i of s.inputs) {
    if (i.kind === 'pipeline') inputs[i.name] = { pipeline: i.pipeline };
    else if (i.kind === 'file') {
      const inline = inlineOf(i.path);
      if (!inline.ok) return fail(`${s.pipeline}.${s.id}, input ${i.name}: ${inline.error}`);
      inputs[i.name] = { inline: inline.value };
    }
  }
  return ok({
    ...(s.id !== String(s.index) ? { name: s.id } : {}),
    rule: s.rule,
    ...(Object.keys(inputs).length ? { inputs } : {}),
    options: escapeVars(s.options),
  });
}

/** Writes `out/TARGET.manifest/` (replaced as a whole); returns its imgmake.yaml's path. */
export async function writeManifest(target: TargetDef, o: { def: Definition; outDir: string; locking: LockWriter }): Promise<Result<string, string>> {
  const m = manifestOf(o.def, target, o.locking);
  if (!m.ok) return m;
  const dest = manifestDir(o.outDir, target.name);
  const tmp = join(o.outDir, ownedName(`.${target.name}.manifest.new-`));
  try {
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'imgmake.yaml'), m.value.yaml);
    if (m.value.lock) await writeFile(join(tmp, 'imgmake.lock'), m.value.lock);
    const old = join(o.outDir, ownedName(`.${target.name}.manifest.old-`));
    await rename(dest, old).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await rename(tmp, dest);
    await rm(old, { recursive: true, force: true });
    return ok(join(dest, 'imgmake.yaml'));
  } catch (e) {
    return fail(`writing ${dest}: ${(e as Error).message}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
