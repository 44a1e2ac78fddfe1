/**
 * load: `imgmake.yaml` (and what it includes) → a validated Definition, every value keeping
 * where it was written. The phases, in order:
 *
 *   1. files.ts    read the root and its includes, parse YAML     (errors here stop load:
 *                                                                   what follows would cascade)
 *   2. here        merge the files' top levels: version, vars, pipelines, targets
 *   3. vars.ts     resolve variables (`--var` overrides win)
 *   4. pipelines.ts stages, rules, options (schema + defaults), inputs, targets
 *   5. references.ts  pipeline references exist and form no cycle
 *
 * Every error that can be found is reported, sorted by file then position, but none twice:
 * a stage with an unknown rule does not also report its options, a variable that failed
 * does not fail again at each use.
 *
 * load does not build the graph, compute keys or read anything but the definition and the
 * existence of the project files it names.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { realRoots } from '../confine.js';
import { isMap, isScalar, type Scalar } from 'yaml';
import { diagnostic, type Diagnostic, type Loc } from '../diagnostic.js';
import type { Definition, PipelineDef, TargetDef } from '../definition.js';
import type { PipelineName } from '../ids.js';
import { fail, ok, type Result } from '../result.js';
import type { RuleRegistry } from '../rule.js';
import { parseRemoteUrl, type RemoteUrl } from '../remote/url.js';
import { parseSize } from '../size.js';
import { readFiles, TOP_KEYS } from './files.js';
import { readPipeline, readTarget, type LoadContext, type PipelineRef } from './pipelines.js';
import { checkReferences } from './references.js';
import { closest, capitalize, listOf } from './suggest.js';
import type { ValidatedOptions } from './validated.js';
import { VAR_NAME, Vars, type HostDefault, type VarDecl } from './vars.js';
import { asMap, deref, describeNode, Diagnostics, entries, nodeLoc, spanLoc, type Entry, type SourceFile } from './yaml.js';

export interface LoadOptions {
  /** The root definition, usually `imgmake.yaml`. */
  file: string;
  rules: RuleRegistry;
  /** `--var NAME=VALUE` overrides: they win over every file's `vars:`. */
  vars?: Record<string, string>;
  /**
   * Where each `vars` entry came from, for messages (`--var hostnme=x`, `IMGMAKE_VAR_hostnme`);
   * default `--var NAME=VALUE`.
   */
  varSources?: Record<string, string>;
  /** Variables the host provides (a package format's mirror); the weakest of all. */
  hostDefaults?: Record<string, HostDefault>;
  /**
   * Folders outside the project that includes and `file:` inputs may name (`--allow-path`).
   * Everything else outside the root definition's folder is an `outside-project` error.
   */
  allow?: string[];
  /** Options validated by earlier builds (the cache's memo, load/validated.ts); default none. */
  validated?: ValidatedOptions;
}

/** The only definition version this imgmake reads. */
export const DEFINITION_VERSION = 1;

