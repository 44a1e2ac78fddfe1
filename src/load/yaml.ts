/**
 * The YAML side of load: parsed files with their line tables, `Loc`s from node ranges, and
 * the small shape checks (is this a mapping? which keys may it hold?) that every section of
 * `imgmake.yaml` shares. Knows nothing of pipelines or rules.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { diagnostic, type Diagnostic, type DiagnosticReason, type Loc } from '../diagnostic.js';
import { closest, unknownNameHint } from './suggest.js';

/** One YAML file of the definition, parsed. */
export interface SourceFile {
  /** Absolute path. */
  path: string;
  /** Its directory: relative paths written in it (includes, file inputs) start here. */
  dir: string;
  text: string;
  lines: LineCounter;
  doc: Document.Parsed;
}

/** Collects diagnostics; `load` sorts them once at the end. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];

  add(
    reason: DiagnosticReason,
    message: string,
    loc?: Loc,
    hint?: string,
    related?: { message: string; loc: Loc }[],
  ): void {
    const d = diagnostic(reason, message, loc, hint);
    if (related && related.length > 0) d.related = related;
    this.list.push(d);
  }

  get count(): number {
    return this.list.length;
  }
}

/** The span `[start, end)` of a file, as 1-based line/column. */
export function spanLoc(f: SourceFile, start: number, end: number): Loc {
  const s = f.lines.linePos(start);
  const e = f.lines.linePos(Math.max(start, end));
  return { file: f.path, line: Math.max(1, s.line), col: s.col, endLine: Math.max(1, e.line), endCol: e.col };
}

/** Where a node was written (its value, without trailing comments). */
export function nodeLoc(f: SourceFile, node: Node | null | undefined, fallback?: Loc): Loc {
  const range = node?.range;
  if (!range) return fallback ?? spanLoc(f, 0, 0);
  return spanLoc(f, range[0], range[1]);
}

/** From the start of a pair's key to the end of its value: "where `x: …` was written". */
export function pairLoc(f: SourceFile, pair: Pair): Loc {
  const key = pair.key as Node | null;
  const value = pair.value as Node | null;
  const start = key?.range?.[0] ?? value?.range?.[0] ?? 0;
  const end = value?.range?.[1] ?? key?.range?.[1] ?? start;
  return spanLoc(f, start, end);
}

/** The node an alias (`*name`) stands for; any other node as is. */
export function deref(f: SourceFile, node: unknown): Node | null {
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return (node.resolve(f.doc) as Node | undefined) ?? null;
  return node as Node;
}

/** "a mapping", "a list", "a number (42)": what the user wrote, for messages. */
export function describeNode(node: Node | null): string {
  if (node === null) return 'empty';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return describeValue(node.value);
  return 'an alias';
}

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'empty (null)';
  if (typeof v === 'string') return `a string (${JSON.stringify(short(v))})`;
  if (typeof v === 'number' || typeof v === 'bigint') return `a number (${String(v)})`;
  if (typeof v === 'boolean') return `a boolean (${String(v)})`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

function short(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

export const HINT_MAPPING = 'write it as a mapping: one "key: value" per line, indented under it';
export const HINT_LIST = 'write it as a list: one "- item" per line, or [a, b] on one line';
export const HINT_STRING = 'write a string here';

/** The node as a mapping, or a `wrong-type` diagnostic. `null` (an empty value) counts as an empty mapping when `emptyOk`. */
export function asMap(
  f: SourceFile,
  node: Node | null,
  what: string,
  d: Diagnostics,
  at: Loc,
  emptyOk = false,
  hint = HINT_MAPPING,
): YAMLMap | undefined {
  if (isMap(node)) return node;
  if (node === null && emptyOk) return undefined;
  d.add('wrong-type', `${what} must be a mapping, not ${describeNode(node)}`, node ? nodeLoc(f, node) : at, hint);
  return undefined;
}

export function asSeq(f: SourceFile, node: Node | null, what: string, d: Diagnostics, at: Loc, hint = HINT_LIST): YAMLSeq | undefined {
  if (isSeq(node)) return node;
  d.add('wrong-type', `${what} must be a list, not ${describeNode(node)}`, node ? nodeLoc(f, node) : at, hint);
  return undefined;
}

/** A mapping key as a string; keys are always plain names in imgmake.yaml. */
export function keyName(pair: Pair): string | undefined {
  const k = pair.key;
  if (isScalar(k) && (typeof k.value === 'string' || typeof k.value === 'number' || typeof k.value === 'boolean')) {
    return String(k.value);
  }
  return undefined;
}

export interface Entry {
  name: string;
  pair: Pair;
  key: Scalar;
  /** The value, aliases resolved; `null` when empty. */
  value: Node | null;
}

/** A mapping's entries by name, and the unknown keys that were reported and left out. */
export class Entries implements Iterable<Entry> {
  constructor(
    readonly list: readonly Entry[],
    readonly unknown: readonly string[],
  ) {}

  get(name: string): Entry | undefined {
    return this.list.find((e) => e.name === name);
  }

  /**
   * `name` is absent, but an unknown key (already reported) looks like a typo of it: its
   * absence is explained, so report nothing that follows from it (no cascade).
   */
  mistyped(name: string): boolean {
    return !this.get(name) && this.unknown.some((u) => closest(u, [name]) === name);
  }

  [Symbol.iterator](): Iterator<Entry> {
    return this.list[Symbol.iterator]();
  }
}

/**
 * The entries of a mapping whose keys must come from `allowed` (`undefined`: any name).
 * Unknown keys get an `unknown-key` diagnostic with a did-you-mean and are left out.
 */
export function entries(
  f: SourceFile,
  map: YAMLMap,
  d: Diagnostics,
  allowed: readonly string[] | undefined,
  where: string,
): Entries {
  const out: Entry[] = [];
  const unknown: string[] = [];
  for (const pair of map.items) {
    const name = keyName(pair);
    const keyNode = pair.key as Node | null;
    if (name === undefined) {
      d.add(
        'wrong-type',
        `keys ${where} must be names, not ${describeNode(deref(f, keyNode))}`,
        nodeLoc(f, keyNode, nodeLoc(f, map)),
        'write a plain name before the colon',
      );
      continue;
    }
    if (allowed && !allowed.includes(name)) {
      d.add(
        'unknown-key',
        `unknown key "${name}" ${where}`,
        nodeLoc(f, keyNode),
        unknownNameHint(name, allowed, 'keys allowed here', 'no keys are allowed here'),
      );
      unknown.push(name);
      continue;
    }
    out.push({ name, pair, key: pair.key as Scalar, value: deref(f, pair.value) });
  }
  return new Entries(out, unknown);
}
