/**
 * Bundles the CLI's start path (issue 18: a no-op build's whole process within 0.3 s,
 * docs/bench.md "Start-up"). Node 20 has no compile cache for ES modules, and reading, parsing
 * and linking ~100 of our modules and ~90 CommonJS files of yaml, commander and graphology was
 * most of a no-op's start-up; one bundle of the same code loads in a fraction of that.
 *
 *     dist/src/cli.js (tsc's output)  →  dist/bundle/cli.js      what bin/imgmake.js imports
 *                                        dist/bundle/chunk-*.js  code both parts share
 *                                        dist/bundle/NAME-*.js   what is lazy (an `import()`
 *                                                                in src/): loaded on demand
 *                                        dist/bundle/meta.json   esbuild's metafile, read by
 *                                                                test/startup.test.ts
 *
 * Run after tsc (`npm run build`, `npm test`, `prepare`; test/run.js runs it too, so tests never
 * run a bundle older than dist/src/). It bundles the compiled JavaScript, so tsc stays the one
 * compiler and type checker. What it leaves out on purpose:
 * - rules/ (dist/rules/, _lib included): a rule is loaded from its own files, the files whose
 *   text is its code digest (src/rule-code.ts); the bundle imports them by relative path.
 * - packages a no-op does not use (execa, chokidar, cacache, ajv): imported or required from
 *   node_modules when first used, as before; only BUNDLED packages are copied in.
 * - dist/src/ itself: the tests import its modules, and the digest worker runs from it.
 * Code that finds a file of the package does it from src/package-root.ts, never from its own
 * `import.meta.url`, which is a chunk's once bundled.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'bundle');
const rules = join(root, 'dist', 'rules') + '/';

/** The packages a no-op build uses, bundled with what they require; every other one stays outside. */
const BUNDLED = new Set(['commander', 'yaml']);

const packageName = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

const boundaries: Plugin = {
  name: 'imgmake-boundaries',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (a) => {
      const path = resolve(a.resolveDir, a.path);
      // A rule's file: imported from where it is, relative to the chunk (all chunks sit in outdir).
      if (path.startsWith(rules)) return { path: relative(outdir, path), external: true };
      return undefined;
    });
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      if (a.path.startsWith('node:') || a.importer.includes('/node_modules/')) return undefined;
      return BUNDLED.has(packageName(a.path)) ? undefined : { path: a.path, external: true };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const r = await build({
  entryPoints: [join(root, 'dist', 'src', 'cli.js')],
  outdir,
  // The metafile's paths are relative to this folder (dist/src/cli.js, node_modules/yaml/…).
  absWorkingDir: root,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  metafile: true,
  // Beside each file, through tsc's own maps to src/*.ts: read only by `node --enable-source-maps`.
  sourcemap: true,
  logLevel: 'warning',
  plugins: [boundaries],
  // Bundled CommonJS (yaml, commander) requires Node's modules; an ES module has no
  // `require`, so each chunk makes one.
  banner: { js: "import { createRequire as __imgmakeRequire } from 'node:module'; const require = __imgmakeRequire(import.meta.url);" },
});
await mkdir(outdir, { recursive: true });
await writeFile(join(outdir, 'meta.json'), JSON.stringify(r.metafile));
