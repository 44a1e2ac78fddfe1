/**
 * A small, strict TOML 1.0 parser that keeps positions: every key and value of the result
 * carries the file:line:column it was written at, which no common TOML library gives (they
 * return plain objects). Blueprints are composer's TOML, and a diagnostic must point at the
 * field that caused it.
 *
 * Supported: comments, bare/quoted/dotted keys, `[tables]`, `[[arrays of tables]]`, inline
 * tables, basic/literal/multi-line strings with every escape, integers (decimal, hex, octal,
 * binary, `_` separators), floats (incl. `inf`, `nan`), booleans, arrays (mixed types, newlines,
 * trailing commas), and TOML's rules on defining a table or key twice.
 * Refused with a clear error: offset/local date-times, dates and times (no blueprint field takes
 * one), and integers outside ±2^53 (JavaScript numbers; no blueprint field needs more).
 *
 * The parser stops at the first error (later errors in a broken file are mostly echoes of it).
 * It knows nothing of blueprints.
 */
import { diagnostic, type Diagnostic, type DiagnosticReason, type Loc } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import { LineTable, type ArrayNode, type TableNode, type ValueNode } from './tree.js';

/** How a table came to exist; decides whether a later header or dotted key may reopen it. */
type TableState = 'implicit' | 'header' | 'dotted' | 'inline';

/** Internal: unwinds the parser to `parseToml`, which turns it into a Diagnostic. */
class TomlError {
  constructor(
    readonly start: number,
    readonly end: number,
    readonly message: string,
    readonly hint?: string,
    readonly reason: DiagnosticReason = 'toml-syntax',
    readonly related?: { message: string; loc: Loc }[],
  ) {}
}

interface KeyPart {
  name: string;
  start: number;
  end: number;
}

const BARE_KEY = /[A-Za-z0-9_-]/;

/** Parse `text` (the contents of `file`) into a positioned table, or the first error. */
export function parseToml(text: string, file: string): Result<TableNode, Diagnostic> {
  const p = new Parser(text, file);
  try {
    return ok(p.document());
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const d = diagnostic(e.reason, e.message, p.lines.loc(e.start, Math.max(e.end, e.start + 1)), e.hint);
    if (e.related) d.related = e.related;
    return fail(d);
  }
}

class Parser {
  readonly lines: LineTable;
  private i = 0;
  private readonly states = new WeakMap<TableNode, TableState>();
  /** Arrays made by `[[header]]`: only these may be appended to by another `[[header]]`. */
  private readonly tableArrays = new WeakSet<ArrayNode>();

  constructor(
    private readonly s: string,
    file: string,
  ) {
    this.lines = new LineTable(file, s);
  }

  document(): TableNode {
    const root = this.table(0, 0, 'header');
    let current = root;
    if (this.s.charCodeAt(0) === 0xfeff) this.i = 1;
    for (;;) {
      this.skipWs();
      if (this.eof()) break;
      const c = this.s[this.i]!;
      if (c === '#') this.comment();
      else if (c === '\n' || c === '\r') {
        /* blank line */
      } else if (c === '[') current = this.header(root);
      else this.keyValue(current);
      this.endOfLine();
    }
    return root;
  }

  // ---- lexical helpers ----

  private eof(): boolean {
    return this.i >= this.s.length;
  }

  private err(message: string, hint?: string, start = this.i, end = start + 1): never {
    throw new TomlError(start, end, message, hint);
  }

