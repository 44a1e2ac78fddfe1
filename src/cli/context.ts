/**
 * What every command that reads a definition does first: load rules and the definition,
 * build the graph, compute keys, open the store. Failures of the user's input come back as
 * diagnostics (exit 2) before anything runs.
 */
import { dirname, join, resolve } from 'node:path';
import { attachLocks, type LockOptions } from '../packages/index.js';
import { FORMATS, LOCK_TABLE } from '../packages/formats.js';
import { bwrapSandbox, type Sandbox } from '../sandbox/run.js';
import { existsSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Logger } from '../event.js';
import { buildrootHook } from './buildroot.js';
import type { Definition } from '../definition.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { ancestors, buildGraph, descendants, type BuildGraph } from '../graph.js';
import { stageNodeId, type NodeId, type PipelineName } from '../ids.js';
import { computeKeys, type Keys } from '../key.js';
import { load } from '../load/index.js';
import type { HostDefault } from '../load/vars.js';
import { closest, listOf } from '../load/suggest.js';
import { historyScope } from '../plan.js';
import { loadRules, type RuleRegistry } from '../rule.js';
import { fail, ok, type Result } from '../result.js';
import { openLocalStore } from '../store/local.js';
import { absentStore } from './absent-store.js';
import type { Store } from '../store/types.js';
import { openRemote, remoteConfig, type RemoteCache } from '../remote/index.js';
import { userCacheDir } from '../catalog/index.js';

