/**
 * The package layer's boundaries (docs/packages.md, "Layering"): the grep command the doc states,
 * run exactly as written, hits only the format folders; and the compiled import graph of
 * dist/src has no cycle through src/packages/, no core module importing a format, and no
 * package module importing the CLI. The graph is walked here (no dependency): static
 * `import … from`, `export … from`, bare `import '…'` and literal `import('…')`.
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

/** Module → the modules it imports, for every compiled module of dist/src whose source exists. */
function importGraph(): Map<string, string[]> {
  const dist = join(repoRoot, 'dist', 'src');
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      // A compiled file whose source is gone (a moved module) is stale, not part of the program.
      else if (e.name.endsWith('.js') && existsSync(join(repoRoot, 'src', relative(dist, p)).replace(/\.js$/, '.ts'))) files.push(p);
    }
  };
  walk(dist);
  const re = /(?:^|[;\n}])\s*(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|(?:^|[;\n])\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const deps = new Set<string>();
    for (const m of text.matchAll(re)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (!spec.startsWith('.')) continue; // node: and packages
      const target = resolve(dirname(f), spec);
      if (files.includes(target)) deps.add(target);
    }
    graph.set(f, [...deps]);
  }
  return new Map([...graph].map(([k, v]) => [rel(k), v.map(rel)]));
}

const rel = (p: string) => 'src/' + relative(join(repoRoot, 'dist', 'src'), p).replace(/\.js$/, '.ts');

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

test('the compiled import graph: no cycle through src/packages/, no core module importing a format, no package module importing the CLI', () => {
  const graph = importGraph();
  assert.ok(graph.has('src/packages/format.ts') && graph.has('src/packages/apt/index.ts'), 'dist/src is built');
  const inPackages = (m: string) => m.startsWith('src/packages/');
  const cycles = components(graph).filter((c) => c.length > 1 || (graph.get(c[0]!) ?? []).includes(c[0]!));
  const through = cycles.filter((c) => c.some(inPackages));
  assert.deepEqual(through.map((c) => c.sort()), [], 'import cycles through src/packages/');

  const isFormat = (m: string) => /^src\/packages\/[^/]+\//.test(m) || m === 'src/packages/formats.ts';
  const composition = (m: string) => m === 'src/cli.ts' || m.startsWith('src/cli/');
  const bad: string[] = [];
  for (const [from, deps] of graph) {
    for (const to of deps) {
      if (!inPackages(from) && !composition(from) && isFormat(to)) bad.push(`${from} → ${to} (the core takes formats as an argument)`);
      if (inPackages(from) && composition(to)) bad.push(`${from} → ${to} (a package module must not import the CLI)`);
      if (from.startsWith('src/packages/') && !isFormat(from) && /^src\/packages\/[^/]+\//.test(to)) bad.push(`${from} → ${to} (the package core must not import a format)`);
    }
  }
  assert.deepEqual(bad, []);
});

test('the graph walk sees a cycle when there is one (the check can fail)', () => {
  const g = new Map([
    ['src/a.ts', ['src/packages/b.ts']],
    ['src/packages/b.ts', ['src/a.ts']],
    ['src/c.ts', []],
  ]);
  const cycles = components(g).filter((c) => c.length > 1);
  assert.deepEqual(cycles.map((c) => c.sort()), [['src/a.ts', 'src/packages/b.ts']]);
});
