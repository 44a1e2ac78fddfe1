/**
 * A strict JSON (RFC 8259) scanner that keeps positions, for blueprints written as JSON.
 * The yaml library would read JSON too, but it accepts what JSON does not (trailing commas,
 * comments, unquoted keys) and reports YAML's words for JSON's mistakes; this scanner is
 * short and says "expected ',' or '}'" where the user wrote JSON. A key given twice is an
 * error (JSON.parse silently keeps the last one). Stops at the first error.
 */
import { diagnostic, type Diagnostic, type DiagnosticReason, type Loc } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import { LineTable, type TableNode, type ValueNode } from './tree.js';

class JsonError {
  constructor(
    readonly start: number,
    readonly end: number,
    readonly message: string,
    readonly hint?: string,
    readonly reason: DiagnosticReason = 'json-syntax',
    readonly related?: { message: string; loc: Loc }[],
  ) {}
}

/** Parse `text` (the contents of `file`): its top level must be an object. */
export function parseJson(text: string, file: string): Result<TableNode, Diagnostic> {
  const lines = new LineTable(file, text);
  const s = new Scanner(text, lines);
  try {
    s.ws();
    const v = s.value();
    s.ws();
    if (!s.eof()) s.err('unexpected text after the JSON value', 'a JSON blueprint is one object: remove what follows its closing "}"');
    if (v.type !== 'table') {
      throw new JsonError(0, text.length, `a blueprint must be a JSON object, not ${v.type === 'array' ? 'an array' : `a ${v.type}`}`, 'write the blueprint as { "name": "…", … }', 'wrong-type');
    }
    return ok(v);
  } catch (e) {
    if (!(e instanceof JsonError)) throw e;
    const d = diagnostic(e.reason, e.message, lines.loc(e.start, Math.max(e.end, e.start + 1)), e.hint);
    if (e.related) d.related = e.related;
    return fail(d);
  }
}

class Scanner {
  private i = 0;

  constructor(
    private readonly s: string,
    private readonly lines: LineTable,
  ) {
    if (s.charCodeAt(0) === 0xfeff) this.i = 1;
  }

  eof(): boolean {
    return this.i >= this.s.length;
  }

  err(message: string, hint?: string, start = this.i, end = start + 1): never {
    throw new JsonError(start, end, message, hint);
  }

  ws(): void {
    while (/[ \t\n\r]/.test(this.s[this.i] ?? '')) this.i++;
  }

  private found(): string {
    if (this.eof()) return 'the end of the file';
    if (this.s[this.i] === '/') return '"/" (JSON has no comments)';
    return `"${this.s[this.i]}"`;
  }

  value(): ValueNode {
    const start = this.i;
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') {
      const value = this.string();
      return { type: 'string', value, loc: this.lines.loc(start, this.i) };
    }
    for (const [word, node] of [
      ['true', { type: 'boolean', value: true }],
      ['false', { type: 'boolean', value: false }],
      ['null', { type: 'null', value: null }],
    ] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return { ...node, loc: this.lines.loc(start, this.i) } as ValueNode;
      }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.s.slice(this.i, this.i + 64));
    if (m && m[0].length > 0 && m[0] !== '-') {
      this.i += m[0].length;
      const loc = this.lines.loc(start, this.i);
      const v = Number(m[0]);
      if (!m[2] && !m[3]) {
        if (!Number.isSafeInteger(v)) this.err(`the integer ${m[0]} is too large`, `imgmake reads integers up to ${Number.MAX_SAFE_INTEGER}`, start, this.i);
        return { type: 'integer', value: v, loc };
      }
      return { type: 'float', value: v, loc };
    }
    if (c === "'") this.err('JSON strings use double quotes', 'write "text", not \'text\'');
    this.err(`expected a value, found ${this.found()}`, 'a JSON value is a "string", a number, true, false, null, [an array] or {an object}');
  }

  private object(): TableNode {
    const start = this.i;
    this.i++;
    const t: TableNode = { type: 'table', entries: new Map(), loc: this.lines.loc(start, start + 1) };
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
    } else {
      let comma = -1;
      for (;;) {
        this.ws();
        if (this.s[this.i] !== '"') {
          if (this.s[this.i] === '}' && comma >= 0) this.err('trailing comma in an object', 'remove the comma before "}"', comma);
          this.err(`expected a key in double quotes, found ${this.found()}`, 'write "key": value');
        }
        const kStart = this.i;
        const key = this.string();
        const kEnd = this.i;
        const keyLoc = this.lines.loc(kStart, kEnd);
        this.ws();
        if (this.s[this.i] !== ':') this.err(`expected ":" after the key "${key}", found ${this.found()}`, 'write "key": value');
        this.i++;
        this.ws();
        const value = this.value();
        const prev = t.entries.get(key);
        if (prev) {
          throw new JsonError(kStart, kEnd, `the key "${key}" is given twice`, 'remove one of them', 'duplicate', [{ message: 'first given here', loc: prev.keyLoc }]);
        }
        t.entries.set(key, { key, keyLoc, value });
        this.ws();
        if (this.s[this.i] === ',') {
          comma = this.i;
          this.i++;
          continue;
        }
        if (this.s[this.i] === '}') {
          this.i++;
          break;
        }
        this.err(`expected "," or "}" in an object, found ${this.found()}`, this.s[this.i] === '"' ? 'separate the members of an object with commas' : 'close the object with "}"');
      }
    }
    t.loc = this.lines.loc(start, this.i);
    return t;
  }

  private array(): ValueNode {
    const start = this.i;
    this.i++;
    const items: ValueNode[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
    } else {
      let comma = -1;
      for (;;) {
        this.ws();
        if (this.s[this.i] === ']' && comma >= 0) this.err('trailing comma in an array', 'remove the comma before "]"', comma);
        items.push(this.value());
        this.ws();
        if (this.s[this.i] === ',') {
          comma = this.i;
          this.i++;
          continue;
        }
        if (this.s[this.i] === ']') {
          this.i++;
          break;
        }
        this.err(`expected "," or "]" in an array, found ${this.found()}`, 'separate the items of an array with commas');
      }
    }
    return { type: 'array', items, loc: this.lines.loc(start, this.i) };
  }

  private string(): string {
    const start = this.i;
    this.i++;
    let out = '';
    for (;;) {
      if (this.eof()) this.err('unterminated string', 'close the string with "', start);
      const code = this.s.charCodeAt(this.i);
      if (code === 34) {
        this.i++;
        return out;
      }
      if (code < 0x20) this.err(code === 10 ? 'unterminated string (a newline inside a string)' : 'control character in a string', 'write a newline as \\n and other control characters as \\u00XX', code === 10 ? start : this.i);
      if (code === 92) {
        const c = this.s[this.i + 1];
        const map: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (c !== undefined && map[c] !== undefined) {
          out += map[c];
          this.i += 2;
          continue;
        }
        if (c === 'u') {
          const hex = this.s.slice(this.i + 2, this.i + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.err('"\\u" must be followed by 4 hexadecimal digits', 'write \\u0041 for "A"', this.i, this.i + 2);
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 6;
          continue;
        }
        this.err(`invalid escape "\\${c ?? ''}" in a string`, 'the escapes are \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX', this.i, this.i + 2);
      }
      out += this.s[this.i];
      this.i++;
    }
  }
}
