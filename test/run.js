#!/usr/bin/env node
// Runs every compiled test (dist/**/*.test.js) with node's test runner; `npm test` compiles
// first. Arguments filter by substring: `node test/run.js store sandbox`.
// A compiled test whose source (the .ts beside the same path outside dist/) is gone is left
// out with a note: tsc never deletes outputs, so a renamed or removed test would run on.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const found = [];
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) found.push(p);
  }
};
walk(dist);
// bin/imgmake.js runs the CLI's bundle (scripts/bundle.ts), made here again from dist/src/ so
// that no test runs a bundle older than what tsc just compiled (`npx tsc -p . && node
// test/run.js` as well as `npm test`). A tree without the script (test-runner.test.ts's) has no CLI.
const bundler = join(dist, 'scripts', 'bundle.js');
if (existsSync(bundler)) {
  const bundled = spawnSync(process.execPath, [bundler], { stdio: 'inherit' });
  if (bundled.status !== 0) {
    console.error('test/run.js: bundling the CLI (dist/scripts/bundle.js) failed');
    process.exit(1);
  }
}
const filters = process.argv.slice(2);
const source = (f) => join(root, relative(dist, f)).replace(/\.js$/, '.ts');
const files = found
  .filter((f) => filters.length === 0 || filters.some((x) => relative(dist, f).includes(x)))
  .filter((f) => {
    if (existsSync(source(f))) return true;
    console.log(`test/run.js: skipping ${relative(root, f)}: its source ${relative(root, source(f))} is gone (a stale build output: delete it, or delete dist/ and run npx tsc -p .)`);
    return false;
  })
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The heavy end-to-end tests keep their caches between runs of this machine (under /var/tmp,
// or where their variables say), so a second run reuses the Debian and Fedora package stages.
// Every change to a rule's code makes new keys, so those caches only grow: before the tests,
// each is collected to a bound with the tool's own `cache gc` (least recently used first) when
// the whole suite runs.
const kept = [
  [process.env['IMGMAKE_CATALOG_TEST_CACHE'] ?? '/var/tmp/imgmake-catalog-test', '12G'],
  [process.env['IMGMAKE_OSTREE_TEST_CACHE'] ?? '/var/tmp/imgmake-ostree-test', '10G'],
  [join(process.env['IMGMAKE_RPM_TEST_CACHE'] ?? '/var/tmp/imgmake-rpm-test', 'cache'), '6G'],
];
for (const [cache, size] of filters.length === 0 ? kept : []) {
  if (!existsSync(join(cache, 'trees')) && !existsSync(join(cache, 'layers'))) continue;
  const gc = spawnSync(process.execPath, [join(root, 'bin', 'imgmake.js'), 'cache', 'gc', '--max-size', size], {
    env: { ...process.env, IMGMAKE_CACHE: cache },
    encoding: 'utf8',
  });
  const last = `${gc.stdout}${gc.stderr}`.trim().split('\n').pop();
  console.log(`test/run.js: ${cache} kept within ${size}: ${last}`);
}

const r = spawnSync(process.execPath, [
  '--test',
  '--test-concurrency=2',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  `--test-reporter=${join(root, 'test', 'file-times.js')}`,
  '--test-reporter-destination=stdout',
  ...files,
], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
