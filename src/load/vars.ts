/**
 * Variables: `vars:` of every file merged (a file overrides what it includes, a later
 * include overrides an earlier one, `--var` overrides everything), then `${name}`
 * substituted into string values.
 *
 * - A string that is exactly one `${name}` takes the variable's value with its YAML type
 *   (`size: ${disk_size}` is a number when `disk_size: 4096` is), quoted or not: flow
 *   mappings need the quotes (`{ size: "${disk_size}" }`), so quoting cannot mean "string".
 * - Anywhere else `${name}` is replaced by the value's text (a number as it was written).
 * - `$${` is a literal `${`.
 * - Host defaults (a package format's mirror, read from the host's own configuration) are variables a file may
 *   use without declaring; a file's `vars:` and `--var` win over them.
 * - Variables may use other variables; a loop among them is a `cycle`.
 * - A `--var` override takes the type of the file variable it overrides (a number stays a
 *   number, `true`/`false` stay booleans). A `--var` for a variable no file declares is an
 *   error (load's `checkOverrides`); one for a host default is a string.
 * - Bounded: variables nest at most MAX_DEPTH deep, and no value grows past MAX_VALUE_CHARS
 *   (40 variables that each double the one before would be a terabyte): a `too-large` error
 *   where the value passes the bound.
 *
 * Each error is reported once, where it was written: a variable that failed to resolve is
 * silently unusable afterwards, so its uses do not repeat the error.
 */
import { isScalar, type Node, type Scalar } from 'yaml';
import type { Loc } from '../diagnostic.js';
import { closest, listOf } from './suggest.js';
import { describeNode, nodeLoc, spanLoc, type Diagnostics, type SourceFile } from './yaml.js';

export const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Variables that use variables that use variables…: at most this deep. */
export const MAX_DEPTH = 64;
/** The longest string a substitution may make (1 MiB of text). */
export const MAX_VALUE_CHARS = 1024 * 1024;

/** A variable the host provides: its value here, or what to do when there is none. */
export interface HostDefault {
  value: string | undefined;
  /** The hint when a definition uses it and the host has no value. */
  missing: string;
}

export interface VarDecl {
  name: string;
  file: SourceFile;
  keyLoc: Loc;
  /** The value as written (aliases resolved). */
  value: Node | null;
}

/** A resolved variable: its typed value and the text it becomes inside a longer string. */
export interface VarValue {
  value: string | number | boolean | null;
  text: string;
}

/** `{ ok: false }` means: something failed and was already reported. */
export type Substituted = { ok: true; value: unknown } | { ok: false };

type Token =
  | { kind: 'literal'; start: number; end: number } // `$${`
  | { kind: 'ref'; name: string; start: number; end: number }
  | { kind: 'open'; start: number; end: number }; // `${` never closed

function tokens(s: string): Token[] {
  const out: Token[] = [];
  const re = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const start = m.index;
    const end = start + m[0].length;
    if (m[0] === '$${') out.push({ kind: 'literal', start, end });
    else if (m[1] !== undefined) out.push({ kind: 'ref', name: m[1], start, end });
    else out.push({ kind: 'open', start, end });
  }
  return out;
}

const WHOLE = /^\$\{([^}]*)\}$/;

export class Vars {
  private readonly state = new Map<string, VarValue | 'resolving' | 'failed'>();
  /** Variables being resolved, innermost last, with where each was referenced from. */
  private readonly stack: { name: string; loc?: Loc }[] = [];

  constructor(
    private readonly decls: ReadonlyMap<string, VarDecl>,
    private readonly overrides: Readonly<Record<string, string>>,
    private readonly d: Diagnostics,
    /** Host defaults: the weakest, each with the hint given when it is used but missing. */
    private readonly defaults: Readonly<Record<string, HostDefault>> = {},
  ) {}

  /** Every variable's final text, in declaration order (file variables, then new `--var`s). */
  resolveAll(): Record<string, string> | undefined {
    const out: Record<string, string> = {};
    let ok = true;
    for (const name of this.names()) {
      const v = this.get(name);
      if (v) out[name] = v.text;
      else ok = false;
    }
    return ok ? out : undefined;
  }

