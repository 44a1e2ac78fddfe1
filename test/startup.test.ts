/**
 * A no-op build's process loads only what a no-op uses (issue 18: a no-op within 0.3 s,
 * docs/bench.md "Start-up"). bin/imgmake.js runs the CLI's bundle (scripts/bundle.ts): its
 * eager part, the entry and the chunks it imports statically, is what every command pays for;
 * what is lazy today (an `import()` in src/) is a chunk of its own. What was made lazy stays
 * lazy: no rule's implementation, no process-starting library (execa), no cacache (the store's
 * lookups read its index directly), no file watcher, no --patch, remote, catalog or blueprint
 * code, no other command's modules. Checked twice, neither by timing (a loaded machine cannot
 * fail this test, a module imported eagerly again can):
 * - in the bundle's metafile (dist/bundle/meta.json): which sources the eager part holds;
 * - in a real no-op's process, whose loaded files a preload records (helpers/module-log.ts):
 *   which chunks it loaded and the sources they hold, and that it loaded nothing beside the
 *   bundle but Node's modules and rules/_lib's helpers (no package from node_modules, nothing
 *   of dist/src/), so an eager import of a package the bundle leaves out fails here too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { imgmake, projectWith, repoRoot, summary, type CliResult } from './helpers/cli.js';

const DEF = `version: 1
pipelines:
  root:
    stages:
      - name: dirs
        rule: files.mkdir
        options: { paths: [{ path: /etc }] }
      - name: motd
        rule: files.write
        options: { files: [{ path: /etc/motd, content: "hello\\n" }] }
targets:
  root: { pipeline: root }
`;

/** What a no-op build must not load, each with why it can wait (matched to /-rooted paths in the package). */
const NOT_LOADED: [RegExp, string][] = [
  [/^\/dist\/rules\/[^/_][^/]*\/index\.js$/, "a rule's implementation (imported when its stage runs)"],
  [/^\/node_modules\/execa\//, 'execa (the first process started imports it)'],
  [/^\/node_modules\/cacache\//, "cacache (the store's lookups read its index; writes require it)"],
  [/^\/node_modules\/ajv\//, "ajv (options validated by the cold build are in the cache's memo, load/validated.ts)"],
  [/^\/node_modules\/chokidar\//, "chokidar (imgmake watch's)"],
  [/^\/dist\/src\/patch\//, '--patch'],
  [/^\/dist\/src\/remote\/(index|http|blob)\.js$/, 'the remote cache (none configured)'],
  [/^\/dist\/src\/(catalog\/(compose|customize)|blueprint\/)/, 'the catalog and blueprints (a catalog build)'],
  [/^\/dist\/src\/catalog\/ostree-remote\.js$/, 'fetching an --ostree-parent'],
  [/^\/dist\/src\/(sbom\/|manifest\/index\.js$)/, 'the SBOM and the manifest (--with-sbom, --with-manifest, or an old one removed)'],
  [/^\/dist\/src\/(cli\/(watch|boot|checkpoint|clean|push|rules)|watch|boot|push)\.js$/, "another command's modules"],
];

interface Meta {
  inputs: Record<string, unknown>;
  outputs: Record<string, { inputs: Record<string, unknown>; imports: { path: string; kind: string; external?: boolean }[]; entryPoint?: string }>;
}

const ENTRY = 'dist/bundle/cli.js';

async function meta(): Promise<Meta> {
  return JSON.parse(await readFile(join(repoRoot, 'dist', 'bundle', 'meta.json'), 'utf8')) as Meta;
}

/** The bundle's eager part: the entry and every chunk it imports statically, transitively. */
function eagerOutputs(m: Meta): Set<string> {
  const seen = new Set<string>();
  const stack = [ENTRY];
  while (stack.length) {
    const o = stack.pop()!;
    if (seen.has(o)) continue;
    seen.add(o);
    for (const i of m.outputs[o]?.imports ?? []) if (i.kind === 'import-statement' && !i.external) stack.push(i.path);
  }
  return seen;
}

/** Each source of `outputs` that NOT_LOADED names, with why it can wait. */
function eagerOnes(m: Meta, outputs: Iterable<string>): string[] {
  const sources = [...outputs].flatMap((o) => Object.keys(m.outputs[o]?.inputs ?? {}));
  return NOT_LOADED.flatMap(([re, what]) => sources.filter((s) => re.test(`/${s}`)).map((s) => `${s}: ${what}`));
}

/** The build's events and the files its process loaded, as paths in the package ('/dist/…'), or file: URLs outside it. */
async function recorded(args: string[]): Promise<{ r: CliResult; loaded: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-modules-'));
  try {
    const log = join(dir, 'modules');
    const preload = pathToFileURL(join(repoRoot, 'dist', 'test', 'helpers', 'module-log.js')).href;
    const r = await imgmake(args, { env: { NODE_OPTIONS: `--import=${preload}`, IMGMAKE_TEST_MODULE_LOG: log } });
    const urls = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('file:'));
    const loaded = [...new Set(urls.map((u) => fileURLToPath(u)).map((f) => (f.startsWith(`${repoRoot}/`) ? f.slice(repoRoot.length) : f)))];
    return { r, loaded };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("the bundle's eager part holds no rule implementation, no execa, no cacache, no ajv, nothing of watch, --patch, the remote or the catalog", async () => {
  const m = await meta();
  const eager = eagerOutputs(m);
  assert.ok(Object.keys(m.outputs[ENTRY]?.inputs ?? {}).includes('dist/src/cli.js'), 'the entry is the CLI');
  assert.deepEqual(eagerOnes(m, eager), [], 'sources in the eager part a no-op does not use');
  // What the eager part imports from outside the bundle: Node's modules and rules/_lib's
  // helpers, never a package (one left out of the bundle must be imported where it is used).
  const outside = [...eager].flatMap((o) => m.outputs[o]!.imports).filter((i) => i.kind === 'import-statement' && i.external).map((i) => i.path);
  assert.deepEqual(outside.filter((p) => !p.startsWith('node:') && !builtinModules.includes(p) && !/^\.\.\/rules\/_lib\/[a-z-]+\.js$/.test(p)), []);
  // The lazy parts are chunks of their own, in the bundle but not in its eager part.
  const all = Object.keys(m.outputs).filter((o) => o.endsWith('.js'));
  for (const src of ['dist/src/cli/watch.js', 'dist/src/patch/index.js', 'dist/src/remote/index.js', 'dist/src/catalog/compose.js']) {
    const holder = all.find((o) => src in m.outputs[o]!.inputs);
    assert.ok(holder && !eager.has(holder), `${src} is bundled in a lazy chunk (${holder ?? 'none'})`);
  }
});

test('a no-op build loads no rule implementation, no execa, no cacache, no ajv, nothing of watch, --patch, the remote or the catalog', { timeout: 180_000 }, async (t) => {
  const p = await projectWith(DEF);
  t.after(p.cleanup);
  const m = await meta();
  // The cold build runs both stages: it loads what the no-op must not (the check can see them).
  const cold = await recorded(['--json', '-f', p.file, 'build', 'root']);
  assert.equal(cold.r.code, 0, cold.r.stderr);
  assert.equal(summary(cold.r)['ran'], 2);
  assert.ok(cold.loaded.includes(`/${ENTRY}`), 'the preload records ES modules');
  assert.ok(cold.loaded.some((f) => f.startsWith('/node_modules/ajv/')), 'and CommonJS ones (ajv: the cold build validates options)');
  for (const seen of [/^\/dist\/rules\/files\.mkdir\/index\.js$/, /^\/node_modules\/ajv\//]) {
    assert.ok(cold.loaded.some((f) => seen.test(f)), `a build that runs stages loads ${seen}`);
  }
  // Nor does a build that runs stages need cacache (its commits, logs and histories are written
  // in cacache's format by store/entries.ts) or execa (stages and the digest worker's helpers
  // start with node:child_process); the preload records the digest worker's modules too.
  for (const never of [/^\/node_modules\/cacache\//, /^\/node_modules\/execa\//]) {
    assert.deepEqual(cold.loaded.filter((f) => never.test(f)), [], `a build that runs stages loads no ${never}`);
  }

  const noop = await recorded(['--json', '-f', p.file, 'build', 'root', '--locked']);
  assert.equal(noop.r.code, 0, noop.r.stderr);
  assert.equal(summary(noop.r)['ran'], 0);
  assert.equal(summary(noop.r)['cached'], 2);
  const chunks = noop.loaded.filter((f) => f.startsWith('/dist/bundle/')).map((f) => f.slice(1));
  assert.deepEqual(eagerOnes(m, chunks), [], 'modules a no-op build loaded that it does not use');
  // Beside the bundle, only the helpers of rules/_lib the engine shares with the rules (their
  // text is part of the rules' code digests, so they are not bundled): no package, no dist/src/.
  const beside = noop.loaded.filter((f) => !f.startsWith('/dist/bundle/') && f !== '/bin/imgmake.js');
  assert.deepEqual(beside.filter((f) => !/^\/dist\/rules\/_lib\/[a-z-]+\.js$/.test(f)), [], 'files a no-op loaded from outside the bundle');
  // Not a timing assertion, a generous bound on how many files are loaded: 537 records before
  // issue 18's lazy loading, 194 after it, ~30 from the bundle.
  assert.ok(noop.loaded.length < 60, `${noop.loaded.length} files loaded`);
});

test("the memo of validated options: the same keys with it or without it; options it never saw are validated", { timeout: 180_000 }, async (t) => {
  const p = await projectWith(DEF);
  t.after(p.cleanup);
  const memo = join(p.dir, 'cache', 'options.json');
  const cold = await imgmake(['--json', '-f', p.file, 'build', 'root']);
  assert.equal(cold.code, 0, cold.stderr);
  const entries = Object.values((JSON.parse(await readFile(memo, 'utf8')) as { entries: Record<string, Record<string, unknown>> }).entries);
  // files.write's entry holds the default ajv filled in (mode 0644), not only what was written.
  assert.ok(entries.some((e) => JSON.stringify(e).includes('"mode":"0644"')), JSON.stringify(entries));
  const memoed = await imgmake(['--json', '-f', p.file, 'build', 'root', '--locked']);
  assert.equal(memoed.code, 0, memoed.stderr);
  assert.equal(summary(memoed)['ran'], 0, "the memo's options (defaults included) give the keys ajv's gave");
  await rm(memo);
  const without = await imgmake(['--json', '-f', p.file, 'build', 'root', '--locked']);
  assert.equal(without.code, 0, without.stderr);
  assert.equal(summary(without)['ran'], 0, 'and without the memo, ajv validating again, the same keys');
  // A memo entry is data looked up by what was written: options it never saw go to ajv.
  await writeFile(p.file, DEF.replace('content: "hello\\n"', 'content: 5'));
  const bad = await imgmake(['--json', '-f', p.file, 'build', 'root', '--locked']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /imgmake\.yaml:\d+:\d+/);
});
