/**
 * `pipelines:` and `targets:` entries → PipelineDef / TargetDef: stage shapes, rule names,
 * options (substituted, then validated by the rule's schema), inputs (against the rule's
 * declared inputs; project files must exist). References to other pipelines are collected,
 * not resolved: `references.ts` checks them once every pipeline is known.
 */
import { lstatSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { resolveConfined, type Roots } from '../confine.js';
import { confinedHint, outsideMessage } from './outside.js';
import { isMap, isScalar, type Node } from 'yaml';
import { materialize, parseInline } from '../manifest/inline.js';
import { fail } from '../result.js';
import type { Loc } from '../diagnostic.js';
import type { InputDef, PipelineDef, StageDef, TargetDef } from '../definition.js';
import type { PipelineName, RuleName } from '../ids.js';
import type { Rule, RuleRegistry } from '../rule.js';
import { checkOptions } from './options.js';
import type { ValidatedOptions } from './validated.js';
import { closest, didYouMean, lowerFirst, unknownNameHint } from './suggest.js';
import { toValue, type Paths } from './values.js';
import type { Vars } from './vars.js';
import {
  asMap,
  asSeq,
  deref,
  describeNode,
  entries,
  HINT_STRING,
  nodeLoc,
  pairLoc,
  type Diagnostics,
  type Entry,
  type SourceFile,
} from './yaml.js';

/** `[a-z][a-z0-9_-]*`: no dots, because a node id is `PIPELINE.STAGE`. */
export const PIPELINE_NAME = /^[a-z][a-z0-9_-]*$/;
/** Same as pipelines; a stage's default id is its index, so names cannot start with a digit. */
export const STAGE_NAME = /^[a-z][a-z0-9_-]*$/;
/** Input names become a path component in the sandbox (`/run/imgmake/inputs/NAME`). */
export const INPUT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** Target names become a folder: `out/TARGET/`. */
export const TARGET_NAME = /^[a-z][a-z0-9_.-]*$/;

const PIPELINE_KEYS = ['base', 'build', 'stages'];
const STAGE_KEYS = ['name', 'rule', 'options', 'inputs'];
const INPUT_KEYS = ['pipeline', 'file', 'inline'];
const TARGET_KEYS = ['pipeline', 'export', 'default'];

const NAME_RULES = 'start with a lowercase letter, then use lowercase letters, digits, "_" or "-"';

export interface LoadContext {
  d: Diagnostics;
  vars: Vars;
  rules: RuleRegistry;
  /** The root definition's directory (a real path): `rel` paths start here. */
  rootDir: string;
  /** Where `file:` inputs may lead: the project folder, then any --allow-path folder. */
  roots: Roots;
  /** Options validated by earlier builds (load/validated.ts). */
  validated?: ValidatedOptions | undefined;
}

/** A use of one pipeline's tree by another: checked for existence and cycles later. */
export interface PipelineRef {
  from: PipelineName;
  to: string;
  loc: Loc;
  how: 'base' | 'build' | 'input';
}

function show(ctx: LoadContext, p: string): string {
  const r = relative(ctx.rootDir, p).split(sep).join('/');
  return r === '' ? '.' : r;
}

/** A string value, `${…}` substituted; `undefined` after reporting when it is not one. */
function readString(ctx: LoadContext, f: SourceFile, node: Node | null, what: string, at: Loc): string | undefined {
  if (!isScalar(node)) {
    ctx.d.add('wrong-type', `${what} must be a string, not ${describeNode(node)}`, node ? nodeLoc(f, node) : at, HINT_STRING);
    return undefined;
  }
  const r = ctx.vars.substitute(f, node);
  if (!r.ok) return undefined;
  if (typeof r.value !== 'string' || r.value === '') {
    ctx.d.add('wrong-type', `${what} must be a non-empty string, not ${describeNode(node)}`, nodeLoc(f, node), HINT_STRING);
    return undefined;
  }
  return r.value;
}

export function checkName(ctx: LoadContext, f: SourceFile, e: Entry, what: string, re: RegExp, rules: string): boolean {
  if (re.test(e.name)) return true;
  ctx.d.add('wrong-type', `${what} name "${e.name}" is not valid`, nodeLoc(f, e.key), `${what} names ${rules}`);
  return false;
}

/** The pipeline, if it has no error; its references to other pipelines are added to `refs` either way. */
export function readPipeline(ctx: LoadContext, f: SourceFile, e: Entry, refs: PipelineRef[]): PipelineDef | undefined {
  const name = e.name as PipelineName;
  const loc = nodeLoc(f, e.key);
  const nameOk = checkName(ctx, f, e, 'pipeline', PIPELINE_NAME, `${NAME_RULES} (no dots: stages are named PIPELINE.STAGE)`);
  const map = asMap(f, e.value, `pipeline "${name}"`, ctx.d, loc);
  if (!map) return undefined;
  const es = entries(f, map, ctx.d, PIPELINE_KEYS, `in pipeline "${name}"`);
  let ok = nameOk;
  const reference = (key: 'base' | 'build'): { pipeline: PipelineName; loc: Loc } | undefined => {
    const b = es.get(key);
    if (!b) return undefined;
    const to = readString(ctx, f, b.value, `"${key}:" of pipeline "${name}"`, nodeLoc(f, b.key));
    if (to === undefined) {
      ok = false;
      return undefined;
    }
    const bl = nodeLoc(f, b.value);
    refs.push({ from: name, to, loc: bl, how: key });
    return { pipeline: to as PipelineName, loc: bl };
  };
  const base = reference('base');
  const build = reference('build');
  const s = es.get('stages');
  if (!s) {
    if (es.mistyped('stages')) return undefined;
    ctx.d.add('missing-key', `pipeline "${name}" has no "stages:"`, loc, 'add "stages:" with a list of stages, each "- rule: NAME"');
    return undefined;
  }
  const seq = asSeq(f, s.value, `"stages:" of pipeline "${name}"`, ctx.d, nodeLoc(f, s.key), 'start each stage with "- ", as in "- rule: files.mkdir"');
  if (!seq) return undefined;
  if (seq.items.length === 0) {
    ctx.d.add(
      'wrong-type',
      `pipeline "${name}" has no stages`,
      nodeLoc(f, s.key),
      "add at least one stage (\"- rule: NAME\"): a pipeline's tree is what its last stage leaves",
    );
    return undefined;
  }
  const stages: StageDef[] = [];
  const named = new Map<string, Loc>();
  seq.items.forEach((item, index) => {
    const stage = readStage(ctx, f, name, index, deref(f, item), nodeLoc(f, s.key), named, refs);
    if (stage) stages.push(stage);
    else ok = false;
  });
  if (!ok) return undefined;
  return { name, loc, ...(base ? { base } : {}), ...(build ? { build } : {}), stages };
}

function readStage(
  ctx: LoadContext,
  f: SourceFile,
  pipeline: PipelineName,
  index: number,
  node: Node | null,
  at: Loc,
  named: Map<string, Loc>,
  refs: PipelineRef[],
): StageDef | undefined {
  const where = `stage ${index} of pipeline "${pipeline}"`;
  const map = asMap(f, node, where, ctx.d, at);
  if (!map) return undefined;
  const loc = nodeLoc(f, map);
  const es = entries(f, map, ctx.d, STAGE_KEYS, `in ${where}`);
  let ok = true;

  let id = String(index);
  const n = es.get('name');
  if (n) {
    const name = readString(ctx, f, n.value, `"name:" of ${where}`, nodeLoc(f, n.key));
    const nameLoc = nodeLoc(f, n.value, nodeLoc(f, n.key));
    if (name === undefined) ok = false;
    else if (!STAGE_NAME.test(name)) {
      ctx.d.add('wrong-type', `stage name "${name}" is not valid`, nameLoc, `stage names ${NAME_RULES}`);
      ok = false;
    } else if (named.has(name)) {
      ctx.d.add('duplicate', `pipeline "${pipeline}" has two stages named "${name}"`, nameLoc, 'give each stage of a pipeline its own name', [
        { message: `the first stage named "${name}" is here`, loc: named.get(name)! },
      ]);
      ok = false;
    } else {
      named.set(name, nameLoc);
      id = name;
    }
  }

  const r = es.get('rule');
  if (!r) {
    if (es.mistyped('rule')) return undefined;
    ctx.d.add('missing-key', `${where} has no "rule:"`, loc, 'add "rule: NAME" naming what the stage does; `imgmake rules` lists every rule');
    return undefined;
  }
  const ruleLoc = nodeLoc(f, r.value, nodeLoc(f, r.key));
  const ruleName = readString(ctx, f, r.value, `"rule:" of ${where}`, ruleLoc);
  if (ruleName === undefined) return undefined;
  const rule = ctx.rules.get(ruleName as RuleName);
  if (!rule) {
    ctx.d.add(
      'unknown-rule',
      `unknown rule "${ruleName}"`,
      ruleLoc,
      `${didYouMean(ruleName, ctx.rules.keys()) || 'check the name: '}\`imgmake rules\` lists every rule.`,
    );
    return undefined;
  }

  // Options: substituted, then validated (which fills in defaults).
  const o = es.get('options');
  let options: Record<string, unknown> | undefined;
  const optionLocs: Record<string, Loc> = {};
  const paths: Paths = new Map();
  const optionsNode = o?.value ?? null;
  if (es.mistyped('options')) {
    ok = false; // `optoins:` was reported; its options cannot be checked
  } else if (o && optionsNode !== null && !isMap(optionsNode)) {
    asMap(f, optionsNode, `"options:" of ${where}`, ctx.d, nodeLoc(f, o.key));
    ok = false;
  } else {
    const v = toValue(f, optionsNode, ctx.vars, ctx.d, paths);
    if (!v.ok) ok = false;
    else {
      options = (v.value ?? {}) as Record<string, unknown>;
      if (!checkOptions({ f, rule, options, paths, entry: o, ruleLoc, d: ctx.d, validated: ctx.validated })) ok = false;
      if (isMap(optionsNode)) {
        for (const pair of optionsNode.items) {
          if (isScalar(pair.key)) optionLocs[String(pair.key.value)] = pairLoc(f, pair);
        }
      }
    }
  }

  const i = es.get('inputs');
  const inputs = es.mistyped('inputs') ? undefined : readInputs(ctx, f, pipeline, where, rule, i, ruleLoc, refs);
  if (!ok || !options || !inputs) return undefined;
  return { pipeline, index, id, rule: rule.name, ruleLoc, options, optionLocs, inputs, loc };
}

function readInputs(
  ctx: LoadContext,
  f: SourceFile,
  pipeline: PipelineName,
  where: string,
  rule: Rule,
  i: Entry | undefined,
  ruleLoc: Loc,
  refs: PipelineRef[],
): InputDef[] | undefined {
  const specs = rule.schema.inputs ?? {};
  const declared = Object.keys(specs).filter((k) => k !== '*');
  const defs: InputDef[] = [];
  const unknown: string[] = [];
  let ok = true;
  const map = i ? asMap(f, i.value, `"inputs:" of ${where}`, ctx.d, nodeLoc(f, i.key), true) : undefined;
  if (i && i.value !== null && !map) return undefined;

  for (const e of map ? entries(f, map, ctx.d, undefined, `in "inputs:"`) : []) {
    const spec = specs[e.name] ?? specs['*'];
    if (!spec) {
      ctx.d.add(
        'unknown-input',
        `rule ${rule.name} has no input "${e.name}"`,
        nodeLoc(f, e.key),
        unknownNameHint(e.name, declared, `inputs of ${rule.name}`, `${rule.name} takes no inputs`),
      );
      unknown.push(e.name);
      ok = false;
      continue;
    }
    if (!INPUT_NAME.test(e.name)) {
      ctx.d.add('wrong-type', `input name "${e.name}" is not valid`, nodeLoc(f, e.key), 'input names use letters, digits, "_", "-" and "."');
      ok = false;
      continue;
    }
    const inputLoc = pairLoc(f, e.pair);
    const what = `input "${e.name}"`;
    const m = asMap(f, e.value, what, ctx.d, nodeLoc(f, e.key));
    if (!m) {
      ok = false;
      continue;
    }
    const ies = entries(f, m, ctx.d, INPUT_KEYS, `in ${what}`);
    const p = ies.get('pipeline');
    const fl = ies.get('file');
    const il = ies.get('inline');
    if (il) {
      // A file or folder carried in the definition (a manifest's, src/manifest/inline.ts).
      const parsed = p || fl ? fail('an input is one of "pipeline:", "file:" or "inline:"') : parseInline(il.value?.toJS(f.doc) ?? null);
      if (!parsed.ok || (spec.kinds && !spec.kinds.includes('file'))) {
        ctx.d.add('wrong-type', parsed.ok ? `input "${e.name}" of rule ${rule.name} must be a pipeline, not a file` : parsed.error, nodeLoc(f, il.key), 'an inline input is written by --with-manifest; build again to write it anew');
        ok = false;
        continue;
      }
      let path: string;
      try {
        path = materialize(parsed.value, ctx.rootDir);
      } catch (err) {
        ctx.d.add('bad-file', `input "${e.name}": cannot write its content beside the definition: ${(err as Error).message}`, nodeLoc(f, il.key), 'inline inputs are written to .imgmake/inline/ in the definition\'s folder: make it writable');
        ok = false;
        continue;
      }
      defs.push({ name: e.name, loc: pairLoc(f, e.pair), kind: 'file', path, root: ctx.rootDir, rel: relative(ctx.rootDir, path).split(sep).join('/') });
      continue;
    }
    const shape = '"{ pipeline: NAME }" (another pipeline\'s tree) or "{ file: PATH }" (a file or folder of the project)';
    if (!p && !fl) {
      if (ies.unknown.length === 0) {
        ctx.d.add('missing-key', `${what} names neither a pipeline nor a file`, nodeLoc(f, m, nodeLoc(f, e.key)), `write ${shape}`);
      }
      ok = false;
      continue;
    }
    if (p && fl) {
      ctx.d.add('wrong-type', `${what} names both a pipeline and a file`, nodeLoc(f, fl.key), `keep one of them: an input is ${shape}`);
      ok = false;
      continue;
    }
    const kind = p ? 'pipeline' : 'file';
    const given = (p ?? fl)!;
    if (spec.kinds && !spec.kinds.includes(kind)) {
      const want = spec.kinds.join(' or ');
      ctx.d.add(
        'wrong-type',
        `input "${e.name}" of rule ${rule.name} must be a ${want}, not a ${kind}`,
        nodeLoc(f, given.key),
        `write "${e.name}: { ${spec.kinds[0]}: ${spec.kinds[0] === 'pipeline' ? 'NAME' : 'PATH'} }"`,
      );
      ok = false;
      continue;
    }
    const value = readString(ctx, f, given.value, `"${kind}:" of ${what}`, nodeLoc(f, given.key));
    if (value === undefined) {
      ok = false;
      continue;
    }
    const valueLoc = nodeLoc(f, given.value);
    if (kind === 'pipeline') {
      defs.push({ name: e.name, loc: inputLoc, kind: 'pipeline', pipeline: value as PipelineName });
      refs.push({ from: pipeline, to: value, loc: valueLoc, how: 'input' });
      continue;
    }
    const r = resolveConfined(ctx.roots, f.dir, value);
    if (!r.ok) {
      const shown = (p: string) => show(ctx, p);
      if (r.error === 'outside') {
        ctx.d.add('outside-project', outsideMessage(`input file "${value}"`, r.escape, shown), valueLoc, confinedHint(shown, 'file'));
      } else {
        ctx.d.add('bad-file', `input file "${value}" ${r.error === 'loop' ? 'is a symlink loop' : 'does not exist'}`, valueLoc, confinedHint(shown, 'file', r, value, f));
      }
      ok = false;
      continue;
    }
    const type = fileKind(r.path);
    if (type !== 'file' && type !== 'dir') {
      ctx.d.add('bad-file', `input file "${value}" is ${type}`, valueLoc, 'name a regular file or a folder of the project');
      ok = false;
      continue;
    }
    defs.push({ name: e.name, loc: inputLoc, kind: 'file', path: r.path, root: r.root, rel: relative(ctx.rootDir, r.path).split(sep).join('/') });
  }

  const bound = new Set(defs.map((x) => x.name));
  const given = new Set(map?.items.map((pair) => (isScalar(pair.key) ? String(pair.key.value) : '')) ?? []);
  for (const [name, spec] of Object.entries(specs)) {
    if (name === '*' || !spec.required || bound.has(name) || given.has(name)) continue;
    // `tre:` was reported as unknown: that explains the missing `tree`.
    if (unknown.some((u) => closest(u, [name]) === name)) continue;
    const kinds = spec.kinds ?? ['pipeline', 'file'];
    const example = `${name}: { ${kinds[0]}: ${kinds[0] === 'pipeline' ? 'NAME' : 'PATH'} }`;
    ctx.d.add(
      'missing-input',
      `rule ${rule.name} needs input "${name}" (${lowerFirst(spec.description.replace(/\.$/, ''))})`,
      i ? nodeLoc(f, i.key) : ruleLoc,
      i ? `add "${example}" under "inputs:"` : `add "inputs:" to the stage with "${example}"`,
    );
    ok = false;
  }
  return ok ? defs : undefined;
}

/** What a resolved input is: only regular files and folders are bound into a sandbox. */
function fileKind(path: string): string {
  const st = lstatSync(path);
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSocket()) return 'a socket';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** The target if it has no error, and the pipeline it names (to check) if that could be read. */
export function readTarget(ctx: LoadContext, f: SourceFile, e: Entry): { def?: TargetDef; ref?: { to: string; loc: Loc } } {
  const loc = nodeLoc(f, e.key);
  const nameOk = checkName(ctx, f, e, 'target', TARGET_NAME, 'start with a lowercase letter, then use lowercase letters, digits, "_", "-" or "."');
  const shorthand = isScalar(e.value) && typeof e.value.value === 'string' ? `write "${e.name}: { pipeline: ${e.value.value} }"` : undefined;
  const map = asMap(f, e.value, `target "${e.name}"`, ctx.d, loc, false, shorthand);
  if (!map) return {};
  const es = entries(f, map, ctx.d, TARGET_KEYS, `in target "${e.name}"`);
  let ok = nameOk;
  const p = es.get('pipeline');
  let pipeline: string | undefined;
  let ref: { to: string; loc: Loc } | undefined;
  if (!p) {
    if (!es.mistyped('pipeline')) ctx.d.add('missing-key', `target "${e.name}" has no "pipeline:"`, loc, 'add "pipeline: NAME" naming the pipeline whose tree the target exports');
    ok = false;
  } else {
    pipeline = readString(ctx, f, p.value, `"pipeline:" of target "${e.name}"`, nodeLoc(f, p.key));
    if (pipeline === undefined) ok = false;
    else ref = { to: pipeline, loc: nodeLoc(f, p.value) };
  }
  const exp: string[] = [];
  const x = es.get('export');
  if (x && x.value !== null) {
    const seq = asSeq(f, x.value, `"export:" of target "${e.name}"`, ctx.d, nodeLoc(f, x.key));
    if (!seq) ok = false;
    for (const item of seq?.items ?? []) {
      const node = deref(f, item);
      const s = readString(ctx, f, node, 'each path to export', nodeLoc(f, seq));
      if (s === undefined) ok = false;
      else if (s.split('/').includes('..')) {
        ctx.d.add('wrong-type', `export path "${s}" leaves the tree`, nodeLoc(f, node), 'name a path inside the pipeline\'s tree, without ".."');
        ok = false;
      } else exp.push(s);
    }
  }
  // `default: true`: what `imgmake build` with no target builds (load picks one, see index.ts).
  let isDefault = false;
  const dflt = es.get('default');
  if (dflt) {
    const node = deref(f, dflt.value);
    if (isScalar(node) && typeof node.value === 'boolean') isDefault = node.value;
    else {
      ctx.d.add('wrong-type', `"default:" of target "${e.name}" must be true or false, not ${describeNode(node)}`, nodeLoc(f, node ?? dflt.key), 'write "default: true" on the target imgmake build builds when no target is named');
      ok = false;
    }
  }
  const def = ok && pipeline !== undefined ? { name: e.name, loc, pipeline: pipeline as PipelineName, export: exp, ...(isDefault ? { default: true as const } : {}) } : undefined;
  return { ...(def ? { def } : {}), ...(ref ? { ref } : {}) };
}
