/**
 * Golden files for load errors: each folder of test/diagnostics/ holds a definition
 * (`imgmake.yaml`, plus any files it includes or names) and `expected.txt`, the exact text the
 * user would see: every diagnostic formatted, joined by a blank line, paths relative to the
 * case's folder. An optional `vars.json` holds `--var` overrides.
 *
 *     UPDATE_GOLDEN=1 node test/run.js diagnostics     rewrites every expected.txt
 *
 * Read each rewritten file before committing it: it must be a message a user would be glad to get.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic } from '../src/diagnostic.js';
import { load } from '../src/load/index.js';
import { loadRules } from '../src/rule.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesDir = join(repo, 'test', 'diagnostics');
const rules = await loadRules([join(repo, 'test', 'fixtures', 'rules')]);
const update = process.env['UPDATE_GOLDEN'] === '1';

// Folders named blueprint-* hold blueprint cases: test/blueprint-diagnostics.test.ts runs them.
const cases = readdirSync(casesDir, { withFileTypes: true })
  .filter((e) => e.isDirectory() && !e.name.startsWith('blueprint-'))
  .map((e) => e.name)
  .sort();

test('there are golden cases', () => {
  assert.ok(cases.length >= 12, `only ${cases.length} cases in ${casesDir}`);
});

for (const name of cases) {
  test(`diagnostics: ${name}`, async () => {
    const dir = join(casesDir, name);
    const varsFile = join(dir, 'vars.json');
    const vars = existsSync(varsFile) ? (JSON.parse(readFileSync(varsFile, 'utf8')) as Record<string, string>) : undefined;
    const r = await load({ file: join(dir, 'imgmake.yaml'), rules, ...(vars ? { vars } : {}) });
    assert.equal(r.ok, false, `${name}: the definition loaded without errors`);
    if (r.ok) return;
    const actual = `${r.error.map((d) => formatDiagnostic(d, { cwd: dir })).join('\n\n')}\n`;
    const expectedFile = join(dir, 'expected.txt');
    if (update) {
      writeFileSync(expectedFile, actual);
      return;
    }
    assert.ok(existsSync(expectedFile), `${name}: no expected.txt (run with UPDATE_GOLDEN=1 and read it)`);
    assert.equal(actual, readFileSync(expectedFile, 'utf8'));
  });
}