export interface GlobalOptions {
  file?: string;
  cache?: string;
  out?: string;
  var?: string[];
  json?: boolean;
  jobs?: string;
  verbose?: boolean;
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

export interface Context {
  rules: RuleRegistry;
  def: Definition;
  graph: BuildGraph;
  keys: Keys;
  store: Store;
  scope: string;
  cacheDir: string;
  outDir: string;
  /** The remote cache (`--remote`, `IMGMAKE_REMOTE`, the definition's `cache: remote:`), if any. */
  remote?: RemoteCache;
  /** What runs stages, exports and shells: bubblewrap. Chosen here, once, for every command. */
  sandbox: Sandbox;
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
  /** What to do about package stages without a lock (see packages/attach.ts); default `read`. */
  lock?: LockOptions['mode'];
  /**
   * A command that only reads (plan, cache ls): a cache folder that does not exist is not made;
   * the context gets an empty store instead (`cacheMissing`), which the command reports.
   */
  readOnly?: boolean;
  /**
   * Where a buildroot built in order to lock is reported (src/cli/buildroot.ts). Without one,
   * a stage whose format resolves in a buildroot the cache lacks is not locked: its format says
   * to build that pipeline first.
   */
  logger?: Logger;
  /** Stages run at once while building such a buildroot (default: the machine's cores). */
  jobs?: number;
  signal?: AbortSignal;
}

/**
 * Rules and the definition, nothing else: no store, no lock, no sandbox. What the commands that
 * run as any user (`targets`) need; `loadContext` starts with it.
 */
export async function loadDefinition(o: GlobalOptions): Promise<Result<{ rules: RuleRegistry; def: Definition }, Diagnostic[]>> {
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
  const rules = await loadRules();
  const loaded = await load({
    file,
    rules,
    vars: vars.value.vars,
    varSources: vars.value.sources,
    hostDefaults: await hostDefaults(),
    allow: [...(o.allowPath ?? []), ...(o.catalog?.allow ?? [])].map((p) => resolve(p)),
  });
  if (!loaded.ok) return loaded;
  if (!o.catalog) return ok({ rules, def: loaded.value });
  // The catalog is the package's, not an --allow-path the user gave: no line about it.
  const { allowed, ...def } = loaded.value;
  const own = allowed?.filter((d) => !o.catalog!.allow.some((a) => realpathSync(a) === d));
  const files = o.catalog.blueprint ? [...def.files, o.catalog.blueprint] : def.files;
  return ok({ rules, def: { ...def, files, ...(own?.length ? { allowed: own } : {}) } });
}

export async function loadContext(o: GlobalOptions, lo: LoadContextOptions = {}): Promise<Result<Context, Diagnostic[]>> {
  const file = definitionPath(o);
  const loaded = await loadDefinition(o);
  if (!loaded.ok) return loaded;
  const { rules, def } = loaded.value;
  const remote = remoteConfig(o, process.env, def.cache?.remote);
  if (!remote.ok) return fail([remote.error]);
  const cacheDir = cacheDirOf(o, file);
  // The one place a command's real implementations are picked: the sandbox, the store, the remote.
  const sandbox = bwrapSandbox;
  const cacheMissing = lo.readOnly === true && !existsSync(cacheDir);
  const store = cacheMissing ? absentStore(cacheDir) : await openLocalStore(cacheDir);
  const mode = lo.lock ?? 'read';
  // Locking before the keys exist: a stage whose format resolves in its buildroot gets that
  // pipeline built first, here. A bridge until issue 20 makes locking an engine step.
  const resolving = (mode === 'resolve' || mode === 'update') && lo.logger !== undefined && !cacheMissing;
  const buildrootOf = resolving
    ? buildrootHook({ def, rules, store, sandbox, cacheDir, scope: historyScope(file), logger: lo.logger!, jobs: lo.jobs ?? availableParallelism(), signal: lo.signal })
    : undefined;
  const locked = await attachLocks(def, rules, {
    ...LOCK_TABLE,
    mode,
    sandbox,
    workDir: join(cacheDir, 'lock'),
    say: (line) => process.stderr.write(`${line}\n`),
    ...(buildrootOf ? { buildrootOf } : {}),
    ...(lo.signal ? { signal: lo.signal } : {}),
  });
  if (!locked.ok) return locked;
  const graph = buildGraph(def, rules);
  const keys = await computeKeys(graph);
  return ok({
    rules,
    def,
    graph,
    keys,
    store,
    scope: historyScope(file),
    cacheDir,
    outDir: resolve(o.out ?? resolve(def.dir, 'out')),
    sandbox,
    ...(cacheMissing ? { cacheMissing } : {}),
    ...(remote.value ? { remote: openRemote(remote.value, store) } : {}),
  });
}

/** The line build and plan print when `--allow-path` lets the definition read outside its project. */
export function allowedLine(ctx: Pick<Context, 'def'>): string | undefined {
  const dirs = ctx.def.allowed;
  return dirs?.length ? `imgmake: --allow-path: the definition may also read ${listOf(dirs)}` : undefined;
}

/** Resolves target names to their final nodes, or a usage diagnostic naming the known ones. */
export function resolveTargets(ctx: Context, names: string[]): Result<NodeId[], Diagnostic[]> {
  const errors: Diagnostic[] = [];
  if (names.length === 0) return fail([noDefaultTarget()]);
  const goals: NodeId[] = [];
  for (const n of names) {
    const t = ctx.def.targets.get(n);
    if (!t) {
      const known = [...ctx.def.targets.keys()];
      errors.push(
        diagnostic(
          'unknown-target',
          `no target named ${JSON.stringify(n)}`,
          undefined,
          known.length ? `${closest(n, known) ? `did you mean ${JSON.stringify(closest(n, known))}? ` : ''}the targets are: ${known.join(', ')}` : 'the definition has no targets: add one under targets:',
        ),
      );
    } else goals.push(ctx.graph.final(t.pipeline));
  }
  return errors.length ? fail(errors) : ok(goals);
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

function noDefaultTarget(): Diagnostic {
  return diagnostic('unknown-target', 'no target named, and the definition has no targets', undefined, 'add one under targets:, or name a target');
}

/**
 * Variables the host provides: each package format's (the mirror the host's own package manager
 * already uses), so a definition need not name a mirror and works wherever the host's
 * does. ROOT: whose configuration to read.
 */
export async function hostDefaults(root = '/'): Promise<Record<string, HostDefault>> {
  const out: Record<string, HostDefault> = {};
  for (const f of FORMATS.values()) Object.assign(out, await f.hostVariables?.(root));
  return out;
}

/**
 * `PIPELINE.STAGE` (the stage's name, or its index) → the stage's node; unknown names are
 * usage errors with a did-you-mean. `what` names the flag or argument for the message.
 */
export function resolveNode(ctx: Context, text: string, what: string): Result<NodeId, Diagnostic[]> {
  const dot = text.indexOf('.');
  const pipelines = [...ctx.def.pipelines.keys()];
  const pl = dot > 0 ? ctx.def.pipelines.get(text.slice(0, dot) as PipelineName) : undefined;
  const whole = dot < 0 ? ctx.def.pipelines.get(text as PipelineName) : undefined;
  if (whole) {
    const last = whole.stages[whole.stages.length - 1]!;
    return fail([
      diagnostic('usage', `${what} ${text}: name a stage of it, PIPELINE.STAGE`, undefined, `the pipeline's tree is its last stage's: ${text}.${last.id}; its stages are ${listOf(whole.stages.map((s) => `${text}.${s.id}`))}`),
    ]);
  }
  if (!pl) {
    const name = dot > 0 ? text.slice(0, dot) : text;
    return fail([
      diagnostic(
        'usage',
        dot > 0 ? `${what} ${text}: no pipeline named ${JSON.stringify(name)}` : `${what} ${text}: a stage is named PIPELINE.STAGE`,
        undefined,
        `${closest(name, pipelines) ? `did you mean ${JSON.stringify(closest(name, pipelines))}? ` : ''}the pipelines are ${listOf(pipelines)}; a stage is its name or its index: ${pipelines[0] ?? 'os'}.0`,
      ),
    ]);
  }
  const rest = text.slice(dot + 1);
  const stage = pl.stages.find((s) => s.id === rest) ?? (/^\d+$/.test(rest) ? pl.stages[Number(rest)] : undefined);
  if (!stage) {
    const ids = pl.stages.map((s) => s.id);
    const guess = closest(rest, ids);
    return fail([
      diagnostic(
        'usage',
        `${what} ${text}: pipeline ${pl.name} has no stage ${JSON.stringify(rest)}`,
        undefined,
        `${guess ? `did you mean ${pl.name}.${guess}? ` : ''}its stages are ${listOf(ids.map((i) => `${pl.name}.${i}`))} (or their index, from 0)`,
      ),
    ]);
  }
  return ok(stageNodeId(pl.name, stage.id));
}

/** What a build or plan aims at: the targets, cut short by `--until`, rerun from `--from`. */
export interface Selection {
  goals: NodeId[];
  /** Stages to run even if cached (`--from`: that stage and every needed stage after it). */
  force: Set<NodeId>;
  /** The `--until` stage: the targets' trees are not complete, so nothing is exported. */
  until?: NodeId;
}

export function selectNodes(ctx: Context, targets: string[], o: { until?: string; from?: string }): Result<Selection, Diagnostic[]> {
  const finals = resolveTargets(ctx, targets);
  if (!finals.ok) return finals;
  const needed = ancestors(ctx.graph, finals.value);
  const pick = (text: string, flag: string): Result<NodeId, Diagnostic[]> => {
    const node = resolveNode(ctx, text, flag);
    if (!node.ok || needed.has(node.value)) return node;
    return fail([
      diagnostic('usage', `${flag} ${text}: ${targets.join(', ')} ${targets.length === 1 ? 'does' : 'do'} not need that stage`, undefined, `name a stage of a pipeline the target is built from; imgmake plan ${targets.join(' ')} lists them`),
    ]);
  };
  let goals = finals.value;
  let until: NodeId | undefined;
  if (o.until !== undefined) {
    const picked = pick(o.until, '--until');
    if (!picked.ok) return picked;
    until = picked.value;
    goals = [until];
  }
  let force = new Set<NodeId>();
  if (o.from !== undefined) {
    const from = pick(o.from, '--from');
    if (!from.ok) return from;
    const upTo = ancestors(ctx.graph, goals);
    if (!upTo.has(from.value)) {
      return fail([diagnostic('usage', `--from ${o.from} comes after --until ${o.until}`, undefined, 'name a stage before the --until stage, or the same one')]);
    }
    force = new Set([...descendants(ctx.graph, [from.value])].filter((id) => upTo.has(id)));
  }
  return ok({ goals, force, ...(until ? { until } : {}) });
}
