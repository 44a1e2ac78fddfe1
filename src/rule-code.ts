/**
 * rule-code: which files are a rule's code, and their digest (the `ruleCode` field of every key
 * the rule's stages get; docs/cache-key.md).
 *
 * A rule's code is what runs when its stage runs, found by reading the files, never listed by
 * hand:
 *
 *     own folder     every file of `rules/x.y/` but tests and TypeScript sources (rule.json,
 *                    scripts, awk, data), and every file of its compiled mirror `dist/rules/x.y/`
 *                    but tests, source maps and declarations: the JavaScript the engine imports
 *     imports        the relative `import`/`export … from`/`import('…')` of each JavaScript file
 *                    in the set, followed transitively (`../_lib/disk.js` → `./sh.js`)
 *     reads          each `new URL('…', import.meta.url)` of a JavaScript file in the set: the
 *                    shell and data files a module reads at run time (`_lib/disk.sh`)
 *     sources        each `. FILE` / `source FILE` of a shell file in the set whose name is a
 *                    file beside it or in `rules/_lib/`, followed transitively
 *
 * Only files inside the rules folder or its compiled mirror count: the engine (`src/`, which a
 * rule may import types from), Node's built-ins and npm packages are imgmake's own code, which
 * the key schema version stands for. Tests (`*.test.*`) and what only tests import are never
 * part of it, so editing a test re-keys nothing.
 *
 * The compiled JavaScript is digested, not the TypeScript: a `dist/` older than its sources runs
 * the old code under the old key, and `npx tsc` re-keys what it changed. Where a rule names
 * files in a way this module cannot follow (a computed path outside its own folder, any other
 * use of `import.meta`), digesting fails with a RuleCodeError rather than leave a file out.
 *
 * This module reads and hashes files; it does not load, validate or run rules (rule.ts does).
 */
import { sha256 } from './hash.js';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDigest, type Digest } from './ids.js';

/**
 * A folder of rules and where its TypeScript is compiled to. The built-in rules are
 * `{ dir: <package>/rules, compiled: <package>/dist/rules }`; a folder of rules written in
 * JavaScript (each with its own `index.js`) has no `compiled`.
 */
export interface RulesRoot {
  dir: string;
  compiled?: string;
}

/** One file of a rule's code. */
export interface CodeFile {
  /** Which tree it is in: the rules folder as written, or its compiled mirror. */
  root: 'source' | 'compiled';
  /** Its path relative to that root, `/`-separated: `_lib/disk.sh`, `disk.partition/index.js`. */
  path: string;
  /** sha256 (hex) of its bytes. */
  sha256: string;
  /** How it was found (for `imgmake rules NAME --json` and tests; not part of the digest). */
  via: 'own' | 'import' | 'read' | 'source';
}

export interface RuleCode {
  /** Sorted by `root:path`. */
  files: CodeFile[];
  /** sha256 of the `[root, path, sha256]` rows: the key's `ruleCode`. */
  digest: Digest;
}

/** A rule whose code cannot be told: its compiled code is missing, or it names files in a way not followed. */
export class RuleCodeError extends Error {
  override name = 'RuleCodeError';
}

export interface RuleCodeOptions {
  name: string;
  /** The rule's folder (in `root.dir`). */
  dir: string;
  /** The module the engine imports: the folder's own `index.js`, or its compiled `index.js`. */
  implementation: string;
  root: RulesRoot;
  /** File → sha256 hex; a registry shares one so `_lib` files are read once. */
  hash?: (path: string) => string;
}

const TEST = /\.test\./;
const TYPESCRIPT = /\.[cm]?ts$/;
const JAVASCRIPT = /\.[cm]?js$/;

/** The files of a rule's code and their digest. Throws RuleCodeError (see the module header). */
export function ruleCode(o: RuleCodeOptions): RuleCode {
  const hash = o.hash ?? hashFile;
  const ownCompiled = o.root.compiled ? join(o.root.compiled, relative(o.root.dir, o.dir)) : undefined;
  if (!existsSync(o.implementation)) {
    const own = join(o.dir, 'index.js');
    throw new RuleCodeError(
      `rule ${o.name} has no code to run: ${o.implementation} does not exist` +
        (o.implementation !== own ? ` (nor ${own}); compile the rules with npx tsc -p .` : ''),
    );
  }
  const found = new Map<string, CodeFile['via']>();
  const queue: string[] = [];
  const add = (path: string, via: CodeFile['via']): void => {
    if (found.has(path)) return;
    found.set(path, via);
    queue.push(path);
  };
  for (const p of walk(o.dir)) if (!TYPESCRIPT.test(p)) add(p, 'own');
  if (ownCompiled) for (const p of walk(ownCompiled)) if (!p.endsWith('.map') && !p.endsWith('.d.ts')) add(p, 'own');
  add(o.implementation, 'own');

  const ownFolder = (p: string): boolean => within(o.dir, p) || (ownCompiled !== undefined && within(ownCompiled, p));
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (JAVASCRIPT.test(file)) {
      for (const ref of moduleReferences(file, readFileSync(file, 'utf8'))) {
        if (ref.kind === 'computed') {
          if (ref.prefixDir !== undefined && ownFolder(ref.prefixDir)) continue;
          throw new RuleCodeError(
            `rule ${o.name}: ${file} names a file imgmake cannot follow into the rule's key (${ref.text}); ` +
              `name it with a string literal, new URL('./file.sh', import.meta.url), or keep the files it ` +
              `chooses from in the rule's own folder`,
          );
        }
        if (!inRoots(o.root, ref.path)) continue;
        if (!existsSync(ref.path)) {
          throw new RuleCodeError(`rule ${o.name}: ${file} ${ref.kind === 'import' ? 'imports' : 'reads'} ${ref.path}, which does not exist (compile the rules with npx tsc -p .)`);
        }
        for (const p of statSync(ref.path).isDirectory() ? walk(ref.path) : [ref.path]) add(p, ref.kind);
      }
    } else if (file.endsWith('.sh')) {
      for (const name of sourcedNames(readFileSync(file, 'utf8'))) {
        const beside = join(dirname(file), name);
        const lib = join(o.root.dir, '_lib', name);
        const hit = [beside, lib].find((p) => inRoots(o.root, p) && !TEST.test(p) && existsSync(p) && statSync(p).isFile());
        if (hit) add(hit, 'source');
      }
    }
  }

  const files: CodeFile[] = [...found].map(([path, via]) => {
    const where = inRoots(o.root, path);
    if (!where) throw new Error(`Internal error: ${path} is outside the rules folders`);
    return { ...where, sha256: hash(path), via };
  });
  const order = (f: CodeFile): string => `${f.root}:${f.path}`;
  files.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  const rows = files.map((f) => [f.root, f.path, f.sha256]);
  return { files, digest: formatDigest(sha256(JSON.stringify(rows))) };
}

