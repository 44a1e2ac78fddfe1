/**
 * What every command that reads a definition does first: load rules and the definition,
 * build the graph, compute keys, open the store. Failures of the user's input come back as
 * diagnostics (exit 2) before anything runs.
 */
import { dirname, join, resolve } from 'node:path';
import { attachLocks, type LockOptions } from '../packages.js';
import { bwrapSandbox } from '../sandbox/run.js';
import { existsSync } from 'node:fs';
import type { Definition } from '../definition.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { buildGraph, type BuildGraph } from '../graph.js';
import type { NodeId } from '../ids.js';
import { computeKeys, type Keys } from '../key.js';
import { load } from '../load/index.js';
import type { HostDefault } from '../load/vars.js';
import { hostDebianMirror } from '../debian/sources.js';
import { historyScope } from '../plan.js';
import { loadRules, type RuleRegistry } from '../rule.js';
import { fail, ok, type Result } from '../result.js';
import { openLocalStore } from '../store/local.js';
import type { Store } from '../store/types.js';

export interface GlobalOptions {
  file?: string;
  cache?: string;
  out?: string;
  var?: string[];
  json?: boolean;
  jobs?: string;
  verbose?: boolean;
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
}

export function definitionPath(o: GlobalOptions): string {
  return resolve(o.file ?? 'imgmake.yaml');
}

export function cacheDirOf(o: GlobalOptions, defFile: string): string {
  return resolve(o.cache ?? process.env.IMGMAKE_CACHE ?? resolve(dirname(defFile), 'cache'));
}

/** `IMGMAKE_VAR_NAME=VALUE` in the environment: like `--var NAME=VALUE`, which wins over it. */
export const ENV_VAR_PREFIX = 'IMGMAKE_VAR_';

export function parseVars(list: string[] = [], env: NodeJS.ProcessEnv = {}): Result<Record<string, string>, Diagnostic> {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith(ENV_VAR_PREFIX) && k.length > ENV_VAR_PREFIX.length && v !== undefined) vars[k.slice(ENV_VAR_PREFIX.length)] = v;
  }
  for (const v of list) {
    const eq = v.indexOf('=');
    if (eq <= 0) return fail(diagnostic('usage', `--var ${JSON.stringify(v)} is not NAME=VALUE`, undefined, 'write --var hostname=web1'));
    vars[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return ok(vars);
}

export interface LoadContextOptions {
  /** What to do about package stages without a lock (see packages.ts); default `read`. */
  lock?: LockOptions['mode'];
  signal?: AbortSignal;
}

export async function loadContext(o: GlobalOptions, lo: LoadContextOptions = {}): Promise<Result<Context, Diagnostic[]>> {
  const file = definitionPath(o);
  if (!existsSync(file)) {
    return fail([
      diagnostic('usage', `no definition at ${file}`, undefined, 'run imgmake in a folder with an imgmake.yaml, or name one with -f FILE'),
    ]);
  }
  const vars = parseVars(o.var, process.env);
  if (!vars.ok) return fail([vars.error]);
  const rules = await loadRules();
  const loaded = await load({ file, rules, vars: vars.value, hostDefaults: await hostDefaults() });
  if (!loaded.ok) return loaded;
  const def = loaded.value;
  const cacheDir = cacheDirOf(o, file);
  const locked = await attachLocks(def, rules, {
    mode: lo.lock ?? 'read',
    sandbox: bwrapSandbox,
    workDir: join(cacheDir, 'lock'),
    say: (line) => process.stderr.write(`${line}\n`),
    ...(lo.signal ? { signal: lo.signal } : {}),
  });
  if (!locked.ok) return locked;
  const graph = buildGraph(def, rules);
  const keys = await computeKeys(graph);
  const store = await openLocalStore(cacheDir);
  return ok({
    rules,
    def,
    graph,
    keys,
    store,
    scope: historyScope(file),
    cacheDir,
    outDir: resolve(o.out ?? resolve(def.dir, 'out')),
  });
}

/** Resolves target names to their final nodes, or a usage diagnostic naming the known ones. */
export function resolveTargets(ctx: Context, names: string[]): Result<NodeId[], Diagnostic[]> {
  const errors: Diagnostic[] = [];
  const goals: NodeId[] = [];
  for (const n of names) {
    const t = ctx.def.targets.get(n);
    if (!t) {
      const known = [...ctx.def.targets.keys()];
      errors.push(
        diagnostic('unknown-target', `no target named ${JSON.stringify(n)}`, undefined, known.length ? `the targets are: ${known.join(', ')}` : 'the definition has no targets: add one under targets:'),
      );
    } else goals.push(ctx.graph.final(t.pipeline));
  }
  return errors.length ? fail(errors) : ok(goals);
}

/**
 * Variables the host provides: the Debian mirror its apt already uses (read from
 * /etc/apt/sources.list.d), so a definition need not name a mirror and works wherever apt does.
 */
export async function hostDefaults(root = '/'): Promise<Record<string, HostDefault>> {
  const m = await hostDebianMirror(root).catch(() => undefined);
  const missing = (name: string, what: string) =>
    `imgmake reads it from this host's apt sources (/etc/apt/sources.list.d), which name no ${what}: ` +
    `set it with --var ${name}=URL, or IMGMAKE_VAR_${name}=URL in the environment`;
  return {
    debian_mirror: { value: m?.archive, missing: missing('debian_mirror', 'Debian archive') },
    debian_security_mirror: { value: m?.security, missing: missing('debian_security_mirror', 'Debian security archive') },
  };
}
