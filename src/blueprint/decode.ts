/**
 * The positioned tree (tree.ts) → a typed `Blueprint`, driven by the field table in schema.ts:
 * unknown keys (with a "did you mean"), values of the wrong type, missing required keys and
 * values that cannot be read as what they stand for (a size, a mode). Semantic rules (names,
 * path policy, duplicates) are check.ts's; support per image type is support.ts's.
 *
 * Every diagnostic is collected (not only the first), so one run shows every mistake.
 */
import type { Diagnostic, Loc } from '../diagnostic.js';
import { diagnostic } from '../diagnostic.js';
import { closest, listOf } from '../load/suggest.js';
import { describe, type TableNode, type ValueNode } from './tree.js';
import { TOP, type Field, type Fields } from './schema.js';
import type { Blueprint, BlueprintFormat, OptionUse } from './types.js';

interface Ctx {
  format: BlueprintFormat;
  d: Diagnostic[];
  used: OptionUse[];
}

/** Decode a parsed document. Returns the blueprint (possibly partial) and every diagnostic found. */
export function decodeBlueprint(root: TableNode, file: string, format: BlueprintFormat): { blueprint?: Blueprint; diagnostics: Diagnostic[] } {
  const ctx: Ctx = { format, d: [], used: [] };
  const top = decodeTable(ctx, root, TOP, '', 'the blueprint', ['name']);
  if (ctx.d.length > 0 || !top['name']) return { diagnostics: ctx.d };
  const bp = { ...top, file, format, loc: { ...root.loc, line: 1, col: 1, endLine: 1, endCol: 1 }, used: ctx.used } as unknown as Blueprint;
  return { blueprint: bp, diagnostics: [] };
}

type Obj = Record<string, unknown> & { loc: Loc };

function decodeTable(ctx: Ctx, t: TableNode, fields: Fields, path: string, what: string, required: readonly string[] = []): Obj {
  const out: Obj = { loc: t.loc };
  const allowed = Object.keys(fields);
  for (const e of t.entries.values()) {
    const f = fields[e.key];
    const option = path ? `${path}.${e.key}` : e.key;
    if (!f) {
      // Guess among every field, but list only those with a mapping: the rest would only be refused later.
      const guess = closest(e.key, allowed);
      const listed = allowed.filter((k) => fields[k]!.kind !== 'unmapped');
      const hint = guess ? `did you mean "${guess}"? Fields of ${what}: ${listOf(listed)}.` : `remove it, or use one of the fields of ${what}: ${listOf(listed)}`;
      ctx.d.push(diagnostic('unknown-key', `unknown field "${e.key}" in ${what}`, e.keyLoc, hint));
      continue;
    }
    ctx.used.push({ option, loc: e.keyLoc });
    const v = decodeValue(ctx, e.value, f, option, `"${e.key}" of ${what}`);
    if (v !== undefined) out[e.key] = v;
  }
  for (const [k, f] of Object.entries(fields)) {
    if (out[k] === undefined && (f.kind === 'strings' || f.kind === 'tables') && !t.entries.has(k)) out[k] = [];
  }
  for (const r of required) {
    if (!t.entries.has(r)) {
      ctx.d.push(diagnostic('missing-key', `${what} has no "${r}"`, t.loc, `add ${example(ctx.format, r)}`));
    }
  }
  return out;
}

function example(format: BlueprintFormat, key: string): string {
  switch (format) {
    case 'toml':
      return `${key} = "…"`;
    case 'json':
      return `"${key}": "…"`;
    case 'yaml':
      return `${key}: …`;
  }
}

function wrongType(ctx: Ctx, node: ValueNode, what: string, expected: string, hint: string): undefined {
  ctx.d.push(diagnostic('wrong-type', `${what} must be ${expected}, not ${describe(node)}`, node.loc, hint));
  return undefined;
}

