/**
 * shell.run on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';

const T = { timeout: 30_000 };

test('the script runs in the tree: a relative path lands in it; TREE and INPUTS are set', T, async () => {
  const script = 'mkdir -p etc\necho "hello from $(pwd)" > etc/greeting\nprintf "%s\\n" "$TREE" "$INPUTS" "$SOURCE_DATE_EPOCH" > env.txt\n';
  await withRule('shell.run', { script }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/greeting'), 'utf8'), 'hello from /run/imgmake/tree\n');
    assert.equal(readFileSync(join(r.tree, 'env.txt'), 'utf8'), `/run/imgmake/tree\n/run/imgmake/inputs\n${SOURCE_DATE_EPOCH}\n`);
  });
});

test('env adds variables, values passed as they are', T, async () => {
  const env = { GREETING: 'hi there', TRICKY: `a'b"c $HOME \\ =x`, EMPTY: '' };
  await withRule('shell.run', { script: 'printf "%s|" "$GREETING" "$TRICKY" "${EMPTY-unset}" > out\n', env }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'out'), 'utf8'), `hi there|a'b"c $HOME \\ =x||`);
  });
});

test('a failing command fails the stage, and the lines after it do not run', T, async () => {
  await withRule('shell.run', { script: 'echo before > before\necho visible-in-log\nfalse\necho after > after\n' }, {}, (r) => {
    assertFails(r, 'visible-in-log');
    assert.ok(existsSync(join(r.tree, 'before')));
    assert.equal(existsSync(join(r.tree, 'after')), false);
  });
  await withRule('shell.run', { script: 'exit 7' }, {}, (r) => {
    assert.equal(r.exitCode, 7);
  });
});

test('shell: /bin/bash runs bash syntax', T, async () => {
  const script = 'arr=(one two three)\n[[ ${#arr[@]} -eq 3 ]]\necho "${arr[1]^^} $BASH_VERSION" > bash.txt\n';
  await withRule('shell.run', { script, shell: '/bin/bash' }, {}, (r) => {
    assertOk(r);
    assert.match(readFileSync(join(r.tree, 'bash.txt'), 'utf8'), /^TWO \d+\.\d+/);
  });
});

test('inputs are readable at $INPUTS/NAME and read-only', T, async () => {
  const t = tempDir('imgmake-rule-input-');
  try {
    writeFileSync(join(t.dir, 'data.txt'), 'input data\n');
    const script = 'cp "$INPUTS/data" copied\nif echo x > "$INPUTS/data"; then echo writable > bad; fi\n';
    await withRule('shell.run', { script }, { inputs: { data: { kind: 'file', path: join(t.dir, 'data.txt') } } }, (r) => {
      assertOk(r);
      assert.equal(readFileSync(join(r.tree, 'copied'), 'utf8'), 'input data\n');
      assert.equal(existsSync(join(r.tree, 'bad')), false);
      assert.equal(readFileSync(join(t.dir, 'data.txt'), 'utf8'), 'input data\n');
    });
  } finally {
    t.cleanup();
  }
});

test('no network: only the loopback interface exists', T, async () => {
  await withRule('shell.run', { script: "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > ifaces\n" }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'ifaces'), 'utf8'), 'lo\n');
  });
});

test('the schema requires a script, an absolute shell and valid variable names', T, async () => {
  assert.notDeepEqual(await schemaErrors('shell.run', { script: '' }), []);
  assert.notDeepEqual(await schemaErrors('shell.run', { script: 'true', shell: 'bash' }), []);
  assert.notDeepEqual(await schemaErrors('shell.run', { script: 'true', env: { 'BAD-NAME': 'x' } }), []);
  assert.notDeepEqual(await schemaErrors('shell.run', { script: 'true', env: { '1X': 'x' } }), []);
  assert.notDeepEqual(await schemaErrors('shell.run', { script: 'true', env: { X: 1 } }), []);
  assert.deepEqual(await schemaErrors('shell.run', { script: 'true', env: { _X1: 'x' } }), []);
});
