/**
 * Where the imgmake package sits: the one place that finds files of the package (package.json,
 * catalog/, rules/, bin/, the compiled dist/src/) from the running code's own location.
 *
 * Found by walking up from this module's file to the first folder holding a package.json, so
 * the answer does not depend on how deep the code sits: dist/src/package-root.js (as tsc
 * compiles it, what the tests import), the CLI's bundle dist/bundle/cli.cjs (what
 * bin/imgmake.js runs; scripts/bundle.ts gives each bundled module its own file's
 * `import.meta.url`) or src/package-root.ts all give the same folder. It does not find the
 * user's project (src/engine/project.ts does).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`Internal error: no package.json in ${from} or any folder above it`);
  }
}

/** The imgmake package's root (holds `package.json`, `rules/`, `catalog/`, `bin/`, `dist/`). */
export const packageRoot: string = findRoot(dirname(fileURLToPath(import.meta.url)));

/** The folder tsc compiles src/ into: files that must run unbundled (a worker's script) or be listed. */
export const compiledSrc: string = join(packageRoot, 'dist', 'src');
