/**
 * The positioned value tree every blueprint format is read into: TOML (our own parser), JSON
 * (our own scanner) and YAML (the yaml library) each give a `TableNode` whose every key and
 * value carries its `Loc`. The decoder (decode.ts) reads only this tree, so the three formats
 * report the same diagnostics at the same fields.
 *
 * This module holds the node types and the offset → line:column table; it parses nothing.
 */
import type { Loc } from '../diagnostic.js';

export interface StringNode { type: 'string'; value: string; loc: Loc }
export interface IntegerNode { type: 'integer'; value: number; loc: Loc }
export interface FloatNode { type: 'float'; value: number; loc: Loc }
export interface BooleanNode { type: 'boolean'; value: boolean; loc: Loc }
/** YAML's empty value (`key:`) and JSON's `null`; TOML has none. */
export interface NullNode { type: 'null'; value: null; loc: Loc }
export interface ArrayNode { type: 'array'; items: ValueNode[]; loc: Loc }

/** One `key = value` of a table: where the key was written and its value. */
export interface TableEntry {
  key: string;
  keyLoc: Loc;
  value: ValueNode;
}

/**
 * A TOML table, a JSON object, a YAML mapping. `entries` keeps the order of first definition.
 * `loc` is where the table was opened: a `[header]`, a `{`, or the first key of a YAML mapping.
 */
export interface TableNode {
  type: 'table';
  entries: Map<string, TableEntry>;
  loc: Loc;
}

export type ValueNode = StringNode | IntegerNode | FloatNode | BooleanNode | NullNode | ArrayNode | TableNode;

/** "a string ("x")", "a table", "an array": what the user wrote, for messages. */
export function describe(node: ValueNode): string {
  switch (node.type) {
    case 'string':
      return `a string (${JSON.stringify(node.value.length > 40 ? `${node.value.slice(0, 37)}...` : node.value)})`;
    case 'integer':
      return `an integer (${node.value})`;
    case 'float':
      return `a number (${node.value})`;
    case 'boolean':
      return `a boolean (${node.value})`;
    case 'null':
      return 'empty (null)';
    case 'array':
      return 'an array';
    case 'table':
      return 'a table';
  }
}

/**
 * Offsets of a text → 1-based line and column (columns count UTF-16 code units, as the
 * diagnostic excerpt does). Built once per file; lookups are a binary search.
 */
export class LineTable {
  private readonly starts: number[] = [0];

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }

  pos(offset: number): { line: number; col: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.starts[lo]! + 1 };
  }

  /** The span `[start, end)` as a Loc. */
  loc(start: number, end: number): Loc {
    const s = this.pos(start);
    const e = this.pos(Math.max(start, end));
    return { file: this.file, line: s.line, col: s.col, endLine: e.line, endCol: e.col };
  }
}
