/**
 * Reads the root definition and, depth first, every file it includes. Each file is parsed
 * once (a file included twice through different paths is read once, like `#pragma once`);
 * a file that includes itself, directly or through others, is an `include-loop`.
 *
 * Two orders come out: `files` is the reading order (root first, then its includes as
 * written): what watch watches. `merge` is the order the files' contents are merged in:
 * a file's includes (in the order written) before the file itself, so a file overrides what
 * it includes.
 *
 * Every include resolves inside the project folder (or an --allow-path folder): see confine.ts.
 * A file must be at most MAX_FILE_BYTES of UTF-8 without NUL or other control characters,
 * and its aliases may not expand it past MAX_EXPANDED_NODES values (an alias bomb of 9 levels
 * of 9 aliases is 387 million): each is an error at its position, before anything else reads it.
 *
 * This module reads YAML; it does not look at anything but `include:`.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Node, type YAMLError } from 'yaml';
import { resolveConfined, type Roots } from '../confine.js';
import type { Loc } from '../diagnostic.js';
import { confinedHint, outsideMessage } from './outside.js';
import { asSeq, deref, describeNode, Diagnostics, entries, HINT_STRING, nodeLoc, spanLoc, type SourceFile } from './yaml.js';

export const TOP_KEYS = ['version', 'include', 'vars', 'pipelines', 'targets', 'cache'] as const;

export interface Files {
  files: SourceFile[];
  merge: SourceFile[];
}

interface Via {
  /** The file that holds the `include:` entry. */
  from: SourceFile;
  loc: Loc;
  /** The path as written. */
  text: string;
}

