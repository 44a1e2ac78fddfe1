/**
 * The positioned TOML parser (src/blueprint/toml.ts): every value TOML 1.0 allows, TOML's
 * rules on defining a table or key twice, positions of keys and values, and one error with
 * file:line:column for each kind of mistake.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseToml } from '../src/blueprint/toml.js';
import type { TableNode, ValueNode } from '../src/blueprint/tree.js';
import type { Diagnostic } from '../src/diagnostic.js';

/** The parsed document as plain JS values (positions dropped), for comparing with what TOML means. */
function plain(v: ValueNode): unknown {
  switch (v.type) {
    case 'table':
      return Object.fromEntries([...v.entries.values()].map((e) => [e.key, plain(e.value)]));
    case 'array':
      return v.items.map(plain);
    default:
      return v.value;
  }
}

function parse(text: string): unknown {
  const r = parseToml(text, '/x/bp.toml');
  if (!r.ok) assert.fail(`unexpected error: ${r.error.loc?.line}:${r.error.loc?.col} ${r.error.message}`);
  return plain(r.value);
}

function error(text: string): Diagnostic {
  const r = parseToml(text, '/x/bp.toml');
  assert.equal(r.ok, false, 'parsed without error');
  if (r.ok) throw new Error('unreachable');
  return r.error;
}

function at(d: Diagnostic): string {
  return `${d.loc?.line}:${d.loc?.col}`;
}

test('toml: key/value pairs of every scalar type', () => {
  assert.deepEqual(parse('a = "s"\nb = 42\nc = -17\nd = 3.5\ne = true\nf = false\ng = 1e3\nh = -2.5E-2\n'), {
    a: 's', b: 42, c: -17, d: 3.5, e: true, f: false, g: 1000, h: -0.025,
  });
});

test('toml: integers in every base, with underscores and signs', () => {
  assert.deepEqual(parse('a = 0xDEAD_beef\nb = 0o755\nc = 0b1101\nd = 1_000_000\ne = +5\nf = 0\n'), {
    a: 0xdeadbeef, b: 0o755, c: 13, d: 1_000_000, e: 5, f: 0,
  });
});

test('toml: integer and float nodes keep their kind', () => {
  const r = parseToml('a = 1\nb = 1.0\n', 'f');
  assert.ok(r.ok);
  assert.equal(r.value.entries.get('a')!.value.type, 'integer');
  assert.equal(r.value.entries.get('b')!.value.type, 'float');
});

test('toml: inf and nan', () => {
  const v = parse('a = inf\nb = -inf\nc = nan\nd = +inf\n') as Record<string, number>;
  assert.equal(v['a'], Infinity);
  assert.equal(v['b'], -Infinity);
  assert.ok(Number.isNaN(v['c']));
  assert.equal(v['d'], Infinity);
});

test('toml: basic strings with every escape', () => {
  assert.deepEqual(parse('a = "t\\tn\\nq\\"b\\\\ r\\r f\\f b\\b"\nb = "\\u00e9\\U0001F600"\n'), { a: 't\tn\nq"b\\ r\r f\f b\b', b: 'é😀' });
});

test('toml: literal strings keep backslashes', () => {
  assert.deepEqual(parse("a = 'C:\\Users\\x'\nb = '<\\i\\c*\\s*>'\n"), { a: 'C:\\Users\\x', b: '<\\i\\c*\\s*>' });
});

test('toml: multi-line basic strings: first newline trimmed, line-ending backslash, quotes inside', () => {
  assert.deepEqual(parse('a = """\nline 1\nline 2\n"""\nb = """one \\\n    two"""\nc = """x""y"""\nd = """q"""""\n'), {
    a: 'line 1\nline 2\n',
    b: 'one two',
    c: 'x""y',
    d: 'q""',
  });
});

test('toml: multi-line literal strings', () => {
  assert.deepEqual(parse("a = '''\nraw \\n text\n'''\nb = '''it's'''''\n"), { a: 'raw \\n text\n', b: "it's''" });
});

test('toml: CRLF line endings', () => {
  assert.deepEqual(parse('a = 1\r\nb = """x\r\ny"""\r\n[t]\r\nc = 2\r\n'), { a: 1, b: 'x\ny', t: { c: 2 } });
});

