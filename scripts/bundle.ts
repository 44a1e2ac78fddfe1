/**
 * Bundles the CLI (issue 18: a no-op build's whole process within 0.3 s, docs/bench.md
 * "Start-up") into one CommonJS script that bin/imgmake.js compiles with V8's code cache.
 *
 *     dist/src/cli.js (tsc's output)  →  dist/bundle/cli.cjs          what bin/imgmake.js runs
 *                                        dist/bundle/cli.cjs.map      for node --enable-source-maps
 *                                        dist/bundle/meta.json        esbuild's metafile, read by
 *                                                                     test/startup.test.ts
 *                                        dist/bundle/cli.cjs.v8cache  written by the first build
 *                                                                     that runs it (bin/imgmake.js)
 *
 * Why one CommonJS script: Node 20 has no compile cache for modules (module.enableCompileCache is
 * Node 22's), and compiling our code and yaml's and commander's was a third of a no-op; a script
 * compiled by `vm.Script` can hand V8 the bytecode a run before it made (`cachedData`). A script
 * cannot be split into chunks, so what is lazy is lazy to *run*, not to read: esbuild wraps each
 * module that an `import()` reaches in an init function named by its path
 * (`"dist/src/patch/index.js"() {…}`), run the first time it is imported, and V8 compiles a
 * function only when it is first called. test/startup.test.ts holds the lazy ones to it.
 *
 * Run after tsc (`npm run build`, `npm test`, `prepare`; test/run.js runs it too, so tests never
 * run a bundle older than dist/src/). It bundles the compiled JavaScript, so tsc stays the one
 * compiler and type checker; removing dist/bundle/ first also removes a code cache of the bundle
 * before. What it leaves out on purpose:
 * - the rules (dist/rules/): a rule is loaded from its own files, whose text is its code digest
 *   (src/rule-code.ts). rules/_lib's helpers that src/ imports (sh.js's PRELUDE, size.js) are
 *   bundled: that copy is the CLI's own code, built from the same file.
 * - packages a no-op does not use (execa, chokidar, cacache, ajv): required from node_modules
 *   when first used (execa, an ES module, by Node's require of ES modules: 20.19 and 22.12 on).
 * - dist/src/ itself: the tests import its modules, and the digest worker runs from it.
 * A CommonJS script has no `import.meta`: each bundled module's `import.meta.url` is made its own
 * file's URL (the plugin below), so src/package-root.ts finds the package as it does unbundled.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'bundle');
const dist = join(root, 'dist') + '/';
const rules = join(dist, 'rules') + '/';
const rulesLib = join(rules, '_lib') + '/';

/** The packages a no-op build uses, bundled with what they require; every other one stays outside. */
const BUNDLED = new Set(['commander', 'yaml']);

/**
 * commander requires node:child_process when loaded, for subcommands that are programs of their
 * own (`_executeSubCommand`), which imgmake has none of; Node's child_process (with net, dgram,
 * streams) was 6 ms of every start. The bundled copy requires it when it is first used.
 */
const COMMANDER_EAGER = "const childProcess = require('node:child_process');";
const COMMANDER_LAZY = "const childProcess = { get spawn() { return require('node:child_process').spawn; } };";

const packageName = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

const boundaries: Plugin = {
  name: 'imgmake-boundaries',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (a) => {
      const path = resolve(a.resolveDir, a.path);
      if (path.startsWith(rules) && !path.startsWith(rulesLib)) throw new Error(`src/ imports ${path}: a rule is loaded from its own files (rule.ts), not bundled`);
      return undefined;
    });
    // `import.meta.url` is each module's own file, as when it ran unbundled: the bundle's URL
    // (the banner's) and where the module's file is from the bundle.
    b.onLoad({ filter: /\.js$/ }, async (a) => {
      if (!a.path.startsWith(dist) || a.path.includes('/node_modules/')) return undefined;
      const text = await readFile(a.path, 'utf8');
      if (!text.includes('import.meta')) return undefined;
      return { contents: `var __moduleUrl = new URL(${JSON.stringify(relative(outdir, a.path))}, __imgmakeUrl).href;\n${text}`, loader: 'js' };
    });
    // src/import-outside.ts: the importer bin/imgmake.js hands in (that file says why).
    b.onLoad({ filter: /[\\/]dist[\\/]src[\\/]import-outside\.js$/ }, () => ({
      contents: 'export function importOutside(url) { return __imgmakeImport(url); }',
      loader: 'js',
    }));
    b.onLoad({ filter: /[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (a) => {
      const text = await readFile(a.path, 'utf8');
      // A commander that no longer has this line: look again at what it requires, then update.
      if (!text.includes(COMMANDER_EAGER)) throw new Error(`${a.path}: no "${COMMANDER_EAGER}" (scripts/bundle.ts)`);
      return { contents: text.replace(COMMANDER_EAGER, COMMANDER_LAZY), loader: 'js' };
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
  outfile: join(outdir, 'cli.cjs'),
  // The metafile's paths are relative to this folder (dist/src/cli.js, node_modules/yaml/…).
  absWorkingDir: root,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  metafile: true,
  // Beside it, through tsc's own maps to src/*.ts: read only by `node --enable-source-maps`.
  sourcemap: true,
  // bin/imgmake.js calls the script with `__filename` (the bundle's path); __moduleUrl is each
  // module's own (the plugin above).
  define: { 'import.meta.url': '__moduleUrl' },
  logLevel: 'warning',
  plugins: [boundaries],
  banner: { js: "var __imgmakeUrl = require('node:url').pathToFileURL(__filename).href;" },
});
await mkdir(outdir, { recursive: true });
await writeFile(join(outdir, 'meta.json'), JSON.stringify(r.metafile));
