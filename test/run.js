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
