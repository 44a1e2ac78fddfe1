/**
 * Package stages and imgmake.lock: the link between a definition's `apt.install` stages (rules
 * that declare `lock: apt`) and the exact .deb files their trees are built from.
 *
 *     stage options ─requestOf─► LockRequest ─(imgmake.lock has it? else resolve with apt)─►
 *       LockedPackage[] ─► the stage's `debs` input (key: the locked set) ─fetch─► .debs
 *
 * `imgmake.lock` sits beside the definition and holds one lock per distinct request:
 *
 *     { "version": 1, "locks": [ { "request": {…}, "packages": [ one package per line… ] }, … ] }
 *
 * A request is everything that decides the package set but the mirror (suite, components,
 * architecture, variant, sorted packages, which archives were used), so a lock made against one
 * mirror builds from any other. Stages with equal requests share a lock; locks no stage uses
 * are dropped when the file is written. The mirror comes from the `debian_mirror` and
 * `debian_security_mirror` variables (the host's apt sources unless set).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  LOCK_FILE_VERSION,
  lockFileText,
  lockRequestOf,
  parseLockFile,
  resolvePackages,
  type DebianVariant,
  type LockedPackage,
  type LockFile,
  type LockRequest,
  type LockRequestMeta,
} from './debian/lock.js';
import type { DebianMirror } from './debian/sources.js';
import type { Definition, StageDef } from './definition.js';
import { diagnostic, type Diagnostic } from './diagnostic.js';
import { canonicalJson } from './key.js';
import { fail, ok, type Result } from './result.js';
import type { RuleRegistry } from './rule.js';
import type { Sandbox } from './sandbox/run.js';
import { literal, ownedName, OWNER_RE, sweep } from './store/orphans.js';

export const LOCK_FILE = 'imgmake.lock';
/** The input name a package stage's .debs are bound under. */
export const DEBS_INPUT = 'debs';

export interface PackageStage {
  stage: StageDef;
  request: LockRequest;
  meta: LockRequestMeta;
}

/** Every stage whose rule installs packages, with what it asks for. */
export function packageStages(def: Definition, rules: RuleRegistry, mirror: DebianMirror): PackageStage[] {
  const out: PackageStage[] = [];
  for (const pl of def.pipelines.values()) {
    for (const stage of pl.stages) {
      if (rules.get(stage.rule)?.schema.lock !== 'apt') continue;
      const o = stage.options as { suite: string; components: string[]; architecture: 'amd64'; variant: DebianVariant; packages: string[] };
      const request: LockRequest = {
        mirror,
        suite: o.suite,
        components: o.components,
        architecture: o.architecture,
        variant: o.variant,
        packages: o.packages,
      };
      out.push({ stage, request, meta: lockRequestOf(request) });
    }
  }
  return out;
}

/** The mirror the definition's variables name; a positioned-less usage error when there is none. */
export function mirrorOf(def: Definition): Result<DebianMirror, Diagnostic> {
  const archive = def.vars['debian_mirror'];
  if (!archive) {
    return fail(
      diagnostic('usage', 'no Debian mirror: this host has no apt sources naming one', undefined, 'set it with --var debian_mirror=URL or IMGMAKE_VAR_debian_mirror=URL'),
    );
  }
  const security = def.vars['debian_security_mirror'];
  return ok({ archive: archive.replace(/\/+$/, ''), ...(security ? { security: security.replace(/\/+$/, '') } : {}) });
}

const sameRequest = (a: LockRequestMeta, b: LockRequestMeta): boolean => canonicalJson(a) === canonicalJson(b);

/** Reads imgmake.lock (none yet: no locks). */
export async function readLocks(path: string): Promise<Result<LockFile[], Diagnostic>> {
  if (!existsSync(path)) return ok([]);
  const text = await readFile(path, 'utf8');
  const bad = (message: string) =>
    fail(diagnostic('usage', `${path}: ${message}`, undefined, 'fix the file, or delete it and run imgmake lock to make it again'));
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return bad(`not valid JSON: ${(e as Error).message}`);
  }
  const top = v as { version?: unknown; locks?: unknown };
  if (typeof v !== 'object' || v === null || top.version !== LOCK_FILE_VERSION || !Array.isArray(top.locks)) {
    return bad(`expected {"version": ${LOCK_FILE_VERSION}, "locks": […]}`);
  }
  const locks: LockFile[] = [];
  for (const [i, entry] of top.locks.entries()) {
    const one = parseLockFile(JSON.stringify({ version: LOCK_FILE_VERSION, ...(entry as object) }));
    if (!one.ok) return bad(`locks[${i}]: ${one.error.message.replace(/^imgmake\.lock: /, '')}`);
    locks.push(one.value);
  }
  return ok(locks);
}

