/**
 * A stage's options against its rule's JSON-Schema: `rule.validate` (ajv, all errors,
 * defaults filled in place) unless the cache's memo knows them (load/validated.ts), then each
 * ajv error mapped back to the YAML the user wrote and said in words: which option, what is
 * wrong with it, what to write instead.
 */
import type { ErrorObject } from 'ajv';
import { isMap, type Node } from 'yaml';
import type { Loc } from '../diagnostic.js';
import type { Rule } from '../rule.js';
import { closest, didYouMean, listOf, lowerFirst, unknownNameHint } from './suggest.js';
import type { ValidatedOptions } from './validated.js';
import { pointerSegment, type Paths } from './values.js';
import { describeValue, HINT_LIST, HINT_MAPPING, nodeLoc, type Diagnostics, type Entry, type SourceFile } from './yaml.js';

export interface OptionsCheck {
  f: SourceFile;
  rule: Rule;
  /** Validated in place: defaults are filled in. */
  options: Record<string, unknown>;
  paths: Paths;
  /** The stage's `options:` entry, if it has one. */
  entry: Entry | undefined;
  ruleLoc: Loc;
  d: Diagnostics;
  /** Options validated by earlier builds (load/validated.ts); none: ajv validates every stage. */
  validated?: ValidatedOptions | undefined;
}

/**
 * Validates; returns false (after reporting) when the options do not fit the schema. Options
 * that passed in an earlier build are taken from `c.validated` with their defaults, without ajv.
 */
export function checkOptions(c: OptionsCheck): boolean {
  const digest = c.validated?.digest(c.rule.schema.options, c.options);
  const known = digest === undefined ? undefined : c.validated!.get(digest);
  if (known) {
    // In place, as ajv fills in defaults: the caller holds this object.
    for (const k of Object.keys(c.options)) delete c.options[k];
    Object.assign(c.options, known);
    return true;
  }
  if (c.rule.validate(c.options)) {
    if (digest !== undefined) c.validated!.set(digest, c.options);
    return true;
  }
  const errors = relevant(c.rule.validate.errors ?? []);
  for (const e of errors) if (!explained(e, errors)) report(c, e);
  return false;
}

/** Drops repeats, and the branch errors of an `anyOf`/`oneOf` (its own error says it better). */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const branches = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (branches.some((b) => e.schemaPath.startsWith(b))) return false;
    const id = `${e.instancePath}\0${e.keyword}\0${JSON.stringify(e.params)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** A missing property next to an unknown one that looks like its typo (`pahts`): the typo says it all. */
function explained(e: ErrorObject, errors: readonly ErrorObject[]): boolean {
  if (e.keyword !== 'required') return false;
  const missing = String((e.params as Record<string, unknown>)['missingProperty']);
  return errors.some(
    (x) =>
      x.keyword === 'additionalProperties' &&
      x.instancePath === e.instancePath &&
      closest(String((x.params as Record<string, unknown>)['additionalProperty']), [missing]) === missing,
  );
}

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The sub-schema at a `#/…` schema path of the rule's options schema. */
function schemaAt(rule: Rule, schemaPath: string): Record<string, unknown> | undefined {
  let at: unknown = rule.schema.options;
  for (const seg of schemaPath.replace(/^#\/?/, '').split('/').filter((s) => s !== '')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[unescape(seg)];
  }
  return at !== null && typeof at === 'object' ? (at as Record<string, unknown>) : undefined;
}

function parentSchemaPath(schemaPath: string): string {
  return schemaPath.slice(0, schemaPath.lastIndexOf('/'));
}

function valueAt(options: unknown, pointer: string): unknown {
  let at = options;
  for (const seg of pointer.split('/').slice(1)) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[unescape(seg)];
  }
  return at;
}

