/**
 * A no-op build's whole process loads only what a no-op uses (issue 18: a no-op within 0.3 s,
 * docs/bench.md "Start-up"). What was made lazy stays lazy: no rule's implementation, no
 * process-starting library (execa), no cacache (the store's lookups read its index directly),
 * no file watcher, no --patch, remote, catalog or blueprint code, no other command's modules.
 * The modules are recorded by a preload (helpers/module-log.ts), not timed: a loaded machine
 * cannot fail this test, a module imported eagerly again can.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

/** What a no-op build must not load, each with why it can wait. */
const NOT_LOADED: [RegExp, string][] = [
  [/\/dist\/rules\/[^/_][^/]*\/index\.js$/, "a rule's implementation (imported when its stage runs)"],
  [/\/node_modules\/execa\//, 'execa (the first process started imports it)'],
  [/\/node_modules\/cacache\//, "cacache (the store's lookups read its index; writes require it)"],
  [/\/node_modules\/ajv\//, "ajv (options validated by the cold build are in the cache's memo, load/validated.ts)"],
  [/\/node_modules\/chokidar\//, "chokidar (imgmake watch's)"],
  [/\/dist\/src\/patch\//, '--patch'],
  [/\/dist\/src\/remote\/(index|http|blob)\.js$/, 'the remote cache (none configured)'],
  [/\/dist\/src\/(catalog\/(compose|customize)|blueprint\/)/, 'the catalog and blueprints (a catalog build)'],
  [/\/dist\/src\/(cli\/(watch|boot|checkpoint|clean|push|rules)|watch|boot|push)\.js$/, "another command's modules"],
];

/** The build's events and the file: URLs its process loaded. */
async function recorded(args: string[]): Promise<{ r: CliResult; loaded: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-modules-'));
  try {
    const log = join(dir, 'modules');
    const preload = pathToFileURL(join(repoRoot, 'dist', 'test', 'helpers', 'module-log.js')).href;
    const r = await imgmake(args, { env: { NODE_OPTIONS: `--import=${preload}`, IMGMAKE_TEST_MODULE_LOG: log } });
    const loaded = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('file:'));
    return { r, loaded };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a no-op build loads no rule implementation, no execa, no cacache, no ajv, nothing of watch, --patch, the remote or the catalog', { timeout: 180_000 }, async (t) => {
  const p = await projectWith(DEF);
  t.after(p.cleanup);
  // The cold build runs both stages: it loads what the no-op must not (the check can see them).
  const cold = await recorded(['--json', '-f', p.file, 'build', 'root']);
  assert.equal(cold.r.code, 0, cold.r.stderr);
  assert.equal(summary(cold.r)['ran'], 2);
  assert.ok(cold.loaded.some((u) => u.endsWith('/dist/src/cli.js')), 'the preload records ES modules');
  assert.ok(cold.loaded.some((u) => u.includes('/node_modules/yaml/')), 'and CommonJS ones');
  for (const seen of [/\/dist\/rules\/files\.mkdir\/index\.js$/, /\/node_modules\/execa\//, /\/node_modules\/cacache\//]) {
    assert.ok(cold.loaded.some((u) => seen.test(u)), `a build that runs stages loads ${seen}`);
  }

  const noop = await recorded(['--json', '-f', p.file, 'build', 'root', '--locked']);
  assert.equal(noop.r.code, 0, noop.r.stderr);
  assert.equal(summary(noop.r)['ran'], 0);
  assert.equal(summary(noop.r)['cached'], 2);
  const eager = NOT_LOADED.flatMap(([re, what]) => noop.loaded.filter((u) => re.test(u)).map((u) => `${u.slice(u.indexOf(repoRoot) + repoRoot.length + 1)}: ${what}`));
  assert.deepEqual(eager, [], 'modules a no-op build loaded that it does not use');
  // Not a timing assertion, a generous bound on how much is loaded: 537 records before issue 18's
  // lazy loading, 194 after it (ES modules and require's cache, some counted in both).
  assert.ok(noop.loaded.length < 400, `${noop.loaded.length} modules loaded`);
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