test('toml: comments everywhere they may stand', () => {
  assert.deepEqual(parse('# top\na = 1 # after\n[t] # header\nb = [ # open\n  1, # one\n  2,\n] # close\n'), { a: 1, t: { b: [1, 2] } });
});

test('toml: arrays: mixed types, nesting, newlines, trailing comma, empty', () => {
  assert.deepEqual(parse('a = [1, "two", [3, 4], { five = 5 },]\nb = []\nc = [\n  "x",\n  "y"\n]\n'), {
    a: [1, 'two', [3, 4], { five: 5 }],
    b: [],
    c: ['x', 'y'],
  });
});

test('toml: tables, sub-tables and implicit parents', () => {
  assert.deepEqual(parse('[a.b.c]\nx = 1\n[a]\ny = 2\n[a.d]\nz = 3\n'), { a: { b: { c: { x: 1 } }, y: 2, d: { z: 3 } } });
});

test('toml: arrays of tables, nested', () => {
  assert.deepEqual(parse('[[p]]\nname = "a"\n[[p]]\nname = "b"\n[[p.v]]\nn = 1\n[[p.v]]\nn = 2\n[p.t]\nk = true\n'), {
    p: [{ name: 'a' }, { name: 'b', v: [{ n: 1 }, { n: 2 }], t: { k: true } }],
  });
});

test('toml: dotted keys, quoted keys, whitespace around dots', () => {
  assert.deepEqual(parse('a.b = 1\na . c = 2\n"x.y" = 3\n\'q k\' = 4\n"" = 5\n[t."u v"]\nw = 6\n'), {
    a: { b: 1, c: 2 }, 'x.y': 3, 'q k': 4, '': 5, t: { 'u v': { w: 6 } },
  });
});

test('toml: a header may add a sub-table to one made by dotted keys', () => {
  assert.deepEqual(parse('[fruit]\napple.color = "red"\n[fruit.apple.texture]\nsmooth = true\n'), { fruit: { apple: { color: 'red', texture: { smooth: true } } } });
});

test('toml: inline tables with dotted keys', () => {
  assert.deepEqual(parse('a = { b = 1, c.d = "x" }\ne = {}\n'), { a: { b: 1, c: { d: 'x' } }, e: {} });
});

test('toml: an empty document and a byte-order mark', () => {
  assert.deepEqual(parse(''), {});
  assert.deepEqual(parse('\ufeffa = 1'), { a: 1 });
});

test('toml: positions of keys and values, 1-based, end exclusive', () => {
  const r = parseToml('name = "web"\n\n[[packages]]\n  name = "nginx"\n', '/x/bp.toml');
  assert.ok(r.ok);
  const name = r.value.entries.get('name')!;
  assert.deepEqual(name.keyLoc, { file: '/x/bp.toml', line: 1, col: 1, endLine: 1, endCol: 5 });
  assert.deepEqual(name.value.loc, { file: '/x/bp.toml', line: 1, col: 8, endLine: 1, endCol: 13 });
  const pkgs = r.value.entries.get('packages')!.value;
  assert.equal(pkgs.type, 'array');
  const first = (pkgs as { items: TableNode[] }).items[0]!;
  assert.deepEqual([first.loc.line, first.loc.col, first.loc.endCol], [3, 1, 13]);
  const n = first.entries.get('name')!;
  assert.deepEqual([n.keyLoc.line, n.keyLoc.col, n.value.loc.col, n.value.loc.endCol], [4, 3, 10, 17]);
});

test('toml: a multi-line value spans its lines', () => {
  const r = parseToml('a = """\nx\ny"""\nb = 1\n', 'f');
  assert.ok(r.ok);
  const a = r.value.entries.get('a')!.value.loc;
  assert.deepEqual([a.line, a.col, a.endLine, a.endCol], [1, 5, 3, 5]);
  assert.equal(r.value.entries.get('b')!.keyLoc.line, 4);
});

// ---- errors: each with its position ----