/** What to do about a YAML error, from its code and message. */
function yamlHint(err: YAMLError, line: string): string {
  // `[/etc/${x}]`: "{" is a flow indicator, so an unquoted variable breaks the collection.
  if (/[[{][^"']*\$\{/.test(line)) {
    return 'inside [ ] or { }, quote a value that uses a variable: "/etc/${name}"';
  }
  if (/end with a [\]}]/.test(err.message)) {
    return 'close each "[" with "]" and each "{" with "}"; a collection continued on the next line must also be indented more than its key';
  }
  switch (err.code) {
    case 'DUPLICATE_KEY':
      return 'each key may appear once in a mapping: remove or rename one of them';
    case 'TAB_AS_INDENT':
      return 'indent with spaces: YAML does not allow tabs for indentation';
    case 'BAD_INDENT':
      return 'indent this line like the others at its level, with spaces';
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return 'check the line before: a key needs ": " after it, and a nested mapping goes on its own lines, indented under its key';
    default:
      return 'check the indentation, and quote values that contain ": " or " #", or start with [, {, *, & or !';
  }
}

/** Where a YAML error is, as precisely as possible: a duplicate key is underlined whole. */
function yamlErrorLoc(f: SourceFile, err: YAMLError): { loc: Loc; first?: Loc } {
  const [start, end] = err.pos;
  if (err.code !== 'DUPLICATE_KEY') return { loc: spanLoc(f, start, end) };
  let key: Node | undefined;
  let first: Node | undefined;
  visit(f.doc, {
    Map(_, map) {
      const i = map.items.findIndex((p) => (p.key as Node | null)?.range?.[0] === start);
      if (i < 0) return undefined;
      key = map.items[i]!.key as Node;
      const name = isScalar(key) ? key.value : undefined;
      first = map.items.find((p, j) => j < i && isScalar(p.key) && p.key.value === name)?.key as Node | undefined;
      return visit.BREAK;
    },
  });
  return { loc: key ? nodeLoc(f, key) : spanLoc(f, start, end), ...(first ? { first: nodeLoc(f, first) } : {}) };
}

/** A definition file larger than this is refused unread (a definition is a few kilobytes). */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** What a file's aliases may expand it to, in YAML values (scalars, lists, mappings). */
export const MAX_EXPANDED_NODES = 100_000;

/**
 * `roots`: the real project folder first, then the --allow-path folders. `root` is the root
 * definition, in the project folder (its own path may be a symlink: the user named it).
 */
export async function readFiles(root: string, roots: Roots, d: Diagnostics): Promise<Files> {
  const files: SourceFile[] = [];
  const merge: SourceFile[] = [];
  const seen = new Set<string>();
  const rootDir = dirname(root);

  const show = (p: string): string => {
    const r = relative(rootDir, p);
    return r === '' ? '.' : r.split('\\').join('/');
  };

  const read = async (path: string, chain: { file: string; via?: Via }[], via?: Via): Promise<void> => {
    const loopAt = chain.findIndex((c) => c.file === path);
    if (loopAt >= 0 && via) {
      const names = [...chain.slice(loopAt).map((c) => show(c.file)), show(path)];
      const related = chain
        .slice(loopAt + 1)
        .map((c) => ({ message: `${show(c.via!.from.path)} includes ${show(c.file)} here`, loc: c.via!.loc }));
      d.add(
        'include-loop',
        `include loop: ${names.join(' → ')}`,
        via.loc,
        'a file cannot include itself, directly or through other files: remove one of these includes',
        related,
      );
      return;
    }
    if (seen.has(path)) return;

    const got = await readText(path);
    if (!got.ok) {
      const shown = via ? `included file ${via.text}` : `definition file ${path}`;
      if (got.why === 'too-large') {
        d.add('too-large', `${shown} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`, via?.loc, 'a definition is a few kilobytes: split it, or check that this is the file you meant');
      } else if (via) {
        d.add('include-missing', `included file ${via.text} ${got.why}`, via.loc, 'name a YAML file of the project');
      } else {
        d.add('usage', `definition file ${path} ${got.why}`, undefined, 'run imgmake in a folder with an imgmake.yaml, or name one with -f FILE');
      }
      return;
    }
    seen.add(path);
    const lines = new LineCounter();
    const text = got.text;
    if (!checkBytes(d, path, text, got.badUtf8)) return;

    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, keepSourceTokens: false });
    const f: SourceFile = { path, dir: dirname(path), text, lines, doc };
    files.push(f);
    // One error per line: the parser's later errors on a line follow from its first.
    const errorLines = new Set<number>();
    for (const err of doc.errors) {
      const { loc, first } = yamlErrorLoc(f, err);
      if (errorLines.has(loc.line)) continue;
      errorLines.add(loc.line);
      if (err.code === 'RESOURCE_EXHAUSTION') {
        d.add('too-large', 'invalid YAML: lists or mappings nested too deep', loc, 'nest fewer "[" and "{": a definition needs a few levels');
        continue;
      }
      const message = err.message.replace(/^\w/, (c) => c.toLowerCase());
      const lineText = text.split(/\r?\n/)[loc.line - 1] ?? '';
      d.add('yaml-syntax', `invalid YAML: ${message}`, loc, yamlHint(err, lineText), first ? [{ message: 'first written here', loc: first }] : undefined);
    }
    if (doc.errors.length > 0) return;
    if (!checkAliases(d, f)) return;

    const here = [...chain, { file: path, ...(via ? { via } : {}) }];
    const top = deref(f, doc.contents);
    if (isMap(top)) {
      // Only `include:` is read here; the other keys are checked when the files are merged.
      const inc = entries(f, top, new Diagnostics(), TOP_KEYS, '').get('include')?.value;
      if (inc) {
        const list = asSeq(f, inc, '"include:"', d, nodeLoc(f, inc));
        for (const item of list?.items ?? []) {
          const node = deref(f, item) as Node | null;
          if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
            d.add('wrong-type', `each include must be a file path, not ${describeNode(node)}`, nodeLoc(f, node, nodeLoc(f, list)), HINT_STRING);
            continue;
          }
          const written = node.value;
          const loc = nodeLoc(f, node);
          const r = resolveConfined(roots, f.dir, written);
          if (!r.ok) {
            if (r.error === 'outside') {
              d.add('outside-project', outsideMessage(`included file "${written}"`, r.escape, show), loc, confinedHint(show, 'include'));
            } else {
              const why = r.error === 'loop' ? 'is a symlink loop' : 'does not exist';
              const hint = written.includes('${')
                ? 'variables are not expanded in include paths: write the path itself'
                : confinedHint(show, 'include', r, written, f);
              d.add('include-missing', `included file ${written} ${why}`, loc, hint);
            }
            continue;
          }
          await read(r.path, here, { from: f, loc, text: written });
        }
      }
    }
    merge.push(f);
  };

  await read(root, []);
  return { files, merge };
}

type Text = { ok: true; text: string; badUtf8?: number } | { ok: false; why: string };

/**
 * The file as text, if it is a regular file of at most MAX_FILE_BYTES; `badUtf8` is the
 * offset in `text` of the first byte that is not UTF-8 (the text has U+FFFD there).
 */