  private skipWs(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  /** Whitespace, newlines and comments: what may stand between the items of an array. */
  private skipWsNewlinesComments(): void {
    for (;;) {
      this.skipWs();
      const c = this.s[this.i];
      if (c === '#') this.comment();
      else if (c === '\n') this.i++;
      else if (c === '\r' && this.s[this.i + 1] === '\n') this.i += 2;
      else return;
    }
  }

  private comment(): void {
    this.i++; // '#'
    while (!this.eof()) {
      const code = this.s.charCodeAt(this.i);
      if (code === 10 || (code === 13 && this.s[this.i + 1] === '\n')) return;
      if (isControl(code)) this.err(`control character ${codeName(code)} in a comment`, 'remove it');
      this.i++;
    }
  }

  /** After an expression: optional whitespace and comment, then a newline or the end. */
  private endOfLine(): void {
    this.skipWs();
    if (this.s[this.i] === '#') this.comment();
    if (this.eof()) return;
    if (this.s[this.i] === '\n') {
      this.i++;
      return;
    }
    if (this.s[this.i] === '\r' && this.s[this.i + 1] === '\n') {
      this.i += 2;
      return;
    }
    const found = this.s[this.i] === '\r' ? 'a carriage return without a newline' : `"${this.s[this.i]}"`;
    this.err(`expected the end of the line, found ${found}`, 'write one "key = value" or one [table] per line; a comment starts with #');
  }

  private table(start: number, end: number, state: TableState): TableNode {
    const t: TableNode = { type: 'table', entries: new Map(), loc: this.lines.loc(start, end) };
    this.states.set(t, state);
    return t;
  }

  // ---- keys ----

  private key(): KeyPart[] {
    const parts: KeyPart[] = [];
    for (;;) {
      this.skipWs();
      parts.push(this.simpleKey());
      this.skipWs();
      if (this.s[this.i] !== '.') return parts;
      this.i++;
    }
  }

  private simpleKey(): KeyPart {
    const start = this.i;
    const c = this.s[this.i];
    if (c === '"') {
      if (this.s.startsWith('"""', this.i)) this.err('a key cannot be a multi-line string', 'write the key in single quotes or double quotes on one line');
      return { name: this.basicString(), start, end: this.i };
    }
    if (c === "'") {
      if (this.s.startsWith("'''", this.i)) this.err('a key cannot be a multi-line string', 'write the key in single quotes or double quotes on one line');
      return { name: this.literalString(), start, end: this.i };
    }
    while (!this.eof() && BARE_KEY.test(this.s[this.i]!)) this.i++;
    if (this.i === start) {
      const found = this.eof() || this.s[this.i] === '\n' || this.s[this.i] === '\r' ? 'the end of the line' : `"${this.s[this.i]}"`;
      this.err(`expected a key, found ${found}`, 'a bare key holds only letters, digits, "_" and "-"; quote any other key: "my key" = 1');
    }
    return { name: this.s.slice(start, this.i), start, end: this.i };
  }

  private dotted(parts: KeyPart[], upto = parts.length): string {
    return parts
      .slice(0, upto)
      .map((p) => (/^[A-Za-z0-9_-]+$/.test(p.name) ? p.name : JSON.stringify(p.name)))
      .join('.');
  }

  // ---- expressions ----

  private keyValue(into: TableNode): void {
    const parts = this.key();
    this.skipWs();
    if (this.s[this.i] !== '=') {
      const found = this.eof() || this.s[this.i] === '\n' || this.s[this.i] === '\r' ? 'the end of the line' : `"${this.s[this.i]}"`;
      this.err(`expected "=" after the key "${this.dotted(parts)}", found ${found}`, 'write key = value; a key with spaces or dots in it must be quoted');
    }
    this.i++;
    this.skipWs();
    const value = this.value();
    let t = into;
    for (let k = 0; k < parts.length - 1; k++) {
      const part = parts[k]!;
      const e = t.entries.get(part.name);
      if (!e) {
        const sub = this.table(part.start, part.end, 'dotted');
        t.entries.set(part.name, { key: part.name, keyLoc: this.lines.loc(part.start, part.end), value: sub });
        t = sub;
      } else if (e.value.type === 'table' && this.states.get(e.value) === 'dotted') {
        t = e.value;
      } else {
        throw new TomlError(
          part.start,
          part.end,
          `"${this.dotted(parts, k + 1)}" is already defined, so keys cannot be added to it with a dotted key`,
          e.value.type === 'table' ? `write the key under its [${this.dotted(parts, k + 1)}] table` : 'use another name',
          'duplicate',
          [{ message: `"${this.dotted(parts, k + 1)}" was first defined here`, loc: e.keyLoc }],
        );
      }
    }
    const last = parts[parts.length - 1]!;
    const prev = t.entries.get(last.name);
    if (prev) {
      throw new TomlError(
        last.start,
        last.end,
        `the key "${this.dotted(parts)}" is defined twice`,
        'remove one of them: TOML allows each key once per table',
        'duplicate',
        [{ message: 'first defined here', loc: prev.keyLoc }],
      );
    }
    t.entries.set(last.name, { key: last.name, keyLoc: this.lines.loc(last.start, last.end), value });
  }

  private header(root: TableNode): TableNode {
    const start = this.i;
    const isArray = this.s[this.i + 1] === '[';
    this.i += isArray ? 2 : 1;
    const parts = this.key();
    this.skipWs();
    if (this.s[this.i] !== ']' || (isArray && this.s[this.i + 1] !== ']')) {
      this.err(`expected "${isArray ? ']]' : ']'}" to close the table header`, isArray ? 'an array of tables is written [[name]]' : 'a table header is written [name]');
    }
    this.i += isArray ? 2 : 1;
    const end = this.i;
    const headerLoc = this.lines.loc(start, end);
    let t = root;
    for (let k = 0; k < parts.length - 1; k++) {
      const part = parts[k]!;
      const e = t.entries.get(part.name);
      if (!e) {
        const sub = this.table(start, end, 'implicit');
        t.entries.set(part.name, { key: part.name, keyLoc: this.lines.loc(part.start, part.end), value: sub });
        t = sub;
      } else if (e.value.type === 'table' && this.states.get(e.value) !== 'inline') {
        t = e.value;
      } else if (e.value.type === 'array' && this.tableArrays.has(e.value)) {
        t = e.value.items[e.value.items.length - 1] as TableNode;
      } else {
        throw new TomlError(
          part.start,
          part.end,
          `"${this.dotted(parts, k + 1)}" is already ${e.value.type === 'table' ? 'an inline table' : 'a value'}, so it cannot hold the table [${this.dotted(parts)}]`,
          'an inline table or a value cannot be extended; write it as a [table] instead',
          'duplicate',
          [{ message: 'defined here', loc: e.keyLoc }],
        );
      }
    }
    const last = parts[parts.length - 1]!;
    const name = this.dotted(parts);
    const e = t.entries.get(last.name);
    const keyLoc = this.lines.loc(last.start, last.end);
    if (isArray) {
      const item = this.table(start, end, 'header');
      if (!e) {
        const arr: ArrayNode = { type: 'array', items: [item], loc: headerLoc };
        this.tableArrays.add(arr);
        t.entries.set(last.name, { key: last.name, keyLoc, value: arr });
      } else if (e.value.type === 'array' && this.tableArrays.has(e.value)) {
        e.value.items.push(item);
      } else {
        throw new TomlError(start, end, `[[${name}]] cannot add to "${name}": it is already ${e.value.type === 'table' ? 'a table' : 'a value'}`, `use [[${name}]] for every entry, or another name`, 'duplicate', [
          { message: 'defined here', loc: e.keyLoc },
        ]);
      }
      return item;
    }
    if (!e) {
      const sub = this.table(start, end, 'header');
      t.entries.set(last.name, { key: last.name, keyLoc, value: sub });
      return sub;
    }
    if (e.value.type === 'table' && this.states.get(e.value) === 'implicit') {
      this.states.set(e.value, 'header');
      e.value.loc = headerLoc;
      return e.value;
    }
    const what = e.value.type === 'table' ? 'defined twice' : 'already a value';
    throw new TomlError(start, end, `the table [${name}] is ${what}`, 'write all of its keys under one header', 'duplicate', [{ message: 'first defined here', loc: e.value.type === 'table' ? e.value.loc : e.keyLoc }]);
  }

  // ---- values ----

  private value(): ValueNode {
    const start = this.i;
    const c = this.s[this.i];
    if (c === undefined || c === '\n' || c === '\r' || c === '#') this.err('expected a value after "="', 'write a string in quotes, a number, true or false, [an, array] or { an = "inline table" }');
    if (c === '"') {
      const value = this.s.startsWith('"""', this.i) ? this.multiBasicString() : this.basicString();
      return { type: 'string', value, loc: this.lines.loc(start, this.i) };
    }
    if (c === "'") {
      const value = this.s.startsWith("'''", this.i) ? this.multiLiteralString() : this.literalString();
      return { type: 'string', value, loc: this.lines.loc(start, this.i) };
    }
    if (c === '[') return this.array();
    if (c === '{') return this.inlineTable();
    const m = /^[0-9A-Za-z_+\-.:]+/.exec(this.s.slice(this.i, this.i + 128));
    const token = m ? m[0] : '';
    if (token === 'true' || token === 'false') {
      this.i += token.length;
      return { type: 'boolean', value: token === 'true', loc: this.lines.loc(start, this.i) };
    }
    if (token.length === 0) {
      this.err(`expected a value, found "${c}"`, 'write a string in quotes, a number, true or false, [an, array] or { an = "inline table" }');
    }
    this.i += token.length;
    return this.number(token, start);
  }

  private number(token: string, start: number): ValueNode {
    const loc = this.lines.loc(start, this.i);
    if (/^\d{4}-\d{2}-\d{2}/.test(token) || /^\d{2}:\d{2}(:|$)/.test(token)) {
      this.err('dates and times are not supported in blueprints', 'no blueprint field takes a date; write it as a string in quotes if you meant text', start, this.i);
    }
    const clean = token.replace(/_/g, '');
    let big: bigint | undefined;
    if (/^[+-]?(0|[1-9](_?[0-9])*)$/.test(token)) big = BigInt(clean);
    else if (/^0x[0-9A-Fa-f](_?[0-9A-Fa-f])*$/.test(token)) big = BigInt(clean);
    else if (/^0o[0-7](_?[0-7])*$/.test(token)) big = BigInt(clean);
    else if (/^0b[01](_?[01])*$/.test(token)) big = BigInt(clean);
    if (big !== undefined) {
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
        this.err(`the integer ${token} is too large`, `imgmake reads integers up to ${Number.MAX_SAFE_INTEGER}; write a size as a string such as "10 GiB"`, start, this.i);
      }
      return { type: 'integer', value: Number(big), loc };
    }
    if (/^[+-]?(inf|nan)$/.test(token)) {
      const v = token.endsWith('nan') ? NaN : token.startsWith('-') ? -Infinity : Infinity;
      return { type: 'float', value: v, loc };
    }
    if (/^[+-]?(0|[1-9](_?[0-9])*)((\.[0-9](_?[0-9])*)([eE][+-]?[0-9](_?[0-9])*)?|[eE][+-]?[0-9](_?[0-9])*)$/.test(token)) {
      return { type: 'float', value: Number(clean), loc };
    }
    let hint = 'write a string in quotes, a number, true or false';
    if (/^[+-]?0\d/.test(token)) hint = 'TOML integers have no leading zeros; write 0o755 for an octal number, or "0755" as a string';
    else if (/^[A-Za-z]/.test(token)) hint = `a string must be quoted: "${token}"`;
    this.err(`"${token}" is not a valid value`, hint, start, this.i);
  }