export async function load(opts: LoadOptions): Promise<Result<Definition, Diagnostic[]>> {
  const d = new Diagnostics();
  // The project folder as a real path: everything the definition names is checked against it.
  const given = resolve(opts.file);
  let rootDir: string;
  try {
    rootDir = realpathSync(dirname(given));
  } catch {
    return fail([diagnostic('usage', `definition file ${given} does not exist`, undefined, 'run imgmake in a folder with an imgmake.yaml, or name one with -f FILE')]);
  }
  const root = join(rootDir, basename(given));
  const allowed = realRoots(opts.allow ?? []);
  if (!allowed.ok) return fail([diagnostic('usage', `--allow-path ${allowed.dir} ${allowed.why}`, undefined, 'name an existing folder of this host')]);
  const { files, merge } = await readFiles(root, [rootDir, ...allowed.roots], d);
  if (d.count > 0) return fail(sorted(d.list, files));

  const decls = new Map<string, VarDecl>();
  const pipelineEntries: { f: SourceFile; e: Entry }[] = [];
  const targetEntries: { f: SourceFile; e: Entry }[] = [];
  const firstPipeline = new Map<string, Loc>();
  const firstTarget = new Map<string, Loc>();
  let section: CacheSection = {};

  for (const f of merge) {
    const isRoot = f.path === root;
    const top = deref(f, f.doc.contents);
    if (top === null) {
      if (isRoot) d.add('bad-version', `${fileName(f)} is empty`, spanLoc(f, 0, 0), 'start it with "version: 1", then define "pipelines:" and "targets:"');
      continue;
    }
    if (!isMap(top)) {
      d.add('wrong-type', `the top level of ${fileName(f)} must be a mapping, not ${describeNode(top)}`, nodeLoc(f, top), 'write "version: 1", "pipelines:", "targets:" … at the start of lines');
      continue;
    }
    const es = entries(f, top, d, TOP_KEYS, 'at the top level');
    checkVersion(d, f, es.get('version'), isRoot);

    const v = es.get('vars');
    const vmap = v && asMap(f, v.value, '"vars:"', d, nodeLoc(f, v.key), true);
    for (const ve of vmap ? entries(f, vmap, d, undefined, 'in "vars:"') : []) {
      if (!VAR_NAME.test(ve.name)) {
        d.add('wrong-type', `variable name "${ve.name}" is not valid`, nodeLoc(f, ve.key), 'variable names start with a letter or "_", then use letters, digits, "_" or "-"');
        continue;
      }
      // Files come includes-first, so a later declaration is the one that wins.
      decls.set(ve.name, { name: ve.name, file: f, keyLoc: nodeLoc(f, ve.key), value: ve.value });
    }

    section = { ...section, ...readCache(d, f, es.get('cache')) };
    collect(d, f, es.get('pipelines'), '"pipelines:"', 'pipeline', firstPipeline, pipelineEntries);
    collect(d, f, es.get('targets'), '"targets:"', 'target', firstTarget, targetEntries);
  }

  checkOverrides(d, decls, opts);
  const vars = new Vars(decls, opts.vars ?? {}, d, opts.hostDefaults ?? {});
  const finalVars = vars.resolveAll();
  const ctx: LoadContext = { d, vars, rules: opts.rules, rootDir, roots: [rootDir, ...allowed.roots], validated: opts.validated };

  const pipelines = new Map<PipelineName, PipelineDef>();
  const refs: PipelineRef[] = [];
  for (const { f, e } of pipelineEntries) {
    const def = readPipeline(ctx, f, e, refs);
    if (def) pipelines.set(def.name, def);
  }
  const targets = new Map<string, TargetDef>();
  const targetRefs: { to: string; loc: Loc }[] = [];
  for (const { f, e } of targetEntries) {
    const t = readTarget(ctx, f, e);
    if (t.def) targets.set(t.def.name, t.def);
    if (t.ref) targetRefs.push(t.ref);
  }
  checkReferences(d, pipelineEntries.map((p) => p.e.name), refs, targetRefs);
  const defaultTarget = pickDefaultTarget(d, targets, targetEntries.filter((t) => t.f.path === root).map((t) => t.e.name));

  const remote = resolveRemote(d, vars, section.remote);
  if (d.count > 0 || !finalVars) return fail(sorted(d.list, files));
  const cache: Definition['cache'] = { ...(section.maxSize !== undefined ? { maxSize: section.maxSize } : {}), ...(remote ? { remote } : {}) };
  return ok({
    file: root,
    dir: rootDir,
    files: files.map((f) => f.path),
    vars: finalVars,
    pipelines,
    targets,
    ...(defaultTarget ? { defaultTarget } : {}),
    ...(Object.keys(cache).length ? { cache } : {}),
    ...(allowed.roots.length ? { allowed: allowed.roots } : {}),
  });
}

/**
 * A `--var`/`IMGMAKE_VAR_` for a variable no file declares (and the host does not provide) is
 * an error: a misspelt `--var hostnme=web1` would otherwise build the image with the old
 * hostname and say nothing. This holds for every command that loads the definition, so an
 * environment that sets IMGMAKE_VAR_ for another definition fails here too: set it per command.
 */
function checkOverrides(d: Diagnostics, decls: ReadonlyMap<string, VarDecl>, opts: LoadOptions): void {
  const declared = [...decls.keys()];
  const host = Object.keys(opts.hostDefaults ?? {});
  for (const [name, value] of Object.entries(opts.vars ?? {})) {
    if (decls.has(name) || host.includes(name)) continue;
    const given = opts.varSources?.[name] ?? `--var ${name}=${value}`;
    const guess = closest(name, [...declared, ...host]);
    const names = declared.length ? `the definition declares ${listOf(declared)}` : 'the definition declares no variables';
    d.add(
      'unknown-variable',
      `${given}: the definition has no variable "${name}"`,
      undefined,
      guess ? `did you mean "${guess}"? ${capitalize(names)}.` : `${names} (under "vars:"); declare "${name}" there to set it, or remove the setting`,
    );
  }
}

function fileName(f: SourceFile): string {
  return f.path.slice(f.dir.length + 1);
}

/**
 * `cache: { max_size: 10G, remote: URL }`; for each key the root's wins over an include's (files
 * are read includes-first). `remote` is kept as its node: it is substituted once variables exist.
 */
function readCache(d: Diagnostics, f: SourceFile, c: Entry | undefined): CacheSection {
  const map = c && asMap(f, c.value, '"cache:"', d, nodeLoc(f, c.key), true);
  const es = map ? entries(f, map, d, ['max_size', 'remote'], 'in "cache:"') : new Map<string, Entry>();
  const out: CacheSection = {};
  const max = es.get('max_size');
  if (max) {
    const node = max.value;
    const bytes = isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number') ? parseSize(String(node.value)) : undefined;
    if (bytes !== undefined) out.maxSize = bytes;
    else d.add('wrong-type', `"max_size" must be a size, not ${describeNode(node)}`, nodeLoc(f, node, nodeLoc(f, max.key)), 'write a number of bytes with K, M, G or T (powers of 1024): max_size: 10G');
  }
  const remote = es.get('remote');
  if (remote) {
    if (isScalar(remote.value) && typeof remote.value.value === 'string') out.remote = { f, node: remote.value };
    else d.add('wrong-type', `"remote" must be a URL, not ${describeNode(remote.value)}`, nodeLoc(f, remote.value ?? remote.key, nodeLoc(f, remote.key)), REMOTE_HINT);
  }
  return out;
}

