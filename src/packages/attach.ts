/**
 * Package stages and imgmake.lock: the link between a definition's package stages (rules whose
 * rule.json names a format: `"lock": "NAME"`) and the exact artifacts their trees are built from.
 *
 *     stage options ─format.request─► request ─(imgmake.lock has it? else format.resolve)─►
 *       entries ─► the stage's package input (key: format.digest) ─fetch.ts─► artifacts
 *
 * Stages with equal requests (same format, canonical JSON) share a lock; locks no stage uses
 * are dropped when the file is written. What a request holds, and where its packages come
 * from, is the format's (format.ts).
 *
 * This module does not fetch (fetch.ts does) and knows no format.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Definition, StageDef } from '../definition.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { canonicalJson } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import type { RuleRegistry } from '../rule.js';
import type { Sandbox } from '../sandbox/run.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { literal, ownedName, OWNER_RE, sweep } from '../store/orphans.js';
import type { Artifact, PackageFormat, PackageInput } from './format.js';
import { LOCK_FILE, locksText, readLocks, type Lock, type LockTable } from './lockfile.js';

export interface PackageStage {
  stage: StageDef;
  format: PackageFormat;
  /** What the stage asks for (`format.request`). */
  request: unknown;
  /** The part a lock keeps and is matched by (`format.lockRequest`, or the request). */
  lockRequest: unknown;
}

/**
 * Every stage whose rule installs packages, with its format and request; a rule naming a format
 * this imgmake does not know is a usage error at the stage.
 */
export function packageStages(def: Definition, rules: RuleRegistry, t: LockTable): Result<PackageStage[], Diagnostic[]> {
  const out: PackageStage[] = [];
  const errors: Diagnostic[] = [];
  for (const pl of def.pipelines.values()) {
    for (const stage of pl.stages) {
      const name = rules.get(stage.rule)?.schema.lock;
      if (name === undefined) continue;
      const format = t.formats.get(name);
      if (!format) {
        errors.push(diagnostic('usage', `rule ${stage.rule} installs packages of format "${name}", which this imgmake does not know`, stage.ruleLoc, `the formats are ${[...t.formats.keys()].join(', ')}`));
        continue;
      }
      const request = format.request(stage.options, def.vars);
      out.push({ stage, format, request, lockRequest: format.lockRequest ? format.lockRequest(request) : request });
    }
  }
  return errors.length ? fail(errors) : ok(out);
}

export interface LockOptions extends LockTable {
  /**
   * `read`: use the file; `resolve`: also lock requests it lacks; `update`: lock every request
   * again; `skip`: attach nothing (commands that need no keys: targets, boot).
   */
  mode: 'skip' | 'read' | 'resolve' | 'update';
  sandbox: Sandbox;
  /** Scratch for the resolvers' private state, one folder per format (kept between runs). */
  workDir: string;
  say: (line: string) => void;
  /** The buildroot a stage's resolver may use, when the caller has it (format.ts, ResolveContext). */
  buildrootOf?: (stage: StageDef) => Promise<SandboxSpec['buildroot'] | undefined>;
  signal?: AbortSignal;
}

export interface Locked {
  /** How many requests were resolved now. */
  resolved: number;
  /** Whether imgmake.lock was (re)written. */
  wrote: boolean;
}

const sameLock = (l: Lock, ps: PackageStage): boolean => l.format === ps.format.name && canonicalJson(l.request) === canonicalJson(ps.lockRequest);

/**
 * Makes sure every package stage has its lock, resolving what is missing when the mode allows,
 * and attaches each stage's locked artifacts as its package input. Writes imgmake.lock
 * atomically when it changed.
 */
