/**
 * A no-op build's process runs only what a no-op uses (issue 18: a no-op within 0.3 s,
 * docs/bench.md "Start-up"). bin/imgmake.js runs the CLI's bundle, one script
 * (scripts/bundle.ts) in which each module an `import()` reaches is an init function named by its
 * path, run when it is first imported. What was made lazy stays lazy: no rule's implementation,
 * no process-starting library (execa), no cacache (the store's lookups read its index
 * directly), no file watcher, no --patch, remote, catalog or blueprint code, no other command's
 * modules. Checked without timing anything (a loaded machine cannot fail this test, a module
 * imported eagerly again can):
 * - in the bundle (its metafile, dist/bundle/meta.json, and its text): every module a no-op must
 *   not run is behind an init function, and a package left out of the bundle is imported only by
 *   such modules;
 * - in a real no-op's process: which init functions ran (V8's coverage, NODE_V8_COVERAGE), and
 *   which files it loaded beside the bundle (a preload, helpers/module-log.ts): Node's modules
 *   only, no package from node_modules, nothing of dist/src/ or of a rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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
  inputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>;
  outputs: Record<string, { inputs: Record<string, unknown>; entryPoint?: string }>;
}

const BUNDLE = 'dist/bundle/cli.cjs';

async function meta(): Promise<Meta> {
  return JSON.parse(await readFile(join(repoRoot, 'dist', 'bundle', 'meta.json'), 'utf8')) as Meta;
}

/** Each of `sources` (package paths, 'dist/src/…') that NOT_LOADED names, with why it can wait. */
function lazyOnes(sources: Iterable<string>): string[] {
  return NOT_LOADED.flatMap(([re, what]) => [...sources].filter((s) => re.test(`/${s}`)).map((s) => `${s}: ${what}`));
}