function decodeValue(ctx: Ctx, node: ValueNode, f: Field, option: string, what: string): unknown {
  const quoted = ctx.format === 'yaml' ? 'in quotes if it looks like a number' : 'in double quotes';
  switch (f.kind) {
    case 'string':
      if (node.type !== 'string') return wrongType(ctx, node, what, 'a string', `write it ${quoted}`);
      return { value: node.value, loc: node.loc };
    case 'integer':
      if (node.type !== 'integer') return wrongType(ctx, node, what, 'an integer', node.type === 'string' && /^\d+$/.test(node.value) ? 'write it without quotes' : 'write a whole number without quotes');
      if ((f.min !== undefined && node.value < f.min) || (f.max !== undefined && node.value > f.max)) {
        ctx.d.push(diagnostic('invalid-value', `${what} must be between ${f.min ?? '-∞'} and ${f.max ?? '∞'}, not ${node.value}`, node.loc, 'write a number in that range'));
        return undefined;
      }
      return { value: node.value, loc: node.loc };
    case 'boolean':
      if (node.type !== 'boolean') return wrongType(ctx, node, what, 'true or false', 'write true or false, without quotes');
      return { value: node.value, loc: node.loc };
    case 'boolOrString':
      if (node.type !== 'boolean' && node.type !== 'string') return wrongType(ctx, node, what, 'true, false or a string', 'write true, false or a word in quotes');
      return { value: node.value, loc: node.loc };
    case 'size': {
      if (node.type === 'integer') {
        if (node.value <= 0) {
          ctx.d.push(diagnostic('invalid-value', `${what} must be more than 0 bytes`, node.loc, 'write a size such as "2 GiB"'));
          return undefined;
        }
        return { value: node.value, loc: node.loc };
      }
      if (node.type !== 'string') return wrongType(ctx, node, what, 'a size', 'write a number of bytes or a string such as "10 GiB"');
      const bytes = parseDataSize(node.value);
      if (bytes === undefined || bytes <= 0) {
        ctx.d.push(diagnostic('invalid-value', `${what} is not a size: ${JSON.stringify(node.value)}`, node.loc, 'write a number and a unit: "512 MiB", "10 GiB", "2 GB" (B, kB, KiB, MB, MiB, GB, GiB, TB, TiB)'));
        return undefined;
      }
      return { value: bytes, loc: node.loc };
    }
    case 'owner':
      if (node.type === 'string') return { value: node.value, loc: node.loc };
      if (node.type === 'integer' && node.value >= 0) return { value: node.value, loc: node.loc };
      return wrongType(ctx, node, what, 'a name or a numeric id', 'write a user or group name in quotes, or a number');
    case 'mode': {
      if (node.type !== 'string') {
        return wrongType(ctx, node, what, 'an octal string', node.type === 'integer' ? `write it in quotes: "0${node.value}" (as composer does)` : 'write permissions in quotes, such as "0644"');
      }
      if (!/^0?[0-7]{3}$/.test(node.value)) {
        ctx.d.push(diagnostic('invalid-value', `${what} is not an octal mode: ${JSON.stringify(node.value)}`, node.loc, 'write three octal digits with an optional leading 0, such as "0644" or "755"'));
        return undefined;
      }
      return { value: parseInt(node.value, 8), loc: node.loc };
    }
    case 'strings': {
      if (node.type !== 'array') return wrongType(ctx, node, what, 'an array of strings', arrayHint(ctx.format, node));
      const out: unknown[] = [];
      for (const item of node.items) {
        if (item.type !== 'string') wrongType(ctx, item, `each item of ${what}`, 'a string', `write it ${quoted}`);
        else out.push({ value: item.value, loc: item.loc });
      }
      return out;
    }
    case 'table':
      if (node.type !== 'table') return wrongType(ctx, node, what, 'a table', tableHint(ctx.format, option));
      return decodeTable(ctx, node, f.fields, option, `"${option}"`, f.required);
    case 'tables': {
      if (node.type !== 'array' || node.items.some((i) => i.type !== 'table')) {
        const bad = node.type === 'array' ? node.items.find((i) => i.type !== 'table')! : node;
        return wrongType(ctx, bad, node.type === 'array' ? `each entry of ${what}` : what, node.type === 'array' ? 'a table' : 'an array of tables', tablesHint(ctx.format, option));
      }
      const out: Obj[] = [];
      for (const item of node.items) {
        const o = decodeTable(ctx, item as TableNode, f.fields, option, `${f.what} entry`, f.required);
        if (option === 'customizations.filesystem') sizeAlias(ctx, o, item as TableNode);
        out.push(o);
      }
      return out;
    }
    case 'unmapped':
      // Recorded in ctx.used by decodeTable; checkSupport refuses it at its key.
      return undefined;
  }
}

/** composer's filesystem `size` is a deprecated alias of `minsize`; one of them must be given. */
function sizeAlias(ctx: Ctx, o: Obj, written: TableNode): void {
  const size = o['size'] as { value: number; loc: Loc } | undefined;
  const min = o['minsize'];
  if (size && min) {
    ctx.d.push(diagnostic('duplicate', 'filesystem entry has both "size" and "minsize"', size.loc, '"size" is an old name of "minsize": keep only minsize'));
  } else if (size) {
    o['minsize'] = size;
  } else if (!written.entries.has('minsize') && !written.entries.has('size') && o['mountpoint']) {
    ctx.d.push(diagnostic('missing-key', 'filesystem entry has no "minsize"', o.loc, `add ${example(ctx.format, 'minsize').replace('"…"', '"2 GiB"')}`));
  }
  delete o['size'];
}

function arrayHint(format: BlueprintFormat, node: ValueNode): string {
  const v = node.type === 'string' ? JSON.stringify(node.value) : '"…"';
  return format === 'yaml' ? `write a list: [${v}]` : `write an array: [${v}]`;
}

function tableHint(format: BlueprintFormat, option: string): string {
  if (format === 'toml') return `write it as a table: [${option}] with one key = value per line`;
  if (format === 'json') return 'write it as an object: { "key": value }';
  return 'write it as a mapping: one "key: value" per line, indented';
}

function tablesHint(format: BlueprintFormat, option: string): string {
  if (format === 'toml') return `write each entry as [[${option}]] followed by its keys`;
  if (format === 'json') return 'write an array of objects: [{ … }, { … }]';
  return 'write a list of mappings: one "- key: value" per entry';
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
  tb: 1e12,
  tib: 1024 ** 4,
};

/**
 * composer's data sizes: `"10 GiB"`, `"512MiB"`, `"2 GB"`, `"1000"`. Decimal units are powers of
 * 1000, binary (`iB`) of 1024; units are not case-sensitive (`KB` = `kB`). `undefined` if unreadable.
 */
export function parseDataSize(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