/** The text of imgmake.lock: one package per line, locks in the order given. */
export function locksText(locks: readonly LockFile[]): string {
  const entries = locks.map((l) => {
    const one = lockFileText(l.packages, l.request).trimEnd();
    // Reuse the single-lock layout, minus its version line, indented one level.
    const body = one.replace(/^\{\n {2}"version": \d+,\n/, '{\n').replace(/\n/g, '\n    ');
    return `    ${body}`;
  });
  return `{\n  "version": ${LOCK_FILE_VERSION},\n  "locks": [\n${entries.join(',\n')}\n  ]\n}\n`;
}

export interface LockOptions {
  /**
   * `read`: use the file; `resolve`: also lock requests it lacks; `update`: lock every request
   * again; `skip`: attach nothing (commands that need no keys: targets, boot).
   */
  mode: 'skip' | 'read' | 'resolve' | 'update';
  sandbox: Sandbox;
  /** Scratch for apt's private state (kept between runs: apt revalidates its lists). */
  workDir: string;
  say: (line: string) => void;
  signal?: AbortSignal;
}

export interface Locked {
  /** How many requests were resolved against the mirror now. */
  resolved: number;
  /** Whether imgmake.lock was (re)written. */
  wrote: boolean;
}

/**
 * Makes sure every package stage has its lock, resolving what is missing when the mode allows,
 * and attaches each stage's locked packages as its `debs` input. Writes imgmake.lock atomically
 * when it changed.
 */
export async function attachLocks(def: Definition, rules: RuleRegistry, o: LockOptions): Promise<Result<Locked, Diagnostic[]>> {
  if (o.mode === 'skip') return ok({ resolved: 0, wrote: false });
  const lockPath = join(def.dir, LOCK_FILE);
  const wanted = def.vars['debian_mirror'] !== undefined ? mirrorOf(def) : undefined;
  const stages = packageStages(def, rules, wanted?.ok ? wanted.value : { archive: '' });
  if (stages.length === 0) return ok({ resolved: 0, wrote: false });
  const existing = await readLocks(lockPath);
  if (!existing.ok) return fail([existing.error]);
  const locks: LockFile[] = [];
  let resolved = 0;
  for (const ps of stages) {
    let lock = locks.find((l) => sameRequest(l.request, ps.meta));
    if (!lock && o.mode !== 'update') lock = existing.value.find((l) => sameRequest(l.request, ps.meta));
    if (!lock) {
      const where = `${ps.stage.pipeline}.${ps.stage.id}`;
      if (o.mode === 'read') {
        return fail([
          diagnostic('usage', `${LOCK_FILE} has no lock for ${where} (${describe(ps.meta)})`, ps.stage.ruleLoc, 'run imgmake lock, or build without --locked to lock it now'),
        ]);
      }
      const mirror = wanted ?? mirrorOf(def);
      if (!mirror.ok) return fail([mirror.error]);
      o.say(`imgmake: locking ${where}: ${describe(ps.meta)} against ${mirror.value.archive}`);
      const started = performance.now();
      await mkdir(o.workDir, { recursive: true });
      let packages: LockedPackage[];
      try {
        packages = await resolvePackages(
          { ...ps.request, mirror: mirror.value },
          { sandbox: o.sandbox, workDir: join(o.workDir, 'apt'), logFile: join(o.workDir, 'lock.log'), ...(o.signal ? { signal: o.signal } : {}) },
        );
      } catch (e) {
        return fail([diagnostic('usage', `locking ${where} failed: ${(e as Error).message}`, ps.stage.ruleLoc, 'check the package names, and that the mirror is reachable')]);
      }
      lock = { version: LOCK_FILE_VERSION, request: ps.meta, packages };
      resolved++;
      o.say(`imgmake: locked ${where}: ${packages.length} packages in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    if (!locks.includes(lock)) locks.push(lock);
    attach(ps.stage, lock.packages);
  }
  const text = locksText(locks);
  const before = existsSync(lockPath) ? await readFile(lockPath, 'utf8') : undefined;
  if (text === before || o.mode === 'read') return ok({ resolved, wrote: false });
  // Named after this process: a killed write's is removed by the next one (store/orphans.ts).
  await sweep(dirname(lockPath), new RegExp(`^${literal(basename(lockPath))}\\.(${OWNER_RE})\\.tmp$`));
  const tmp = join(dirname(lockPath), ownedName(`${basename(lockPath)}.`, '.tmp'));
  await writeFile(tmp, text);
  await rename(tmp, lockPath);
  return ok({ resolved, wrote: true });
}

function attach(stage: StageDef, packages: LockedPackage[]): void {
  const i = stage.inputs.findIndex((x) => x.name === DEBS_INPUT);
  const input = { name: DEBS_INPUT, loc: stage.ruleLoc, kind: 'packages' as const, packages };
  if (i >= 0) stage.inputs[i] = input;
  else stage.inputs.push(input);
}

function describe(m: LockRequestMeta): string {
  return `${m.suite} ${m.variant}${m.packages.length ? ` + ${m.packages.join(' ')}` : ''}`;
}

/** Every package the given stages need, once each (by sha256). */
export function packagesOf(stages: readonly StageDef[]): LockedPackage[] {
  const seen = new Map<string, LockedPackage>();
  for (const s of stages) for (const i of s.inputs) if (i.kind === 'packages') for (const p of i.packages) seen.set(p.sha256, p);
  return [...seen.values()];
}
