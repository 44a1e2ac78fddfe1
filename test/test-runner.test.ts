/**
 * test/run.js runs the compiled tests whose source still exists: tsc never deletes an output,
 * so a test renamed or removed in the sources would otherwise keep running from dist/ (as
 * rules/_lib/disk-fixtures.test.js did after it moved to test/helpers/).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const temps: string[] = [];
after(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

test('a compiled test whose .ts source is gone is skipped with a note; the others run', () => {
  const root = mkdtempSync(join(tmpdir(), 'imgmake-runner-'));
  temps.push(root);
  mkdirSync(join(root, 'test'));
  mkdirSync(join(root, 'dist', 'test'), { recursive: true });
  copyFileSync(join(repo, 'test', 'run.js'), join(root, 'test', 'run.js'));
  copyFileSync(join(repo, 'test', 'file-times.js'), join(root, 'test', 'file-times.js'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}\n');
  // kept.test.ts exists: its output runs. gone.test.ts does not: its output would fail.
  writeFileSync(join(root, 'test', 'kept.test.ts'), '// source\n');
  writeFileSync(join(root, 'dist', 'test', 'kept.test.js'), "import { test } from 'node:test';\ntest('kept runs', () => {});\n");
  writeFileSync(join(root, 'dist', 'test', 'gone.test.js'), "import { test } from 'node:test';\ntest('gone runs', () => { throw new Error('stale'); });\n");

  // Without NODE_TEST_CONTEXT, which would make the inner runner report to this one.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync(process.execPath, [join(root, 'test', 'run.js')], { cwd: root, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /skipping dist\/test\/gone\.test\.js: its source test\/gone\.test\.ts is gone/);
  assert.match(r.stdout, /kept runs/);
  assert.doesNotMatch(r.stdout, /gone runs/);
});
