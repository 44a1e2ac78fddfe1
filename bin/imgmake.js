#!/usr/bin/env node
// The CLI, as one script bundled by `npm run build` (scripts/bundle.ts), compiled here with the
// bytecode V8 made for it on an earlier run: Node 20 caches no compiled code of its own, and
// compiling the CLI was a third of a no-op build's whole process (docs/bench.md, "Start-up").
//
// CommonJS (bin/package.json): an ES module entry costs Node's module loader at every start.
//
//     dist/bundle/cli.cjs            the bundle
//     dist/bundle/cli.cjs.v8cache    V8's code cache of it, after a first byte that says which
//                                    build wrote it (N: one that ran no stage, S: one that ran
//                                    stages): written after the first build that ran without
//                                    one (or whose cache V8 refused: another Node, other V8
//                                    flags), and again after a no-op when a build that ran
//                                    stages wrote it (a build of minutes has let V8 drop the
//                                    bytecode of what it ran first: what a no-op runs);
//                                    removed with the bundle by `npm run build`
//
// A cache that cannot be read or written (a read-only install) only costs the compile.
'use strict';
// When this file began, and what became of the code cache: the build's `timing` event reports
// them (src/cli.ts: the phases `node` and `start`, and `codeCache`).
const boot = { entered: performance.now(), codeCache: 'absent' };
const { readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const vm = require('node:vm');

const dir = join(__dirname, '..', 'dist', 'bundle');
const file = join(dir, 'cli.cjs');
const cacheFile = `${file}.v8cache`;

let source;
try {
  // esbuild writes ASCII (non-ASCII characters escaped): latin1 reads it exactly, and fastest.
  source = readFileSync(file, 'latin1');
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
  process.stderr.write(`imgmake: ${file} is missing: run npm run build (it compiles and bundles the CLI)\n`);
  process.exit(1);
}
let cachedData;
let writtenBy;
try {
  const saved = readFileSync(cacheFile);
  writtenBy = String.fromCharCode(saved[0]);
  cachedData = saved.subarray(1);
} catch {
  cachedData = undefined;
}
// The wrapper Node gives a CommonJS module, and an importer: on Node 20, an `import()` compiled
// from a code cache has no module loader (`importModuleDynamically` does not survive the cache),
// so the bundle has no `import()` of its own and imports a rule's code through this file's
// (src/import-outside.ts).
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __imgmakeImport) {${source}\n})`, {
  filename: file,
  cachedData,
});
if (cachedData !== undefined) boot.codeCache = script.cachedDataRejected ? 'rejected' : 'accepted';
globalThis[Symbol.for('imgmake.boot')] = boot;
const cli = { exports: {} };
script.runInThisContext().call(cli.exports, cli.exports, createRequire(file), cli, file, dir, (url) => import(url));

cli.exports.main(process.argv).then((code) => {
  process.exitCode = code;
  const built = cli.exports.ranBuild();
  if (built === 'none') return;
  if (cachedData === undefined || script.cachedDataRejected || (built === 'no-op' && writtenBy !== 'N')) saveCache(built === 'no-op' ? 'N' : 'S');
});

/** V8's code cache after a build: the functions a build runs are compiled, so they are in it. */
function saveCache(tag) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([Buffer.from(tag), script.createCachedData()]));
    renameSync(tmp, cacheFile);
  } catch {
    rmSync(tmp, { force: true });
  }
}