const errors: [string, string, string, RegExp][] = [
  ['missing value', 'a =\n', '1:4', /expected a value after "="/],
  ['missing =', 'a 1\n', '1:3', /expected "=" after the key "a"/],
  ['two pairs on a line', 'a = 1 b = 2\n', '1:7', /expected the end of the line/],
  ['unterminated string', 'a = "abc\nb = 1\n', '1:5', /unterminated string/],
  ['unterminated multi-line string', 'a = """abc\n', '1:5', /unterminated multi-line string/],
  ['unterminated literal', "a = 'abc\n", '1:5', /unterminated string/],
  ['bad escape', 'a = "x\\qy"\n', '1:7', /invalid escape "\\q"/],
  ['short unicode escape', 'a = "\\u12"\n', '1:6', /must be followed by 4 hexadecimal digits/],
  ['surrogate escape', 'a = "\\uD800"\n', '1:6', /not a Unicode scalar value/],
  ['control character in a string', 'a = "x\u0001"\n', '1:7', /control character U\+0001/],
  ['control character in a comment', '# x\u0007\n', '1:4', /control character U\+0007 in a comment/],
  ['lone carriage return', 'a = 1\rb = 2\n', '1:6', /carriage return/],
  ['bare string value', 'a = nginx\n', '1:5', /"nginx" is not a valid value/],
  ['leading zero', 'mode = 0755\n', '1:8', /"0755" is not a valid value/],
  ['double underscore', 'a = 1__0\n', '1:5', /not a valid value/],
  ['date', 'd = 1979-05-27\n', '1:5', /dates and times are not supported/],
  ['date-time', 'd = 1979-05-27T07:32:00Z\n', '1:5', /dates and times are not supported/],
  ['time', 't = 07:32:00\n', '1:5', /dates and times are not supported/],
  ['integer too large', 'a = 9007199254740993\n', '1:5', /too large/],
  ['array without comma', 'a = [1 2]\n', '1:8', /expected "," or "]"/],
  ['unterminated array', 'a = [1,\n', '1:5', /unterminated array/],
  ['inline table over lines', 'a = { b = 1,\n c = 2 }\n', '1:5', /must be written on one line/],
  ['inline table trailing comma', 'a = { b = 1, }\n', '1:14', /trailing comma in an inline table/],
  ['header not closed', '[a\nb = 1\n', '1:3', /expected "]" to close the table header/],
  ['array header not closed', '[[a]\n', '1:4', /expected "]]"/],
  ['empty key', '= 1\n', '1:1', /expected a key/],
  ['bad bare key', 'a b = 1\n', '1:3', /expected "=" after the key "a"/],
  ['multi-line key', '"""k""" = 1\n', '1:1', /a key cannot be a multi-line string/],
];
for (const [name, text, pos, re] of errors) {
  test(`toml error: ${name}`, () => {
    const d = error(text);
    assert.equal(d.reason, 'toml-syntax');
    assert.match(d.message, re);
    assert.equal(at(d), pos);
    assert.ok(d.hint && d.hint.length > 0, 'every error has a hint');
  });
}

const duplicates: [string, string, string, RegExp][] = [
  ['key twice', 'a = 1\na = 2\n', '2:1', /the key "a" is defined twice/],
  ['table reopened after others', '[t]\na = 1\n[u]\n[t.v]\n[t]\n', '5:1', /the table \[t\] is defined twice/],
  ['table twice', '[a]\n[a]\n', '2:1', /the table \[a\] is defined twice/],
  ['table over a value', 'a = 1\n[a]\n', '2:1', /\[a\] is already a value/],
  ['header over dotted-key table', '[f]\napple.color = 1\n[f.apple]\n', '3:1', /\[f.apple\] is defined twice/],
  ['dotted key into a header table', '[a.b]\nx = 1\n[a]\nb.y = 2\n', '4:1', /"b" is already defined/],
  ['dotted key over a value', 'a = 1\na.b = 2\n', '2:1', /"a" is already defined/],
  ['extend an inline table by header', 'a = { b = 1 }\n[a.c]\n', '2:2', /already an inline table/],
  ['extend an inline table by dotted key', 'a = { b = 1 }\na.c = 2\n', '2:1', /"a" is already defined/],
  ['array of tables over a static array', 'a = [1]\n[[a]]\n', '2:1', /\[\[a\]\] cannot add to "a"/],
  ['table over an array of tables', '[[a]]\n[a]\n', '2:1', /\[a\] is already a value/],
  ['key twice in an inline table', 'a = { b = 1, b = 2 }\n', '1:14', /the key "a.b" is defined twice|the key "b" is defined twice/],
];
for (const [name, text, pos, re] of duplicates) {
  test(`toml duplicate: ${name}`, () => {
    const d = error(text);
    assert.equal(d.reason, 'duplicate');
    assert.match(d.message, re);
    assert.equal(at(d), pos);
    assert.ok(d.related && d.related.length === 1, 'points at the first definition');
  });
}

