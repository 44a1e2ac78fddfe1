/**
 * The package layer's boundaries (docs/packages.md, "Layering"): the grep command the doc states,
 * run exactly as written, hits only the format folders; and neither the compiled import graph
 * of dist/src nor the source graph of src (type imports included) has a cycle through
 * src/packages/, a core module importing more of it than input.ts, or a package module
 * importing the CLI. The graphs are walked here (no dependency): `import … from`,
 * `export … from`, bare `import '…'` and literal `import('…')`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from './helpers/cli.js';

const FORMAT_DIRS = ['src/packages/apt/', 'src/packages/rpm/'];

test('the grep command of docs/packages.md hits only the format folders', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'packages.md'), 'utf8');
  const commands = doc.split('\n').filter((l) => l.startsWith('grep -rEnw '));
  assert.equal(commands.length, 1, 'the doc states one grep command');
  let out = '';
  try {
    out = execFileSync('/bin/sh', ['-c', commands[0]!], { cwd: repoRoot, encoding: 'utf8' });
  } catch (e) {
    const err = e as { status?: number; stdout?: string };
    assert.equal(err.status, 1, `grep failed: ${String(e)}`); // 1: no line matched anywhere
    out = err.stdout ?? '';
  }
  const lines = out.split('\n').filter(Boolean);
  const outside = lines.filter((l) => !FORMAT_DIRS.some((d) => l.startsWith(d)));
  assert.deepEqual(outside, [], 'no file outside the format folders names a package manager');
  assert.ok(lines.length > 0, 'the command does find the apt folder (a command that finds nothing proves nothing)');
});

/**
 * Module → the modules it imports, as `src/…/x.ts` names. `compiled`: the JavaScript of dist/src
 * (what runs; type-only imports are erased), for every module whose source exists (a moved
 * module's stale output is not part of the program). `source`: the TypeScript of src, type
 * imports included (what a reader follows; the 14-file cycle was one of these).
 */
function importGraph(kind: 'compiled' | 'source'): Map<string, string[]> {
  const src = join(repoRoot, 'src');
  const top = kind === 'compiled' ? join(repoRoot, 'dist', 'src') : src;
  const ext = kind === 'compiled' ? '.js' : '.ts';
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(ext) && !e.name.endsWith('.d.ts') && existsSync(join(src, relative(top, p)).replace(/\.js$/, '.ts'))) files.push(p);
    }
  };
  walk(top);
  const re = /(?:^|[;\n}])\s*(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|(?:^|[;\n])\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  const name = (p: string) => 'src/' + relative(top, p).replace(/\.js$/, '.ts');
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(re)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (!spec.startsWith('.')) continue; // node: and packages
      const target = resolve(dirname(f), kind === 'source' ? spec.replace(/\.js$/, '.ts') : spec);
      if (files.includes(target)) deps.add(name(target));
    }
    graph.set(name(f), [...deps]);
  }
  return graph;
}

/** Tarjan's strongly connected components. */
function components(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      out.push(c);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

for (const kind of ['compiled', 'source'] as const) {
  test(`the ${kind} import graph: no cycle through src/packages/, no core module importing a format, no package module importing the CLI`, () => {
    const graph = importGraph(kind);
    assert.ok(graph.has('src/packages/attach.ts') && graph.has('src/packages/apt/index.ts'), `${kind === 'compiled' ? 'dist/src is built' : 'src is there'}`);
    assert.ok([...graph.values()].reduce((n, d) => n + d.length, 0) > 100, 'the walk finds the imports');
    const inPackages = (m: string) => m.startsWith('src/packages/');
    const cycles = components(graph).filter((c) => c.length > 1 || (graph.get(c[0]!) ?? []).includes(c[0]!));
    const through = cycles.filter((c) => c.some(inPackages));
    assert.deepEqual(through.map((c) => c.sort()), [], 'import cycles through src/packages/');

    const isFormat = (m: string) => /^src\/packages\/[^/]+\//.test(m) || m === 'src/packages/formats.ts';
    const composition = (m: string) => m === 'src/cli.ts' || m.startsWith('src/cli/') || m === 'src/engine/defaults.ts';
    // The engine drives the package layer (locks, fetches) through its interface, never a format.
    const driver = (m: string) => m.startsWith('src/engine/');
    const LAYER_API = new Set(['src/packages/index.ts', 'src/packages/lockfile.ts', 'src/packages/format.ts']);
    const bad: string[] = [];
    for (const [from, deps] of graph) {
      for (const to of deps) {
        if (!inPackages(from) && !composition(from) && isFormat(to)) bad.push(`${from} → ${to} (the core takes formats as an argument)`);
        if (!inPackages(from) && !composition(from) && inPackages(to) && to !== 'src/packages/input.ts' && !(driver(from) && LAYER_API.has(to))) bad.push(`${from} → ${to} (the core sees only src/packages/input.ts)`);
        if (inPackages(from) && composition(to)) bad.push(`${from} → ${to} (a package module must not import the CLI)`);
        if (inPackages(from) && !isFormat(from) && /^src\/packages\/[^/]+\//.test(to)) bad.push(`${from} → ${to} (the package core must not import a format)`);
      }
    }
    assert.deepEqual(bad, []);
  });
}

test('the graph walk sees a cycle when there is one (the check can fail)', () => {
  const g = new Map([
    ['src/a.ts', ['src/packages/b.ts']],
    ['src/packages/b.ts', ['src/a.ts']],
    ['src/c.ts', []],
  ]);
  const cycles = components(g).filter((c) => c.length > 1);
  assert.deepEqual(cycles.map((c) => c.sort()), [['src/a.ts', 'src/packages/b.ts']]);
});

/** Every .ts file under src/, as repo-relative paths. */
function sources(dir = join(repoRoot, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(repoRoot, join(dir, e.name))] : []));
}

test('one store seam: only src/store/ calls cacache, and only store/entries.ts spells an index key', () => {
  const files = sources();
  assert.ok(files.includes('src/store/entries.ts'));
  // `from 'cacache'` (a type import included), or required by name: store/entries.ts loads it on first use.
  const importers = files.filter((f) => /from 'cacache'|\(\s*'cacache'\s*\)/.test(readFileSync(join(repoRoot, f), 'utf8')));
  assert.deepEqual(importers.filter((f) => !f.startsWith('src/store/') && f !== 'src/types/cacache.d.ts'), [], 'cacache is the store\'s');
  assert.ok(importers.includes('src/store/entries.ts'), 'the check sees the importers (one that finds nothing proves nothing)');
  const spelled = files.filter((f) => f !== 'src/store/entries.ts' && /`(tree|layer|log|history|squash|deb|remote-blob|remote-seen):\$\{/.test(readFileSync(join(repoRoot, f), 'utf8')));
  assert.deepEqual(spelled, [], 'index keys are made by store/entries.ts (ENTRY)');
});