/** The build's events, the files its process loaded (paths in the package, '/dist/…', or file: URLs outside it), and the bundle's modules it ran. */
async function recorded(args: string[]): Promise<{ r: CliResult; loaded: string[]; ran: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-modules-'));
  try {
    const log = join(dir, 'modules');
    const coverage = join(dir, 'coverage');
    const preload = pathToFileURL(join(repoRoot, 'dist', 'test', 'helpers', 'module-log.js')).href;
    const r = await imgmake(args, { env: { NODE_OPTIONS: `--import=${preload}`, IMGMAKE_TEST_MODULE_LOG: log, NODE_V8_COVERAGE: coverage } });
    const urls = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('file:'));
    const loaded = [...new Set(urls.map((u) => fileURLToPath(u)).map((f) => (f.startsWith(`${repoRoot}/`) ? f.slice(repoRoot.length) : f)))];
    return { r, loaded, ran: await modulesRun(coverage) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The bundle's modules whose init function ran, from V8's coverage of the process: esbuild names
 * each lazily run module's init function by its path ("dist/src/patch/index.js").
 */
async function modulesRun(coverage: string): Promise<string[]> {
  const ran = new Set<string>();
  for (const f of await readdir(coverage)) {
    const c = JSON.parse(await readFile(join(coverage, f), 'utf8')) as { result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[] };
    for (const script of c.result.filter((s) => s.url.endsWith(`/${BUNDLE}`))) {
      for (const fn of script.functions) if (/^(dist|node_modules)\//.test(fn.functionName) && (fn.ranges[0]?.count ?? 0) > 0) ran.add(fn.functionName);
    }
  }
  return [...ran];
}

test('in the bundle, what a no-op does not use is behind an init function, and the packages left out are imported only there', async () => {
  const m = await meta();
  const outputs = Object.keys(m.outputs).filter((o) => o.endsWith('.cjs'));
  assert.deepEqual(outputs, [BUNDLE], 'one script');
  assert.equal(m.outputs[BUNDLE]!.entryPoint, 'dist/src/cli.js');
  const sources = Object.keys(m.outputs[BUNDLE]!.inputs);
  const text = await readFile(join(repoRoot, BUNDLE), 'utf8');
  // Each lazy source bundled is a function esbuild runs on its first import, not top-level code.
  const lazy = sources.filter((s) => lazyOnes([s]).length > 0);
  for (const src of ['dist/src/cli/watch.js', 'dist/src/patch/index.js', 'dist/src/remote/index.js', 'dist/src/catalog/compose.js']) assert.ok(lazy.includes(src), `${src} is bundled`);
  assert.deepEqual(
    lazy.filter((s) => !text.includes(`${JSON.stringify(s)}() {`)),
    [],
    'lazy sources whose code runs when the bundle is loaded (imported statically by the CLI, not by an import())',
  );
  // A package outside the bundle (execa, chokidar) is imported statically only by a lazy
  // module; cacache and ajv are required where they are used (createRequire), not imported.
  const importers = Object.entries(m.inputs)
    // (`./**/*/index.js` is esbuild's record of formats.ts's template-literal import, bundled.)
    .filter(([, i]) => i.imports.some((x) => x.external && !x.path.startsWith('node:') && !builtinModules.includes(x.path) && !x.path.includes('*')))
    .map(([s]) => s);
  assert.ok(importers.length > 0, 'execa is imported by --patch and boot');
  assert.deepEqual(importers.filter((s) => lazyOnes([s]).length === 0), [], 'modules run by every command that import a package from outside the bundle');
  // No rule's own files: a rule is loaded from them (its code digest is their text).
  assert.deepEqual(sources.filter((s) => s.startsWith('dist/rules/') && !s.startsWith('dist/rules/_lib/')), []);
});

test('a no-op build runs no rule implementation, no execa, no cacache, no ajv, nothing of watch, --patch, the remote or the catalog', { timeout: 180_000 }, async (t) => {
  const p = await projectWith(DEF);
  t.after(p.cleanup);
  // The cold build runs both stages: it loads what the no-op must not (the check can see them).
  const cold = await recorded(['--json', '-f', p.file, 'build', 'root']);
  assert.equal(cold.r.code, 0, cold.r.stderr);
  assert.equal(summary(cold.r)['ran'], 2);
  assert.ok(cold.loaded.includes('/bin/imgmake.js'), 'the preload records CommonJS modules');
  for (const seen of [/^\/dist\/rules\/files\.mkdir\/index\.js$/, /^\/node_modules\/ajv\//]) {
    assert.ok(cold.loaded.some((f) => seen.test(f)), `a build that runs stages loads ${seen} (ES modules and CommonJS are recorded)`);
  }
  // Nor does a build that runs stages need cacache (its commits, logs and histories are written
  // in cacache's format by store/entries.ts) or execa (stages and the digest worker's helpers
  // start with node:child_process); the preload records the digest worker's modules too.
  for (const never of [/^\/node_modules\/cacache\//, /^\/node_modules\/execa\//]) {
    assert.deepEqual(cold.loaded.filter((f) => never.test(f)), [], `a build that runs stages loads no ${never}`);
  }
  assert.ok(cold.ran.includes('dist/src/store/digest.js'), `coverage sees the modules run: ${cold.ran.join(' ')}`);
  // What a command that is lazy runs is seen too: `imgmake rules` runs cli/rules.js.
  const rules = await recorded(['rules']);
  assert.equal(rules.r.code, 0, rules.r.stderr);
  assert.ok(rules.ran.includes('dist/src/cli/rules.js'), `the detection sees a lazy module run: ${rules.ran.join(' ')}`);

  const noop = await recorded(['--json', '-f', p.file, 'build', 'root', '--locked']);
  assert.equal(noop.r.code, 0, noop.r.stderr);
  assert.equal(summary(noop.r)['ran'], 0);
  assert.equal(summary(noop.r)['cached'], 2);
  assert.deepEqual(lazyOnes(noop.ran), [], 'modules a no-op build ran that it does not use');
  // Beside the bundle (read by bin/imgmake.js, not loaded as a module): no package, no dist/src/, no rule.
  assert.deepEqual(noop.loaded.filter((f) => f !== '/bin/imgmake.js'), [], 'files a no-op loaded as modules');
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

test("V8's code cache: written by a build that ran stages (S), replaced by the first no-op (N), then kept; one V8 refuses is written again", { timeout: 180_000 }, async (t) => {
  const p = await projectWith(DEF);
  t.after(p.cleanup);
  // A copy of the package with a dist/bundle/ of its own (the checkout's is shared by every test's builds).
  const pkg = join(p.dir, 'pkg');
  await mkdir(join(pkg, 'bin'), { recursive: true });
  await mkdir(join(pkg, 'dist', 'bundle'), { recursive: true });
  for (const f of ['imgmake.js', 'package.json']) await copyFile(join(repoRoot, 'bin', f), join(pkg, 'bin', f));
  await copyFile(join(repoRoot, 'dist', 'bundle', 'cli.cjs'), join(pkg, 'dist', 'bundle', 'cli.cjs'));
  for (const l of ['package.json', 'node_modules', 'rules', 'catalog']) await symlink(join(repoRoot, l), join(pkg, l));
  for (const l of ['src', 'rules']) await symlink(join(repoRoot, 'dist', l), join(pkg, 'dist', l));
  const saved = join(pkg, 'dist', 'bundle', 'cli.cjs.v8cache');
  const run = async (args: string[]): Promise<Record<string, unknown>> => {
    const r = await promisify(execFile)(process.execPath, [join(pkg, 'bin', 'imgmake.js'), ...args], { env: { ...process.env, CI: 'true' } });
    const line = r.stdout.split('\n').find((l) => l.includes('"type":"summary"'));
    return line ? (JSON.parse(line) as Record<string, unknown>) : {};
  };
  const cache = async (): Promise<Buffer | undefined> => readFile(saved).catch(() => undefined);

  await run(['--version']);
  assert.equal(await cache(), undefined, 'a command that built nothing writes no cache');
  assert.equal((await run(['--json', '-f', p.file, 'build', 'root']))['ran'], 2);
  const cold = await cache();
  assert.equal(cold?.subarray(0, 1).toString(), 'S', 'the cold build wrote it, marked as a build that ran stages');
  assert.ok(cold!.length > 10_000, `${cold!.length} bytes`);
  assert.equal((await run(['--json', '-f', p.file, 'build', 'root', '--locked']))['ran'], 0);
  const noop = await cache();
  assert.equal(noop?.subarray(0, 1).toString(), 'N', 'the first no-op wrote it again');
  assert.equal((await run(['--json', '-f', p.file, 'build', 'root', '--locked']))['ran'], 0);
  assert.ok(noop!.equals((await cache())!), "a no-op on a no-op's cache, accepted, leaves it");
  // Bytes V8 refuses (another Node's, a torn file): the build runs, compiled, and writes it anew.
  await writeFile(saved, Buffer.concat([Buffer.from('N'), Buffer.alloc(4096, 7)]));
  assert.equal((await run(['--json', '-f', p.file, 'build', 'root', '--locked']))['ran'], 0);
  const again = await cache();
  assert.equal(again?.subarray(0, 1).toString(), 'N');
  assert.ok(!again!.subarray(1).equals(Buffer.alloc(4096, 7)) && again!.length > 10_000, 'a refused cache is replaced');
});
