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
 * This module reads YAML; it does not look at anything but `include:`.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, visit, type Node, type YAMLError } from 'yaml';
import type { Loc } from '../diagnostic.js';
import { missingPathHint } from './suggest.js';
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

export async function readFiles(root: string, d: Diagnostics): Promise<Files> {
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

    let text: string;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is not a file' : `cannot be read (${code ?? String(e)})`;
      if (via) {
        const written = via.text;
        d.add(
          'include-missing',
          `included file ${written} ${why}`,
          via.loc,
          written.includes('${')
            ? 'variables are not expanded in include paths: write the path itself'
            : missingPathHint(written, path, `${show(via.from.dir)}/`, show(via.from.path)),
        );
      } else {
        d.add('usage', `definition file ${path} ${why}`, undefined, 'run imgmake in a folder with an imgmake.yaml, or name one with -f FILE');
      }
      return;
    }
    seen.add(path);

    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, keepSourceTokens: false });
    const f: SourceFile = { path, dir: dirname(path), text, lines, doc };
    files.push(f);
    // One error per line: the parser's later errors on a line follow from its first.
    const errorLines = new Set<number>();
    for (const err of doc.errors) {
      const { loc, first } = yamlErrorLoc(f, err);
      if (errorLines.has(loc.line)) continue;
      errorLines.add(loc.line);
      const message = err.message.replace(/^\w/, (c) => c.toLowerCase());
      const lineText = text.split(/\r?\n/)[loc.line - 1] ?? '';
      d.add('yaml-syntax', `invalid YAML: ${message}`, loc, yamlHint(err, lineText), first ? [{ message: 'first written here', loc: first }] : undefined);
    }
    if (doc.errors.length > 0) return;

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
          const target = isAbsolute(node.value) ? node.value : resolve(f.dir, node.value);
          await read(target, here, { from: f, loc: nodeLoc(f, node), text: node.value });
        }
      }
    }
    merge.push(f);
  };

  await read(resolve(root), []);
  return { files, merge };
}