  private names(): string[] {
    const host = Object.keys(this.defaults).filter((n) => this.defaults[n]!.value !== undefined);
    return [...new Set([...this.decls.keys(), ...Object.keys(this.overrides), ...host])];
  }

  /** The variable's value; `undefined` when it is not defined (reported at `loc`) or failed. */
  get(name: string, loc?: Loc): VarValue | undefined {
    const host = Object.hasOwn(this.defaults, name) ? this.defaults[name]! : undefined;
    const known = this.decls.has(name) || Object.hasOwn(this.overrides, name) || host?.value !== undefined;
    if (!known && host) {
      this.d.add('undefined-variable', `variable "${name}" has no value on this host`, loc, host.missing);
      return undefined;
    }
    if (!known) {
      const names = this.names();
      const guess = closest(name, names);
      const hint = guess
        ? `did you mean "${guess}"? Defined variables: ${listOf(names)}.`
        : names.length > 0
          ? `define it under "vars:" or with --var ${name}=VALUE; defined variables: ${listOf(names)}`
          : `define it under "vars:" or with --var ${name}=VALUE; no variables are defined`;
      this.d.add('undefined-variable', `undefined variable "${name}"`, loc, hint);
      return undefined;
    }
    const s = this.state.get(name);
    if (s === 'failed') return undefined;
    if (s === 'resolving') {
      this.reportCycle(name, loc);
      return undefined;
    }
    if (s) return s;
    if (this.stack.length >= MAX_DEPTH) {
      this.d.add('too-large', `variables use each other more than ${MAX_DEPTH} deep: ${this.stack[0]!.name} → … → ${name}`, loc, 'give some of them plain values');
      this.state.set(name, 'failed');
      return undefined;
    }
    this.state.set(name, 'resolving');
    this.stack.push({ name, ...(loc ? { loc } : {}) });
    const v = this.evaluate(name);
    this.stack.pop();
    this.state.set(name, v ?? 'failed');
    return v;
  }

  private reportCycle(name: string, loc: Loc | undefined): void {
    const from = this.stack.findIndex((s) => s.name === name);
    const chain = [...this.stack.slice(from).map((s) => s.name), name];
    const related: { message: string; loc: Loc }[] = [];
    for (let i = from + 1; i < this.stack.length; i++) {
      const s = this.stack[i]!;
      if (s.loc) related.push({ message: `"${this.stack[i - 1]!.name}" uses "${s.name}" here`, loc: s.loc });
    }
    this.d.add(
      'cycle',
      `variables refer to each other in a loop: ${chain.join(' → ')}`,
      loc,
      'a variable cannot use itself, directly or through other variables: give one of them a plain value',
      related,
    );
  }

  private evaluate(name: string): VarValue | undefined {
    const decl = this.decls.get(name);
    if (Object.hasOwn(this.overrides, name)) return this.override(name, this.overrides[name]!, decl);
    const host = this.defaults[name]?.value;
    if (!decl && host !== undefined) return { value: host, text: host };
    if (!decl) throw new Error(`Internal error: variable ${name} has no declaration`);
    const node = decl.value;
    if (node !== null && !isScalar(node)) {
      this.d.add(
        'wrong-type',
        `variable "${name}" must be a string, number or boolean, not ${describeNode(node)}`,
        nodeLoc(decl.file, node),
        'variables hold one value; write a single value here',
      );
      return undefined;
    }
    if (node === null || node.value === null || node.value === undefined) return { value: null, text: '' };
    const v = node.value;
    if (typeof v === 'string') {
      const whole = WHOLE.exec(v);
      // `a: ${b}` is b itself: its type and its text as written.
      if (whole && tokens(v).length === 1) return this.get(whole[1]!, this.tokenLocs(decl.file, node, tokens(v))[0]);
      const r = this.substitute(decl.file, node);
      return r.ok ? { value: r.value as string, text: r.value as string } : undefined;
    }
    if (typeof v === 'number' || typeof v === 'boolean') return { value: v, text: node.source ?? String(v) };
    if (typeof v === 'bigint') return { value: Number(v), text: node.source ?? String(v) };
    this.d.add('wrong-type', `variable "${name}" must be a string, number or boolean`, nodeLoc(decl.file, node), 'write a single value here');
    return undefined;
  }

