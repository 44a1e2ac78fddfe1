/**
 * What every command that reads a definition does first: find it, load it, open the engine on
 * its cache, lock, key (the engine's steps, engine/index.ts, composed for a command line).
 * Failures of the user's input come back as diagnostics (exit 2) before anything runs.
 */
import { existsSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Definition } from '../definition.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { lockPackages, type LockMode } from '../engine/lock.js';
import { loadProject, openEngine } from '../engine/defaults.js';
import { keyProject } from '../engine/project.js';
import type { Engine, KeyedProject, Project } from '../engine/types.js';
import type { Logger } from '../event.js';
import { listOf } from '../load/suggest.js';
import { VALIDATED_FILE, ValidatedOptions } from '../load/validated.js';
import { remoteConfig } from '../remote/config.js';
import { fail, ok, type Result } from '../result.js';
import { absentStore } from './absent-store.js';
import { userCacheDir } from '../catalog/user-cache.js';
import type { PhaseClock } from '../timing.js';

export { hostDefaults } from '../engine/defaults.js';
export { resolveNode, resolveTargets, selectNodes } from '../engine/select.js';
export type { Selection } from '../engine/types.js';

export interface GlobalOptions {
  file?: string;
  cache?: string;
  out?: string;
  var?: string[];
  json?: boolean;
  jobs?: string;
  verbose?: boolean;
  /** `--progress auto|tty|plain|json` (cli/output.ts, pickLogger). */
  progress?: 'auto' | 'tty' | 'plain' | 'json';
  /** `--max-cache-size SIZE` (or IMGMAKE_MAX_CACHE_SIZE): collect the cache to it after each build. */
  maxCacheSize?: string;
  remote?: string;
  remoteReadOnly?: boolean;
  /** `--allow-path DIR` (repeatable): a folder outside the project the definition may read. */
  allowPath?: string[];
  /** A build from the built-in catalog (`imgmake build TYPE --blueprint FILE`): see src/cli/catalog.ts. */
  catalog?: CatalogBuild;
}

/**
 * A definition composed from the catalog and a blueprint, written into the cache before each
 * load (so watch re-reads the blueprint); its folder also holds its imgmake.lock.
 */
export interface CatalogBuild {
  /** The composed root definition (written by `prepare`). */
  definition: string;
  /** The catalog's folder: the composed definition includes its parts. */
  allow: string[];
  /** The blueprint file, watched with the definition's files. */
  blueprint?: string;
  /** Reads the blueprint and writes the definition; blueprint errors come back as diagnostics. */
  prepare(): Promise<Result<void, Diagnostic[]>>;
}

/**
 * What a command works with: an engine (store, sandbox, remote, formats, cache folder) and a
 * locked, keyed project, composed by loadContext; plus where the exports go.
 */
export interface Context extends Engine, KeyedProject {
  outDir: string;
  /** A read-only command found no cache at `cacheDir` (its store is empty and makes nothing). */
  cacheMissing?: boolean;
}

/** The definition's file name, looked for in the current folder and every folder above it. */
export const DEFINITION_FILE = 'imgmake.yaml';

/**
 * `-f FILE`, else the nearest imgmake.yaml from the current folder up to `/` (as git finds its
 * repository), so any subfolder of a project works; `./imgmake.yaml` when there is none (the
 * path the "no definition" message names).
 */
export function definitionPath(o: GlobalOptions): string {
  if (o.catalog) return o.catalog.definition;
  if (o.file !== undefined) return resolve(o.file);
  return findDefinition(process.cwd()) ?? resolve(DEFINITION_FILE);
}

export function findDefinition(from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const f = join(dir, DEFINITION_FILE);
    if (existsSync(f)) return f;
    if (dirname(dir) === dir) return undefined;
  }
}

/** --cache, else IMGMAKE_CACHE, else a catalog build's per-user cache, else cache/ beside the definition. */
export function cacheDirOf(o: GlobalOptions, defFile: string): string {
  return resolve(o.cache ?? process.env.IMGMAKE_CACHE ?? (o.catalog ? userCacheDir() : resolve(dirname(defFile), 'cache')));
}

/** `IMGMAKE_VAR_NAME=VALUE` in the environment: like `--var NAME=VALUE`, which wins over it. */
export const ENV_VAR_PREFIX = 'IMGMAKE_VAR_';

/** `--var`s and `IMGMAKE_VAR_`s: the values, and how each was given (for messages). */
export interface ParsedVars {
  vars: Record<string, string>;
  sources: Record<string, string>;
}

export function parseVars(list: string[] = [], env: NodeJS.ProcessEnv = {}): Result<ParsedVars, Diagnostic> {
  const vars: Record<string, string> = {};
  const sources: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith(ENV_VAR_PREFIX) && k.length > ENV_VAR_PREFIX.length && v !== undefined) {
      vars[k.slice(ENV_VAR_PREFIX.length)] = v;
      sources[k.slice(ENV_VAR_PREFIX.length)] = `${k} (in the environment)`;
    }
  }
  for (const v of list) {
    const eq = v.indexOf('=');
    if (eq <= 0) return fail(diagnostic('usage', `--var ${JSON.stringify(v)} is not NAME=VALUE`, undefined, 'write --var hostname=web1'));
    vars[v.slice(0, eq)] = v.slice(eq + 1);
    sources[v.slice(0, eq)] = `--var ${v}`;
  }
  return ok({ vars, sources });
}

