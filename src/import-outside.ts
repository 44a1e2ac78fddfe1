/**
 * `import()` of a module outside the CLI's bundle: a rule's implementation (rule.ts). In the
 * bundle (scripts/bundle.ts), this module is replaced by one that calls the importer
 * bin/imgmake.js hands in: the bundle runs as a script compiled with V8's code cache, and on
 * Node 20 an `import()` compiled from that cache finds no module loader ("A dynamic import
 * callback was not specified"); bin/imgmake.js is a module of Node's own loader, whose
 * `import()` works. Unbundled (the tests import dist/src/), it is this plain `import()`.
 */
export function importOutside(url: string): Promise<unknown> {
  return import(url);
}