export async function attachLocks(def: Definition, rules: RuleRegistry, o: LockOptions): Promise<Result<Locked, Diagnostic[]>> {
  if (o.mode === 'skip') return ok({ resolved: 0, wrote: false });
  const lockPath = join(def.dir, LOCK_FILE);
  const stages = packageStages(def, rules, o);
  if (!stages.ok) return stages;
  if (stages.value.length === 0) return ok({ resolved: 0, wrote: false });
  const existing = await readLocks(lockPath, o);
  if (!existing.ok) return fail([existing.error]);
  const locks: Lock[] = [];
  const lockOf = new Map<PackageStage, Lock>();
  let resolved = 0;
  // Stages whose format resolves in a buildroot go last: their buildroot pipeline's own
  // package stages must be locked (and attached) before `buildrootOf` can build it. The file
  // keeps the definition's order all the same (below).
  const ordered = [...stages.value.filter((ps) => !ps.format.needsBuildroot), ...stages.value.filter((ps) => ps.format.needsBuildroot)];
  for (const ps of ordered) {
    let lock = locks.find((l) => sameLock(l, ps));
    if (!lock && o.mode !== 'update') lock = existing.value.find((l) => sameLock(l, ps));
    if (!lock) {
      const where = `${ps.stage.pipeline}.${ps.stage.id}`;
      const what = ps.format.describe(ps.request);
      if (o.mode === 'read') {
        return fail([diagnostic('usage', `${LOCK_FILE} has no lock for ${where} (${what})`, ps.stage.ruleLoc, 'run imgmake lock, or build without --locked to lock it now')]);
      }
      o.say(`imgmake: locking ${where}: ${what}`);
      const started = performance.now();
      const workDir = join(o.workDir, ps.format.name);
      await mkdir(workDir, { recursive: true });
      let buildroot: SandboxSpec['buildroot'] | undefined;
      try {
        buildroot = await o.buildrootOf?.(ps.stage);
      } catch (e) {
        // Its failed stage was reported as the build went; the message names the pipeline.
        return fail([diagnostic('buildroot-failed', `locking ${where} failed: ${(e as Error).message}`, ps.stage.ruleLoc, 'fix the buildroot pipeline (imgmake log PIPELINE.STAGE shows a failed stage\'s log), then build again')]);
      }
      let r;
      try {
        r = await ps.format.resolve(ps.request, {
          vars: def.vars,
          sandbox: o.sandbox,
          workDir,
          logFile: join(o.workDir, 'lock.log'),
          ...(buildroot ? { buildroot } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
      } catch (e) {
        r = fail((e as Error).message);
      }
      if (!r.ok) {
        if (typeof r.error !== 'string') return fail([r.error]);
        return fail([diagnostic('usage', `locking ${where} failed: ${r.error}`, ps.stage.ruleLoc, 'check the package names, and that the mirror is reachable')]);
      }
      lock = { format: ps.format.name, request: ps.lockRequest, packages: r.value as unknown[] };
      resolved++;
      o.say(`imgmake: locked ${where}: ${r.value.length} packages in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    if (!locks.includes(lock)) locks.push(lock);
    lockOf.set(ps, lock);
    attach(ps, lock.packages);
  }
  const inOrder = [...new Set(stages.value.map((ps) => lockOf.get(ps)!))];
  const text = locksText(inOrder, o.formats);
  const before = existsSync(lockPath) ? await readFile(lockPath, 'utf8') : undefined;
  if (text === before || o.mode === 'read') return ok({ resolved, wrote: false });
  // Named after this process: a killed write's is removed by the next one (store/orphans.ts).
  await sweep(dirname(lockPath), new RegExp(`^${literal(basename(lockPath))}\\.(${OWNER_RE})\\.tmp$`));
  const tmp = join(dirname(lockPath), ownedName(`${basename(lockPath)}.`, '.tmp'));
  await writeFile(tmp, text);
  await rename(tmp, lockPath);
  return ok({ resolved, wrote: true });
}

/**
 * The package input of a stage's request and its locked set (pure): what the core keys, fetches
 * and binds. OPTIONS, the stage's: what its key holds of them when the format leaves some out.
 */
export function packageInput(format: PackageFormat, request: unknown, entries: readonly unknown[], options?: Record<string, unknown>): PackageInput {
  return {
    ...(options && format.keyOptions ? { keyOptions: format.keyOptions(options) } : {}),
    name: format.input,
    format: format.name,
    artifacts: entries.map((e) => format.artifact(e)),
    digest: format.digest(entries),
    files: format.files?.(entries) ?? {},
    request,
    entries,
  };
}

function attach(ps: PackageStage, entries: readonly unknown[]): void {
  const p = packageInput(ps.format, ps.request, entries, ps.stage.options);
  const input = { loc: ps.stage.ruleLoc, kind: 'packages' as const, ...p };
  const i = ps.stage.inputs.findIndex((x) => x.name === p.name);
  if (i >= 0) ps.stage.inputs[i] = input;
  else ps.stage.inputs.push(input);
}

/** Every package input of the given stages, with its format's name. */
export function packageInputsOf(stages: readonly StageDef[]): PackageInput[] {
  return stages.flatMap((s) => s.inputs.flatMap((i) => (i.kind === 'packages' ? [i] : [])));
}

/** Every artifact the given stages need, once each (by sha256). */
export function packagesOf(stages: readonly StageDef[]): Artifact[] {
  const seen = new Map<string, Artifact>();
  for (const i of packageInputsOf(stages)) for (const a of i.artifacts) seen.set(a.sha256, a);
  return [...seen.values()];
}