  private override(name: string, text: string, decl: VarDecl | undefined): VarValue | undefined {
    const written = decl?.value && isScalar(decl.value) ? decl.value.value : undefined;
    if (typeof written === 'number') {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) {
        this.d.add('usage', `--var ${name}=${text}: "${name}" is a number in the definition, and "${text}" is not`, undefined, `give a number, e.g. --var ${name}=${String(written)}`, [
          { message: `"${name}" is defined here`, loc: decl!.keyLoc },
        ]);
        return undefined;
      }
      return { value: n, text };
    }
    if (typeof written === 'boolean') {
      if (text !== 'true' && text !== 'false') {
        this.d.add('usage', `--var ${name}=${text}: "${name}" is a boolean in the definition, and "${text}" is not`, undefined, `give true or false, e.g. --var ${name}=${String(!written)}`, [
          { message: `"${name}" is defined here`, loc: decl!.keyLoc },
        ]);
        return undefined;
      }
      return { value: text === 'true', text };
    }
    return { value: text, text };
  }

  /**
   * The scalar's value with `${…}` replaced. Errors are reported at the `${name}` itself when
   * the scalar is on one line and written plainly or quoted; else at the scalar.
   */
  substitute(f: SourceFile, node: Scalar): Substituted {
    const s = node.value;
    if (typeof s !== 'string' || !s.includes('${')) return { ok: true, value: s };
    const toks = tokens(s);
    const locs = this.tokenLocs(f, node, toks);
    const whole = WHOLE.exec(s);
    if (whole && toks.length === 1) {
      const v = this.get(whole[1]!, locs[0]);
      return v ? { ok: true, value: v.value } : { ok: false };
    }
    let out = '';
    let at = 0;
    let ok = true;
    toks.forEach((t, i) => {
      out += s.slice(at, t.start);
      at = t.end;
      if (t.kind === 'literal') out += '${';
      else if (t.kind === 'open') {
        ok = false;
        this.d.add('undefined-variable', 'unterminated "${": a variable reference ends with "}"', locs[i], 'write ${name}, or $${ for a literal "${"');
      } else {
        const v = this.get(t.name, locs[i]);
        if (!v) ok = false;
        else if (ok && out.length + v.text.length > MAX_VALUE_CHARS) {
          ok = false;
          this.d.add(
            'too-large',
            `this value grows past ${MAX_VALUE_CHARS / 1024 / 1024} MiB of text here ("${t.name}" is ${v.text.length.toLocaleString('en')} characters)`,
            locs[i],
            'variables that repeat each other double at each step: give them plain values',
          );
        } else if (ok) out += v.text;
      }
    });
    out += s.slice(at);
    return ok ? { ok: true, value: out } : { ok: false };
  }

  private tokenLocs(f: SourceFile, node: Scalar, toks: Token[]): Loc[] {
    const whole = nodeLoc(f, node);
    const range = node.range;
    const inline = node.type === 'PLAIN' || node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    if (!range || !inline) return toks.map(() => whole);
    const raw = f.text.slice(range[0], range[1]);
    if (raw.includes('\n')) return toks.map(() => whole);
    const rawToks = tokens(raw);
    const same =
      rawToks.length === toks.length &&
      rawToks.every((r, i) => r.kind === toks[i]!.kind && (r.kind !== 'ref' || r.name === (toks[i] as { name: string }).name));
    if (!same) return toks.map(() => whole);
    return rawToks.map((r) => spanLoc(f, range[0] + r.start, range[0] + r.end));
  }
}