/** A memoizing `hash` for ruleCode: one read per file per registry. */
export function fileHasher(): (path: string) => string {
  const memo = new Map<string, string>();
  return (path) => {
    let h = memo.get(path);
    if (h === undefined) memo.set(path, (h = hashFile(path)));
    return h;
  };
}

function hashFile(path: string): string {
  return sha256(readFileSync(path));
}

/** Every file under `dir` but tests and dotfiles, recursively; nothing when it does not exist. */
function walk(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      if (e.name.startsWith('.') || TEST.test(e.name)) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile()) out.push(p);
    }
  };
  visit(dir);
  return out;
}

/** `p` is `dir` or inside it. */
function within(dir: string, p: string): boolean {
  return resolve(p) === resolve(dir) || inside(dir, p);
}

function inside(dir: string, p: string): boolean {
  const r = relative(dir, p);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
}

/** Which root `p` is in (the compiled mirror first: it may sit inside the rules folder), and where. */
function inRoots(root: RulesRoot, p: string): Pick<CodeFile, 'root' | 'path'> | undefined {
  if (root.compiled && inside(root.compiled, p)) return { root: 'compiled', path: relative(root.compiled, p).split(sep).join('/') };
  if (inside(root.dir, p)) return { root: 'source', path: relative(root.dir, p).split(sep).join('/') };
  return undefined;
}

export type ModuleReference =
  | { kind: 'import' | 'read'; path: string }
  /** A path built at run time: `prefixDir` is the folder its literal start names, if any. */
  | { kind: 'computed'; text: string; prefixDir?: string };

const STATIC_FROM = /^[ \t]*(?:import|export)\b[^'"`;]*?\bfrom\s*(['"])([^'"\n]+)\1/gm;
const BARE_IMPORT = /^[ \t]*import\s*(['"])([^'"\n]+)\1/gm;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*(?:(['"`])((?:(?!\1)[^\n\\])*)\1\s*\))?/g;
const URL_READ = /\bnew\s+URL\s*\(\s*(['"`])((?:(?!\1)[^\n\\])*)\1\s*,\s*import\.meta\.url\s*\)/g;
const IMPORT_META = /\bimport\.meta\b/g;

/**
 * What a compiled JavaScript module imports and reads, from its text (tsc's output keeps each
 * import on its own statement and every `new URL(…, import.meta.url)` as written). Bare
 * specifiers (`node:fs`, `ajv`) are left out: they are not rule code.
 */
export function moduleReferences(file: string, text: string): ModuleReference[] {
  const here = dirname(file);
  const refs: ModuleReference[] = [];
  const relativeRef = (kind: 'import' | 'read', spec: string, quote: string, whole: string): void => {
    if (quote === '`' && spec.includes('${')) {
      const prefix = spec.slice(0, spec.indexOf('${'));
      const prefixDir = prefix.includes('/') ? resolve(here, prefix.slice(0, prefix.lastIndexOf('/') + 1)) : kind === 'read' ? here : undefined;
      refs.push({ kind: 'computed', text: whole, ...(prefixDir !== undefined ? { prefixDir } : {}) });
      return;
    }
    if (spec.startsWith('file:')) refs.push({ kind, path: fileURLToPath(spec) });
    else if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || (kind === 'read' && !/^[a-z][a-z0-9+.-]*:/i.test(spec))) {
      refs.push({ kind, path: resolve(here, spec) });
    }
  };
  for (const m of text.matchAll(STATIC_FROM)) relativeRef('import', m[2]!, m[1]!, m[0]);
  for (const m of text.matchAll(BARE_IMPORT)) relativeRef('import', m[2]!, m[1]!, m[0]);
  for (const m of text.matchAll(DYNAMIC_IMPORT)) {
    if (m[2] === undefined) refs.push({ kind: 'computed', text: 'import(…)' });
    else relativeRef('import', m[2], m[1]!, m[0]);
  }
  let urls = 0;
  for (const m of text.matchAll(URL_READ)) {
    urls++;
    relativeRef('read', m[2]!, m[1]!, m[0]);
  }
  if ([...text.matchAll(IMPORT_META)].length > urls) refs.push({ kind: 'computed', text: 'import.meta outside new URL(…, import.meta.url)' });
  return refs;
}

const SOURCE = /(?:^|[;&|]|\bthen\b|\bdo\b|\belse\b)[ \t]*(?:\.|source)[ \t]+(['"]?)([^\s'";&|)]+)\1/gm;

/** The file names (last path component) a shell file sources with `.` or `source`. */
export function sourcedNames(text: string): string[] {
  return [...text.matchAll(SOURCE)].map((m) => basename(m[2]!));
}
