/**
 * Golden files for bad blueprints: each folder test/diagnostics/blueprint-NAME holds one blueprint
 * (`blueprint.toml`, `.json` or `.yaml`), optionally `type.txt` naming the image type to check
 * support for, and `expected.txt`: the exact text the user would see (every diagnostic
 * formatted, joined by a blank line, paths relative to the folder).
 *
 *     UPDATE_GOLDEN=1 node test/run.js blueprint-diagnostics     rewrites every expected.txt
 *
 * Read each rewritten file before committing it: it must be a message a user would be glad to get.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkSupport, readBlueprint } from '../src/blueprint/index.js';
import { formatDiagnostic, type Diagnostic } from '../src/diagnostic.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesDir = join(repo, 'test', 'diagnostics');
const update = process.env['UPDATE_GOLDEN'] === '1';

const cases = readdirSync(casesDir, { withFileTypes: true })
  .filter((e) => e.isDirectory() && e.name.startsWith('blueprint-'))
  .map((e) => e.name)
  .sort();

test('there are golden blueprint cases', () => {
  assert.ok(cases.length >= 8, `only ${cases.length} blueprint cases in ${casesDir}`);
});

for (const name of cases) {
  test(`blueprint diagnostics: ${name}`, async () => {
    const dir = join(casesDir, name);
    const file = readdirSync(dir).find((f) => /^blueprint\.(toml|json|ya?ml)$/.test(f));
    assert.ok(file, `${name}: no blueprint.toml, .json or .yaml`);
    const typeFile = join(dir, 'type.txt');
    const type = existsSync(typeFile) ? readFileSync(typeFile, 'utf8').trim() : undefined;
    const r = await readBlueprint(join(dir, file));
    let ds: Diagnostic[];
    if (!r.ok) ds = r.error;
    else {
      assert.ok(type, `${name}: the blueprint is valid and no type.txt asks for a support check`);
      ds = checkSupport(r.value, type);
    }
    assert.ok(ds.length > 0, `${name}: no diagnostics`);
    const actual = `${ds.map((d) => formatDiagnostic(d, { cwd: dir })).join('\n\n')}\n`;
    const expectedFile = join(dir, 'expected.txt');
    if (update) {
      writeFileSync(expectedFile, actual);
      return;
    }
    assert.ok(existsSync(expectedFile), `${name}: no expected.txt (run with UPDATE_GOLDEN=1 and read it)`);
    assert.equal(actual, readFileSync(expectedFile, 'utf8'));
  });
}
