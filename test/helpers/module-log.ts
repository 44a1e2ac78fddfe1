/**
 * A preload (`node --import`) that records every module a process loads, for
 * test/startup.test.ts: ES modules through a loader hook (module-log-hooks.ts, which sees each
 * one as it is loaded, CommonJS packages imported from ESM included), and at exit every file in
 * require's cache (CommonJS required by CommonJS, or through createRequire, which no ESM hook
 * sees). One file: URL a line, appended to $IMGMAKE_TEST_MODULE_LOG; nothing without it.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const log = process.env['IMGMAKE_TEST_MODULE_LOG'];
if (log) {
  register('./module-log-hooks.js', import.meta.url, { data: { log } });
  process.on('exit', () => {
    const cjs = Object.keys(createRequire(import.meta.url).cache);
    appendFileSync(log, cjs.map((p) => `${pathToFileURL(p).href}\n`).join(''));
  });
}
