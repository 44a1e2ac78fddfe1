/**
 * YAML blueprints, read with the yaml library (which keeps node ranges) and turned into the
 * same positioned tree as TOML and JSON. Aliases are resolved (within the library's alias
 * limits); mapping keys must be plain scalars. Only the first syntax error is returned, like
 * the TOML and JSON readers.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import { LineTable, type TableNode, type ValueNode } from './tree.js';

/** Aliases can make a small file expand without bound; a blueprint never needs this many values. */
const MAX_NODES = 100_000;

class YamlShapeError {
  constructor(
    readonly node: Node | null,
    readonly message: string,
    readonly hint: string,
  ) {}
}

export function parseYaml(text: string, file: string): Result<TableNode, Diagnostic> {
  const lines = new LineTable(file, text);
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const [start, end] = first.pos;
    const reason = first.code === 'DUPLICATE_KEY' ? 'duplicate' : 'yaml-syntax';
    const message = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return fail(diagnostic(reason, message, lines.loc(start, Math.max(end, start + 1)), 'check the YAML syntax at this point'));
  }
  const loc = (n: Node | null | undefined) => {
    const r = n?.range;
    return r ? lines.loc(r[0], r[1]) : lines.loc(0, 0);
  };
  let budget = MAX_NODES;
  const convert = (raw: unknown): ValueNode => {
    let n = raw as Node | null;
    if (--budget < 0) throw new YamlShapeError(n, `the blueprint expands to more than ${MAX_NODES} values`, 'aliases (*name) may repeat a node only so often; write the values out');
    if (isAlias(n)) n = (n.resolve(doc) as Node | undefined) ?? null;
    if (n === null || n === undefined) return { type: 'null', value: null, loc: lines.loc(0, 0) };
    if (isMap(n)) {
      const t: TableNode = { type: 'table', entries: new Map(), loc: loc(n) };
      for (const pair of n.items) {
        const k = pair.key as Node | null;
        if (!isScalar(k) || (typeof k.value !== 'string' && typeof k.value !== 'number' && typeof k.value !== 'boolean')) {
          throw new YamlShapeError(k, 'a key of a blueprint must be a plain name', 'write the key as a plain word before the colon');
        }
        const key = String(k.value);
        let value = pair.value === null || pair.value === undefined ? ({ type: 'null', value: null, loc: loc(k) } as ValueNode) : convert(pair.value);
        // `key:` with nothing after it: an empty node after the colon; point at the key instead.
        if (value.type === 'null' && value.loc.line === value.loc.endLine && value.loc.col === value.loc.endCol) value = { ...value, loc: loc(k) };
        t.entries.set(key, { key, keyLoc: loc(k), value });
      }
      return t;
    }
    if (isSeq(n)) return { type: 'array', items: n.items.map((x) => convert(x)), loc: loc(n) };
    if (isScalar(n)) {
      const v = n.value;
      const at = loc(n);
      if (v === null || v === undefined) return { type: 'null', value: null, loc: at };
      if (typeof v === 'string') return { type: 'string', value: v, loc: at };
      if (typeof v === 'boolean') return { type: 'boolean', value: v, loc: at };
      if (typeof v === 'number') {
        const src = n.range ? text.slice(n.range[0], n.range[1]) : String(v);
        return Number.isInteger(v) && /^[-+]?(0x[0-9a-f]+|0o[0-7]+|\d+)$/i.test(src.trim()) ? { type: 'integer', value: v, loc: at } : { type: 'float', value: v, loc: at };
      }
      throw new YamlShapeError(n, `unsupported YAML value (${typeof v})`, 'write a string, a number or a boolean');
    }
    throw new YamlShapeError(n, 'unsupported YAML node', 'write a mapping, a list or a scalar');
  };
  try {
    const root = doc.contents === null ? null : convert(doc.contents);
    if (root === null || root.type === 'null') return ok({ type: 'table', entries: new Map(), loc: lines.loc(0, 0) });
    if (root.type !== 'table') {
      return fail(diagnostic('wrong-type', `a blueprint must be a YAML mapping, not ${root.type === 'array' ? 'a list' : `a ${root.type}`}`, root.loc, 'write the blueprint as "name: …" lines'));
    }
    return ok(root);
  } catch (e) {
    if (!(e instanceof YamlShapeError)) throw e;
    return fail(diagnostic('wrong-type', e.message, loc(e.node), e.hint));
  }
}