export interface LoadContextOptions {
  /** What to do about package stages without a lock (engine/lock.ts); default `read`. */
  lock?: LockMode;
  /**
   * A command that only reads (plan, cache ls): a cache folder that does not exist is not made;
   * the context gets an empty store instead (`cacheMissing`), which the command reports.
   */
  readOnly?: boolean;
  /** Where a buildroot built in order to lock is reported (engine/lock.ts); default: nowhere. */
  logger?: Logger;
  /** Stages run at once while building such a buildroot (default: the machine's cores). */
  jobs?: number;
  signal?: AbortSignal;
  /** Charged with `load`, `lock` and `keys` (src/timing.ts). */
  clock?: PhaseClock;
}

/**
 * Rules and the definition, nothing else: no store, no lock, no sandbox. What the commands that
 * run as any user (`targets`) need; `loadContext` starts with it.
 */
export async function loadDefinition(o: GlobalOptions, validated?: ValidatedOptions): Promise<Result<Project, Diagnostic[]>> {
  const file = definitionPath(o);
  if (o.catalog) {
    const prepared = await o.catalog.prepare();
    if (!prepared.ok) return prepared;
  }
  if (!existsSync(file)) {
    return fail([
      o.file !== undefined
        ? diagnostic('usage', `no definition at ${file}`, undefined, 'name an existing file with -f FILE')
        : diagnostic('usage', `no ${DEFINITION_FILE} in ${process.cwd()} or any folder above it`, undefined, `run imgmake in a project (a folder with an ${DEFINITION_FILE}, or below it), or name one with -f FILE or -C DIR; or build an image of the catalog: imgmake list, then imgmake build qcow2 --blueprint FILE`),
    ]);
  }
  const vars = parseVars(o.var, process.env);
  if (!vars.ok) return fail([vars.error]);
  const loaded = await loadProject({
    file,
    vars: vars.value.vars,
    varSources: vars.value.sources,
    allow: [...(o.allowPath ?? []), ...(o.catalog?.allow ?? [])].map((p) => resolve(p)),
    ...(validated ? { validated } : {}),
  });
  if (!loaded.ok || !o.catalog) return loaded;
  // The catalog is the package's, not an --allow-path the user gave: no line about it; the
  // blueprint is one of the files the definition depends on (watch re-reads it on save).
  const { allowed, ...def } = loaded.value.def;
  const own = allowed?.filter((d) => !o.catalog!.allow.some((a) => realpathSync(a) === d));
  const files = o.catalog.blueprint ? [...def.files, o.catalog.blueprint] : def.files;
  return ok({ ...loaded.value, def: { ...def, files, ...(own?.length ? { allowed: own } : {}) } });
}

/**
 * The CLI's composition of the engine's steps (engine/index.ts): load the project, open the
 * engine on the cache (the one place the real store, sandbox and remote are picked), lock the
 * package stages as `lo.lock` says (lock lines on stderr), key the project.
 */
export async function loadContext(o: GlobalOptions, lo: LoadContextOptions = {}): Promise<Result<Context, Diagnostic[]>> {
  const file = definitionPath(o);
  const cacheDir = cacheDirOf(o, file);
  // What earlier builds on this cache validated: an unchanged definition's options skip ajv.
  const validated = await ValidatedOptions.open(join(cacheDir, VALIDATED_FILE));
  const loaded = await loadDefinition(o, validated);
  if (!loaded.ok) return loaded;
  const project = loaded.value;
  const remote = remoteConfig(o, process.env, project.def.cache?.remote);
  if (!remote.ok) return fail([remote.error]);
  const cacheMissing = lo.readOnly === true && !existsSync(cacheDir);
  const engine = await openEngine({ cacheDir, remote: remote.value, ...(cacheMissing ? { store: absentStore(cacheDir) } : {}) });
  // After openEngine: the cache folder exists. A read-only command writes nothing.
  if (lo.readOnly !== true) await validated.save();
  lo.clock?.lap('load');
  const mode = lo.lock ?? 'read';
  const locked = await lockPackages(engine, project, mode, {
    logger: lo.logger ?? { log: () => undefined },
    jobs: lo.jobs ?? availableParallelism(),
    signal: lo.signal,
    say: (line) => process.stderr.write(`${line}\n`),
  });
  lo.clock?.lap('lock');
  if (!locked.ok) return locked;
  const keyed = await keyProject(project);
  lo.clock?.lap('keys');
  return ok({
    ...engine,
    ...keyed,
    outDir: resolve(o.out ?? resolve(keyed.def.dir, 'out')),
    ...(cacheMissing ? { cacheMissing } : {}),
  });
}

/** The line build and plan print when `--allow-path` lets the definition read outside its project. */
export function allowedLine(ctx: Pick<Context, 'def'>): string | undefined {
  const dirs = ctx.def.allowed;
  return dirs?.length ? `imgmake: --allow-path: the definition may also read ${listOf(dirs)}` : undefined;
}

/**
 * The targets a command works on: those named, else the definition's default target (marked
 * `default: true`, else its first), said on stderr so a bare `imgmake build` names what it builds.
 */
export function targetsOrDefault(def: Definition, names: string[], say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): string[] {
  if (names.length || !def.defaultTarget) return names;
  const others = def.targets.size - 1;
  say(`imgmake: no target named: the default target is ${def.defaultTarget}${others ? ` (imgmake targets lists the ${others} other${others === 1 ? '' : 's'})` : ''}`);
  return [def.defaultTarget];
}


