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
import { isMap, isScalar, LineCounter, parseDocument, type Node } from 'yaml';
import type { Loc } from '../diagnostic.js';
import { asSeq, deref, describeNode, Diagnostics, entries, entry, HINT_STRING, nodeLoc, spanLoc, type SourceFile } from './yaml.js';

export const TOP_KEYS = ['version', 'include', 'vars', 'pipelines', 'targets'] as const;

export interface Files {
  files: SourceFile[];
  merge: SourceFile[];
}

interface Via {
  /** The file that holds the `include:` entry. */
  from: SourceFile;
  loc: Loc;
}

const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: 'each key may appear once in a mapping: remove or rename one of them',
  TAB_AS_INDENT: 'indent with spaces; YAML does not allow tabs for indentation',
  BAD_INDENT: 'indent this line like the others at its level (with spaces)',
  MISSING_CHAR: 'add the missing closing character',
  BLOCK_AS_IMPLICIT_KEY: 'put the nested mapping on its own lines, indented under its key',
  MULTILINE_IMPLICIT_KEY: 'keys must fit on one line; check for a missing ":" on the line before',
};
const YAML_HINT_DEFAULT =
  'fix the YAML here; check the indentation, and quote values that contain ": ", " #", or start with [, {, *, & or !';

export async function readFiles(root: string, d: Diagnostics): Promise<Files> {
  const files: SourceFile[] = [];
  const merge: SourceFile[] = [];
  const seen = new Set<string>();
  const rootDir = dirname(root);

  const show = (p: string): string => {
    const r = relative(rootDir, p);
    return r === '' ? p : r.split('\\').join('/');
  };

  const visit = async (path: string, chain: { file: string; via?: Via }[], via?: Via): Promise<void> => {
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
        d.add(
          'include-missing',
          `included file ${show(path)} ${why}`,
          via.loc,
          `include paths are relative to the folder of the file that includes them (${show(via.from.dir) || '.'}/); variables are not expanded in them`,
        );
      } else {
        d.add('include-missing', `definition file ${path} ${why}`, undefined, 'run imgmake in the folder holding imgmake.yaml, or name the file with --file');
      }
      return;
    }
    seen.add(path);

    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, keepSourceTokens: false });
    const f: SourceFile = { path, dir: dirname(path), text, lines, doc };
    files.push(f);
    for (const err of doc.errors) {
      const message = err.message.replace(/^\w/, (c) => c.toLowerCase());
      d.add('yaml-syntax', `invalid YAML: ${message}`, spanLoc(f, err.pos[0], err.pos[1]), YAML_HINTS[err.code] ?? YAML_HINT_DEFAULT);
    }
    if (doc.errors.length > 0) return;

    const here = [...chain, { file: path, ...(via ? { via } : {}) }];
    const top = deref(f, doc.contents);
    if (isMap(top)) {
      // Only `include:` is read here; the other keys are checked when the files are merged.
      const inc = entry(entries(f, top, new Diagnostics(), TOP_KEYS, ''), 'include')?.value;
      if (inc) {
        const list = asSeq(f, inc, '"include:"', d, nodeLoc(f, inc));
        for (const item of list?.items ?? []) {
          const node = deref(f, item) as Node | null;
          if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
            d.add('wrong-type', `each include must be a file path, not ${describeNode(node)}`, nodeLoc(f, node, nodeLoc(f, list)), HINT_STRING);
            continue;
          }
          const target = isAbsolute(node.value) ? node.value : resolve(f.dir, node.value);
          await visit(target, here, { from: f, loc: nodeLoc(f, node) });
        }
      }
    }
    merge.push(f);
  };

  await visit(resolve(root), []);
  return { files, merge };
}