interface CacheSection {
  maxSize?: number;
  remote?: { f: SourceFile; node: Scalar };
}

const REMOTE_HINT = 'write remote: http(s)://HOST/PATH (a remote-cache server) or oci://HOST/REPOSITORY (a registry); credentials go in the environment';

/** The definition's remote, `${…}` substituted and checked (an empty value means none). */
function resolveRemote(d: Diagnostics, vars: Vars, r: CacheSection['remote']): RemoteUrl | undefined {
  if (!r) return undefined;
  const loc = nodeLoc(r.f, r.node);
  const v = vars.substitute(r.f, r.node);
  if (!v.ok) return undefined;
  const text = String(v.value).trim();
  if (!text) return undefined;
  const parsed = parseRemoteUrl(text);
  if ('message' in parsed) {
    d.add('wrong-type', `remote: ${parsed.shown}: ${parsed.message}`, loc, parsed.hint);
    return undefined;
  }
  return parsed;
}

function checkVersion(d: Diagnostics, f: SourceFile, v: Entry | undefined, isRoot: boolean): void {
  if (!v) {
    if (isRoot) {
      d.add('bad-version', `${fileName(f)} has no "version:"`, spanLoc(f, 0, 0), `add "version: ${DEFINITION_VERSION}" as its first line`);
    }
    return;
  }
  const node = v.value;
  if (isScalar(node) && node.value === DEFINITION_VERSION) return;
  const at = nodeLoc(f, node, nodeLoc(f, v.key));
  if (isScalar(node) && typeof node.value === 'number') {
    d.add('bad-version', `unknown definition version ${String(node.value)}: this imgmake reads version ${DEFINITION_VERSION}`, at, `write "version: ${DEFINITION_VERSION}"; another version needs another imgmake`);
  } else {
    d.add('bad-version', `"version:" must be the number ${DEFINITION_VERSION}, not ${describeNode(node)}`, at, `write "version: ${DEFINITION_VERSION}" (without quotes)`);
  }
}

/**
 * The target `imgmake build` builds when none is named: the one marked `default: true` (two
 * marked is an error at the second), else the top-level file's first, else the first at all.
 */
function pickDefaultTarget(d: Diagnostics, targets: Map<string, TargetDef>, rootNames: string[]): string | undefined {
  const marked = [...targets.values()].filter((t) => t.default);
  if (marked.length > 1) {
    d.add('duplicate', `targets "${marked[0]!.name}" and "${marked[1]!.name}" are both marked "default: true"`, marked[1]!.loc, 'mark one target as the default, the one imgmake build builds when no target is named');
  }
  return marked[0]?.name ?? rootNames.find((n) => targets.has(n)) ?? targets.keys().next().value;
}

/** A `pipelines:`/`targets:` section's entries; a name defined before (here or in another file) is a `duplicate`. */
function collect(
  d: Diagnostics,
  f: SourceFile,
  section: Entry | undefined,
  what: string,
  kind: string,
  first: Map<string, Loc>,
  into: { f: SourceFile; e: Entry }[],
): void {
  if (!section) return;
  const map = asMap(f, section.value, what, d, nodeLoc(f, section.key), true);
  for (const e of map ? entries(f, map, d, undefined, `in ${what}`) : []) {
    const loc = nodeLoc(f, e.key);
    const before = first.get(e.name);
    if (before) {
      d.add('duplicate', `${kind} "${e.name}" is defined twice`, loc, `rename one of them, or remove one: a ${kind} cannot be redefined, even by the file that includes it`, [
        { message: `"${e.name}" is first defined here`, loc: before },
      ]);
      continue;
    }
    first.set(e.name, loc);
    into.push({ f, e });
  }
}

/** By file (in reading order: root, then includes) then position; errors without a place first. */
function sorted(list: readonly Diagnostic[], files: readonly SourceFile[]): Diagnostic[] {
  const rank = new Map(files.map((f, i) => [f.path, i]));
  const seen = new Set<string>();
  const unique = list.filter((x) => {
    const id = JSON.stringify([x.reason, x.message, x.loc]);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  const key = (x: Diagnostic): [number, number, number] =>
    x.loc ? [rank.get(x.loc.file) ?? files.length, x.loc.line, x.loc.col] : [-1, 0, 0];
  return unique
    .map((x, i) => ({ x, i, k: key(x) }))
    .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.k[2] - b.k[2] || a.i - b.i)
    .map((e) => e.x);
}