  private array(): ArrayNode {
    const start = this.i;
    this.i++; // '['
    const items: ValueNode[] = [];
    for (;;) {
      this.skipWsNewlinesComments();
      if (this.eof()) this.err('unterminated array: "[" has no matching "]"', 'close the array with "]"', start);
      if (this.s[this.i] === ']') break;
      items.push(this.value());
      this.skipWsNewlinesComments();
      if (this.s[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.s[this.i] === ']') break;
      if (this.eof()) this.err('unterminated array: "[" has no matching "]"', 'close the array with "]"', start);
      this.err(`expected "," or "]" in an array, found "${this.s[this.i]}"`, 'separate the items of an array with commas');
    }
    this.i++; // ']'
    return { type: 'array', items, loc: this.lines.loc(start, this.i) };
  }

  private inlineTable(): TableNode {
    const start = this.i;
    this.i++; // '{'
    const t = this.table(start, start + 1, 'dotted');
    this.skipWs();
    if (this.s[this.i] === '}') {
      this.i++;
    } else {
      for (;;) {
        this.skipWs();
        if (this.s[this.i] === '\n' || this.s[this.i] === '\r' || this.eof()) this.inlineNewline(start);
        this.keyValue(t);
        this.skipWs();
        const c = this.s[this.i];
        if (c === ',') {
          this.i++;
          this.skipWs();
          if (this.s[this.i] === '}') this.err('trailing comma in an inline table', 'remove the comma before "}": TOML 1.0 allows none in inline tables');
          continue;
        }
        if (c === '}') {
          this.i++;
          break;
        }
        if (c === '\n' || c === '\r' || c === undefined) this.inlineNewline(start);
        this.err(`expected "," or "}" in an inline table, found "${c}"`, 'separate the keys of an inline table with commas');
      }
    }
    t.loc = this.lines.loc(start, this.i);
    this.freeze(t);
    return t;
  }

  private inlineNewline(start: number): never {
    this.err('an inline table must be written on one line', 'close it with "}" on the same line, or write it as a [table] with one key per line', start);
  }

  /** An inline table and every table inside it are complete: nothing may add to them later. */
  private freeze(t: TableNode): void {
    this.states.set(t, 'inline');
    for (const e of t.entries.values()) if (e.value.type === 'table') this.freeze(e.value);
  }

  // ---- strings ----

  private basicString(): string {
    const start = this.i;
    this.i++; // '"'
    let out = '';
    for (;;) {
      if (this.eof()) this.err('unterminated string', 'close the string with " on the same line; use """ for text over several lines', start);
      const code = this.s.charCodeAt(this.i);
      if (code === 34) {
        this.i++;
        return out;
      }
      if (code === 10 || code === 13) this.err('unterminated string', 'close the string with " on the same line; use """ for text over several lines', start);
      if (code === 92) {
        out += this.escape();
        continue;
      }
      if (isControl(code)) this.err(`control character ${codeName(code)} in a string`, 'write it as an escape such as \\u0001');
      out += this.s[this.i];
      this.i++;
    }
  }

  private multiBasicString(): string {
    const start = this.i;
    this.i += 3;
    this.skipFirstNewline();
    let out = '';
    for (;;) {
      if (this.eof()) this.err('unterminated multi-line string', 'close it with """', start, start + 3);
      const code = this.s.charCodeAt(this.i);
      if (code === 34 && this.s.startsWith('"""', this.i)) {
        let n = 3;
        while (this.s[this.i + n] === '"' && n < 5) n++;
        out += '"'.repeat(n - 3);
        this.i += n;
        return out;
      }
      if (code === 92) {
        // A backslash at the end of a line trims it and the whitespace that follows.
        const rest = /^\\[ \t]*\r?\n/.exec(this.s.slice(this.i, this.i + 256));
        if (rest) {
          this.i += rest[0].length;
          while (/[ \t\r\n]/.test(this.s[this.i] ?? '')) {
            if (this.s[this.i] === '\r' && this.s[this.i + 1] !== '\n') break;
            this.i++;
          }
          continue;
        }
        out += this.escape();
        continue;
      }
      if (code === 13 && this.s[this.i + 1] === '\n') {
        out += '\n';
        this.i += 2;
        continue;
      }
      if (code !== 10 && isControl(code)) this.err(`control character ${codeName(code)} in a string`, 'write it as an escape such as \\u0001');
      out += this.s[this.i];
      this.i++;
    }
  }

  private literalString(): string {
    const start = this.i;
    this.i++;
    const from = this.i;
    for (;;) {
      if (this.eof()) this.err('unterminated string', "close the string with ' on the same line; use ''' for text over several lines", start);
      const code = this.s.charCodeAt(this.i);
      if (code === 39) {
        this.i++;
        return this.s.slice(from, this.i - 1);
      }
      if (code === 10 || code === 13) this.err('unterminated string', "close the string with ' on the same line; use ''' for text over several lines", start);
      if (isControl(code)) this.err(`control character ${codeName(code)} in a string`, 'literal strings cannot hold control characters; use a "basic string" with an escape');
      this.i++;
    }
  }

  private multiLiteralString(): string {
    const start = this.i;
    this.i += 3;
    this.skipFirstNewline();
    let out = '';
    for (;;) {
      if (this.eof()) this.err("unterminated multi-line string", "close it with '''", start, start + 3);
      const code = this.s.charCodeAt(this.i);
      if (code === 39 && this.s.startsWith("'''", this.i)) {
        let n = 3;
        while (this.s[this.i + n] === "'" && n < 5) n++;
        out += "'".repeat(n - 3);
        this.i += n;
        return out;
      }
      if (code === 13 && this.s[this.i + 1] === '\n') {
        out += '\n';
        this.i += 2;
        continue;
      }
      if (code !== 10 && isControl(code)) this.err(`control character ${codeName(code)} in a string`, 'literal strings cannot hold control characters; use a "basic string" with an escape');
      out += this.s[this.i];
      this.i++;
    }
  }

  private skipFirstNewline(): void {
    if (this.s[this.i] === '\n') this.i++;
    else if (this.s[this.i] === '\r' && this.s[this.i + 1] === '\n') this.i += 2;
  }

  private escape(): string {
    const start = this.i;
    const c = this.s[this.i + 1];
    this.i += 2;
    switch (c) {
      case 'b':
        return '\b';
      case 't':
        return '\t';
      case 'n':
        return '\n';
      case 'f':
        return '\f';
      case 'r':
        return '\r';
      case '"':
        return '"';
      case '\\':
        return '\\';
      case 'u':
      case 'U': {
        const len = c === 'u' ? 4 : 8;
        const hex = this.s.slice(this.i, this.i + len);
        if (!new RegExp(`^[0-9A-Fa-f]{${len}}$`).test(hex)) {
          this.err(`"\\${c}" must be followed by ${len} hexadecimal digits`, `write \\${c}${'0'.repeat(len - 2)}41 for "A"`, start, this.i + Math.min(len, hex.length));
        }
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.err(`\\${c}${hex} is not a Unicode scalar value`, 'use a code point up to 10FFFF that is not a surrogate', start, this.i + len);
        this.i += len;
        return String.fromCodePoint(cp);
      }
      default:
        this.err(`invalid escape "\\${c ?? ''}" in a string`, 'the escapes are \\b \\t \\n \\f \\r \\" \\\\ \\uXXXX and \\UXXXXXXXX; for a literal backslash write \\\\ or use a \'literal string\'', start, Math.min(this.i, this.s.length));
    }
  }
}

/** Control characters TOML forbids in strings and comments (tab is allowed). */
function isControl(code: number): boolean {
  return (code < 0x20 && code !== 9) || code === 0x7f;
}

function codeName(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