async function readText(path: string): Promise<Text> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO named as a definition must not hang the open.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, why: code === 'ENOENT' ? 'does not exist' : code === 'ELOOP' ? 'is a symlink loop' : `cannot be read (${code ?? String(e)})` };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { ok: false, why: 'is not a file' };
    if (st.size > MAX_FILE_BYTES) return { ok: false, why: 'too-large' };
    const buf = await fh.readFile();
    if (buf.length > MAX_FILE_BYTES) return { ok: false, why: 'too-large' };
    try {
      return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(buf) };
    } catch {
      const bad = firstInvalidUtf8(buf);
      return { ok: true, text: new TextDecoder('utf-8').decode(buf), badUtf8: new TextDecoder('utf-8').decode(buf.subarray(0, bad)).length };
    }
  } catch (e) {
    return { ok: false, why: `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  } finally {
    await fh.close();
  }
}

/** The offset of the first byte that is not part of a well-formed UTF-8 character (the length if none). */
function firstInvalidUtf8(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Continuation bytes after the lead, and the smallest code point that may use that many.
    const [n, min] = c >= 0xc2 && c <= 0xdf ? [1, 0x80] : c >= 0xe0 && c <= 0xef ? [2, 0x800] : c >= 0xf0 && c <= 0xf4 ? [3, 0x10000] : [0, 0];
    if (n === 0 || i + n >= b.length) return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const x = b[i + k]!;
      if ((x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

/** C0 controls but tab, LF and CR, and DEL: YAML does not allow them, and a NUL ends a C path. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** Bytes that are not UTF-8, or a control character: an error at its position, and the file is not parsed. */
function checkBytes(d: Diagnostics, path: string, text: string, badUtf8: number | undefined): boolean {
  const at = (i: number): Loc => {
    const before = text.slice(0, i);
    const line = before.split('\n').length;
    const col = i - (before.lastIndexOf('\n') + 1) + 1;
    return { file: path, line, col, endLine: line, endCol: col + 1 };
  };
  if (badUtf8 !== undefined) {
    d.add('bad-encoding', 'this file is not UTF-8: the byte here is not part of a UTF-8 character', at(badUtf8), 'save the file as UTF-8 (the byte shows as �)');
    return false;
  }
  const m = CONTROL.exec(text);
  if (m) {
    const code = m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    d.add('bad-encoding', `control character U+${code}${code === '0000' ? ' (NUL)' : ''} in the definition`, at(m.index), 'remove it (it shows as �): YAML allows no control characters but tab and line breaks');
    return false;
  }
  return true;
}

/**
 * Bounds what the file's aliases expand to. The yaml library's own `maxAliasCount` guards only
 * its `toJS`; load walks the node tree (to keep positions), where each `*alias` is its anchor's
 * whole value again. So: every node's expanded size, once (memoised: linear in the file), and
 * an error at the alias that carries the most when the whole passes MAX_EXPANDED_NODES.
 */
function checkAliases(d: Diagnostics, f: SourceFile): boolean {
  const size = new Map<unknown, number>();
  const busy = new Set<unknown>();
  let worst: { alias: Node; n: number } | undefined;
  let selfRef: Node | undefined;
  const count = (node: unknown): number => {
    if (node === null || node === undefined) return 0;
    const known = size.get(node);
    if (known !== undefined) return known;
    if (busy.has(node)) return 0;
    let n = 1;
    if (isAlias(node)) {
      const target = node.resolve(f.doc);
      if (target && busy.has(target)) selfRef ??= node as unknown as Node;
      n = count(target);
      if (!worst || n > worst.n) worst = { alias: node as unknown as Node, n };
    } else if (isPair(node)) {
      n = count(node.key) + count(node.value);
    } else if (isMap(node) || isSeq(node)) {
      busy.add(node);
      for (const item of node.items) n = Math.min(Number.MAX_SAFE_INTEGER, n + count(item));
      busy.delete(node);
    }
    size.set(node, n);
    return n;
  };
  const total = count(f.doc.contents);
  if (selfRef) {
    d.add('too-large', 'this alias is inside the value it refers to', nodeLoc(f, selfRef), 'an alias (*name) can only repeat a value that is complete before it: remove it, or move it out of its anchor\'s (&name) value');
    return false;
  }
  if (total > MAX_EXPANDED_NODES && worst) {
    d.add(
      'too-large',
      `aliases expand this file to more than ${MAX_EXPANDED_NODES.toLocaleString('en')} values`,
      nodeLoc(f, worst.alias),
      `this alias alone repeats ${worst.n.toLocaleString('en')} values: each *name copies its &name's whole value, and aliases of aliases multiply; write the values out, or nest fewer aliases`,
    );
    return false;
  }
  return true;
}
