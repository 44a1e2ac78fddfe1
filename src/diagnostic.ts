/**
 * Diagnostics point at the user's bytes: a file, a 1-based line and column, and the span to
 * underline. Every load error (YAML syntax, unknown rule, schema failure, cycle, …) is one of
 * these; `formatDiagnostic` prints it the same way everywhere:
 *
 *     imgmake.yaml:14:15: error: unknown rule "files.mkdri"
 *        14 |       - rule: files.mkdri
 *           |               ^^^^^^^^^^^
 *     hint: did you mean "files.mkdir"? `imgmake rules` lists every rule.
 *
 * This module formats; it does not decide what is an error.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** A span in a source file. Lines and columns are 1-based; `endLine:endCol` is exclusive. */
export interface Loc {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

/** Kebab-case reasons, one per kind of load error, so tests and renderers can switch on them. */
export type DiagnosticReason =
  | 'yaml-syntax'
  | 'unknown-key'
  | 'missing-key'
  | 'wrong-type'
  | 'unknown-rule'
  | 'invalid-options'
  | 'unknown-pipeline'
  | 'unknown-input'
  | 'missing-input'
  | 'duplicate'
  | 'cycle'
  | 'include-loop'
  | 'include-missing'
  | 'undefined-variable'
  | 'unknown-target'
  | 'bad-file'
  | 'bad-version'
  /** An include or file input that leads out of the project folder (and any --allow-path). */
  | 'outside-project'
  /** A NUL or other control character, or bytes that are not UTF-8, in a definition file. */
  | 'bad-encoding'
  /** A file, an alias expansion or a variable's value past imgmake's bounds. */
  | 'too-large'
  /** `--var NAME=…` or `IMGMAKE_VAR_NAME` for a variable the definition does not declare. */
  | 'unknown-variable'
  /** A stage checkpoint (shell, export) whose tree is not in the cache. */
  | 'not-built'
  /** A blueprint that is not valid TOML or JSON (YAML blueprints use 'yaml-syntax'). */
  | 'toml-syntax'
  | 'json-syntax'
  /** A well-typed value that is not allowed: a bad service name, a port out of range, a size of 0. */
  | 'invalid-value'
  /** A blueprint path or mountpoint that composer's path policy refuses (/usr, /boot, /etc/fstab, …). */
  | 'path-policy'
  /** A blueprint option the image type (or imgmake as a whole) does not support. */
  | 'unsupported-option'
  /**
   * A stage's buildroot, built in order to lock the stage, failed to build: a runtime failure
   * (exit 1), reported where locking reports (src/engine/lock.ts).
   */
  | 'buildroot-failed'
  /**
   * A mirror or repository could not be reached while locking (refused, unresolvable, timed
   * out): a runtime failure (exit 1), never the user's input.
   */
  | 'network'
  /**
   * A repository's signed index (a Release file) did not verify with the keys given while
   * locking: a runtime failure (exit 1). The input is well-formed; whether its key or the
   * repository's files are wrong is not for imgmake to tell, and nothing was written.
   */
  | 'signature'
  | 'usage';

export interface Diagnostic {
  reason: DiagnosticReason;
  message: string;
  loc?: Loc;
  hint?: string;
  /** Further places worth showing (the other definition of a duplicate, the rest of a cycle). */
  related?: { message: string; loc: Loc }[];
}

export function diagnostic(
  reason: DiagnosticReason,
  message: string,
  loc?: Loc,
  hint?: string,
): Diagnostic {
  return { reason, message, ...(loc ? { loc } : {}), ...(hint ? { hint } : {}) };
}

export interface FormatOptions {
  /** Paths are printed relative to this directory (default: the process's cwd). */
  cwd?: string;
  /** Source text by file, for files not on disk or to avoid re-reading. */
  sources?: Map<string, string>;
}

export function formatLoc(loc: Loc, cwd = process.cwd()): string {
  return `${displayPath(loc.file, cwd)}:${loc.line}:${loc.col}`;
}

export function formatDiagnostic(d: Diagnostic, opts: FormatOptions = {}): string {
  const cwd = opts.cwd ?? process.cwd();
  const out: string[] = [];
  out.push(d.loc ? `${formatLoc(d.loc, cwd)}: error: ${d.message}` : `error: ${d.message}`);
  if (d.loc) out.push(...excerpt(d.loc, opts));
  for (const r of d.related ?? []) {
    out.push(`${formatLoc(r.loc, cwd)}: note: ${r.message}`);
    out.push(...excerpt(r.loc, opts));
  }
  if (d.hint) out.push(`hint: ${d.hint}`);
  return out.join('\n');
}

function displayPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') ? rel : file;
}

function sourceLines(file: string, opts: FormatOptions): string[] | undefined {
  let text = opts.sources?.get(file);
  if (text === undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  }
  return text.split(/\r?\n/);
}

/** At most this many characters of a line are shown; a longer line is cut around the span. */
export const EXCERPT_WIDTH = 120;

/**
 * The offending line with a gutter and a `^^^` underline of the span (its first line only).
 * A line longer than EXCERPT_WIDTH is cut around the column, `…` marking each cut side (a
 * 40,000-character line of `[` once filled a terminal); control characters show as `�`.
 */
function excerpt(loc: Loc, opts: FormatOptions): string[] {
  const lines = sourceLines(loc.file, opts);
  const full = lines?.[loc.line - 1];
  if (full === undefined) return [];
  const num = String(loc.line);
  const gutter = ' '.repeat(num.length);
  const lineEnd = full.length + 1;
  const end = loc.endLine === loc.line ? Math.min(loc.endCol, lineEnd) : lineEnd;
  // The window [from, to) of the line: the span's start with some context before it.
  let from = 0;
  let to = full.length;
  if (full.length > EXCERPT_WIDTH) {
    from = Math.max(0, Math.min(loc.col - 1 - 40, full.length - EXCERPT_WIDTH));
    to = Math.min(full.length, from + EXCERPT_WIDTH);
  }
  const before = from > 0 ? '…' : '';
  const after = to < full.length ? '…' : '';
  const text = full.slice(from, to).replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '�');
  const start = Math.max(loc.col - 1, from);
  const width = Math.max(1, Math.min(end - 1, to + (after ? 0 : 1)) - start);
  const tabsAware = (before + full.slice(from, start)).replace(/[^\t]/g, ' ');
  return [`  ${num} | ${before}${text}${after}`, `  ${gutter} | ${tabsAware}${'^'.repeat(width)}`];
}