// ---- round trip: random documents written out as TOML read back as the same values ----

/** A small deterministic PRNG (mulberry32), so a failure is reproducible from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'Z', '0', '_', '-', ' ', '.', '"', "'", '\\', '\n', '\t', 'é', '😀', '#', '=', '[', '{', '\u0001'];

function randomString(r: () => number): string {
  let s = '';
  for (let n = Math.floor(r() * 8); n > 0; n--) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function randomKey(r: () => number): string {
  return r() < 0.7 ? `k${Math.floor(r() * 1000)}` : randomString(r);
}

type Doc = { [k: string]: unknown };

function randomScalar(r: () => number): unknown {
  const x = r();
  if (x < 0.4) return randomString(r);
  if (x < 0.6) return Math.floor((r() - 0.5) * 1e9);
  if (x < 0.7) return Math.round((r() - 0.5) * 1e6) / 64;
  if (x < 0.8) return r() < 0.5;
  return Array.from({ length: Math.floor(r() * 4) }, () => randomScalar(r));
}

function randomTable(r: () => number, depth: number): Doc {
  const t: Doc = {};
  for (let n = Math.floor(r() * 5); n > 0; n--) {
    const k = randomKey(r);
    const x = r();
    if (depth < 3 && x < 0.15) t[k] = randomTable(r, depth + 1);
    else if (depth < 3 && x < 0.25) t[k] = Array.from({ length: 1 + Math.floor(r() * 3) }, () => randomTable(r, depth + 1));
    else t[k] = randomScalar(r);
  }
  return t;
}

const isTable = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTableArray = (v: unknown): v is Doc[] => Array.isArray(v) && v.length > 0 && v.every(isTable);

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

/** JSON.stringify escapes are valid TOML basic-string escapes, except that TOML wants \u00XX for controls too (JSON does that). */
function tomlValue(v: unknown, r: () => number): string {
  if (typeof v === 'string') return r() < 0.2 && !/['\n\r\u0000-\u001f\u007f]/.test(v) ? `'${v}'` : JSON.stringify(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(6);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => tomlValue(x, r)).join(r() < 0.5 ? ', ' : ',\n  ')}${r() < 0.3 && v.length > 0 ? ',' : ''}]`;
  const t = v as Doc;
  return `{ ${Object.entries(t).map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x, r)}`).join(', ')} }`;
}

/** Tables as [headers] and arrays of tables as [[headers]], sometimes inline. */
function writeToml(t: Doc, path: string[], r: () => number, out: string[]): void {
  const later: [string, unknown][] = [];
  for (const [k, v] of Object.entries(t)) {
    if ((isTable(v) || isTableArray(v)) && r() < 0.7) later.push([k, v]);
    else out.push(`${tomlKey(k)} = ${tomlValue(v, r)}${r() < 0.2 ? ' # note' : ''}`);
  }
  for (const [k, v] of later) {
    const p = [...path, tomlKey(k)];
    if (isTable(v)) {
      out.push(`[${p.join('.')}]`);
      writeToml(v, p, r, out);
    } else {
      for (const item of v as Doc[]) {
        out.push(`[[${p.join('.')}]]`);
        writeToml(item, p, r, out);
      }
    }
  }
}

test('toml: 300 random documents read back as what was written', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const doc = randomTable(r, 0);
    const out: string[] = [];
    writeToml(doc, [], r, out);
    const text = `${out.join(r() < 0.2 ? '\r\n' : '\n')}\n`;
    const parsed = parseToml(text, 'rt.toml');
    if (!parsed.ok) assert.fail(`seed ${seed}: ${parsed.error.loc?.line}:${parsed.error.loc?.col} ${parsed.error.message}\n${text}`);
    const back = JSON.parse(JSON.stringify(plain(parsed.value)));
    assert.deepEqual(back, JSON.parse(JSON.stringify(doc)), `seed ${seed}\n${text}`);
  }
});