/** `/items/0/from` → `items[0].from`. */
function optionName(pointer: string): string {
  let out = '';
  for (const seg of pointer.split('/').slice(1).map(unescape)) {
    out += /^\d+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** The node written at `pointer`, or at its nearest written ancestor (a default has none). */
function writtenAt(c: OptionsCheck, pointer: string): Node | undefined {
  for (let p = pointer; ; p = p.slice(0, p.lastIndexOf('/'))) {
    const w = c.paths.get(p);
    if (w) return w.node;
    if (p === '') return undefined;
  }
}

function locAt(c: OptionsCheck, pointer: string): Loc {
  const node = writtenAt(c, pointer);
  return node ? nodeLoc(c.f, node) : c.ruleLoc;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'a boolean (true or false)',
  array: 'a list',
  object: 'a mapping',
  null: 'empty (null)',
};

function typeWords(t: unknown): string {
  const list = Array.isArray(t) ? t : [t];
  return list.map((x) => TYPE_WORDS[String(x)] ?? String(x)).join(' or ');
}

function about(schema: Record<string, unknown> | undefined): string {
  const desc = schema?.['description'];
  return typeof desc === 'string' ? desc.replace(/\.?$/, '.') : '';
}

function report(c: OptionsCheck, e: ErrorObject): void {
  const rule = c.rule.name;
  const path = e.instancePath;
  const name = optionName(path);
  const subject = path === '' ? `options of rule ${rule}` : `option ${name} of rule ${rule}`;
  const value = valueAt(c.options, path);
  const own = schemaAt(c.rule, parentSchemaPath(e.schemaPath));
  const seeAlso = about(own) || '`imgmake rules` describes every rule and its options.';
  const params = e.params as Record<string, unknown>;

  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = String(params['additionalProperty']);
      const w = c.paths.get(`${path}/${pointerSegment(prop)}`);
      const allowed = Object.keys((own?.['properties'] as Record<string, unknown> | undefined) ?? {});
      c.d.add(
        'invalid-options',
        path === '' ? `unknown option "${prop}" for rule ${rule}` : `unknown key "${prop}" in option ${name} of rule ${rule}`,
        w?.key ? nodeLoc(c.f, w.key) : locAt(c, path),
        path === ''
          ? unknownNameHint(prop, allowed, `options of ${rule}`, `${rule} takes no options`)
          : unknownNameHint(prop, allowed, `keys allowed in ${name}`, `${name} takes no keys`),
      );
      return;
    }
    case 'required': {
      const prop = String(params['missingProperty']);
      const propSchema = (own?.['properties'] as Record<string, Record<string, unknown>> | undefined)?.[prop];
      const desc = about(propSchema).replace(/\.$/, '');
      const kind = propSchema?.['type'] !== undefined ? typeWords(propSchema['type']) : '';
      const what = kind && desc ? `; ${prop} is ${kind} (${lowerFirst(desc)})` : kind ? `; ${prop} is ${kind}` : desc ? `; ${prop}: ${lowerFirst(desc)}` : '';
      let loc: Loc;
      let hint: string;
      if (path === '' && !c.entry) {
        loc = c.ruleLoc;
        hint = `add "options:" to the stage, with "${prop}:"`;
      } else {
        const node = path === '' ? c.entry!.value : writtenAt(c, path);
        // A block mapping's first line is one of its entries: point at its key instead.
        const blockUnderKey = path === '' && c.entry && !(isMap(node) && node.flow) ? c.entry.key : undefined;
        loc = blockUnderKey ? nodeLoc(c.f, blockUnderKey) : node ? nodeLoc(c.f, node) : c.ruleLoc;
        hint = `add "${prop}:" ${path === '' ? 'under "options:"' : `to ${name}`}`;
      }
      c.d.add(
        'invalid-options',
        path === '' ? `rule ${rule} needs option "${prop}"` : `option ${name} of rule ${rule} needs "${prop}"`,
        loc,
        `${hint}${what}`,
      );
      return;
    }
    case 'enum': {
      const allowed = ((params['allowedValues'] as unknown[] | undefined) ?? []).map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
      const guess = typeof value === 'string' ? didYouMean(value, allowed) : '';
      c.d.add(
        'invalid-options',
        `${subject} must be one of ${listOf(allowed)}, not ${JSON.stringify(value)}`,
        locAt(c, path),
        guess ? `${guess}Allowed: ${allowed.join(', ')}.` : `use one of: ${allowed.join(', ')}`,
      );
      return;
    }
    case 'const': {
      c.d.add(
        'invalid-options',
        `${subject} must be ${JSON.stringify(params['allowedValue'])}, not ${JSON.stringify(value)}`,
        locAt(c, path),
        `write ${JSON.stringify(params['allowedValue'])} here, or remove it`,
      );
      return;
    }
    case 'type': {
      const want = params['type'];
      const wants = Array.isArray(want) ? want.map(String) : [String(want)];
      let hint: string;
      if (wants.includes('string') && (typeof value === 'number' || typeof value === 'boolean')) {
        const node = writtenAt(c, path);
        const text = node && 'source' in node && typeof node.source === 'string' ? node.source : String(value);
        hint = `quote it to make it a string: "${text}"`;
      } else if (wants.includes('array')) hint = HINT_LIST;
      else if (wants.includes('object')) hint = HINT_MAPPING;
      else if (wants.includes('integer') || wants.includes('number')) hint = 'write a number, without quotes';
      else if (wants.includes('boolean')) hint = 'write true or false, without quotes';
      else hint = `write ${typeWords(want)} here`;
      c.d.add('invalid-options', `${subject} must be ${typeWords(want)}, not ${describeValue(value)}`, locAt(c, path), hint);
      return;
    }
    case 'pattern': {
      c.d.add(
        'invalid-options',
        `${subject} is ${JSON.stringify(value)}, which does not match the pattern ${String(params['pattern'])}`,
        locAt(c, path),
        about(own) ? `change it to match; ${name}: ${lowerFirst(about(own)).replace(/\.$/, '')}` : `change it to match ${String(params['pattern'])}`,
      );
      return;
    }
    default: {
      c.d.add('invalid-options', `${subject} ${e.message ?? `fails "${e.keyword}"`}`, locAt(c, path), seeAlso);
      return;
    }
  }
}
