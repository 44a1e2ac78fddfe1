/**
 * What a build adds beside an export (src/cli/extras.ts) that needs no image: the commit an
 * ostree target's `ostree-commit.json` names, read and checked before it becomes an event.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ostreeCommitOf } from '../src/cli/extras.js';

test('ostreeCommitOf: the ref, the commit and its parent; anything else is said with the path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-extras-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'ostree-commit.json');
  const c = 'a'.repeat(64);
  await writeFile(file, JSON.stringify({ ref: 'debian/12/x86_64/edge', commit: c, parent: null, subject: 's', timestamp: 0 }));
  assert.deepEqual(await ostreeCommitOf(file), { ok: true, value: { ref: 'debian/12/x86_64/edge', commit: c, parent: null } });
  await writeFile(file, JSON.stringify({ ref: 'r', commit: c, parent: 'b'.repeat(64) }));
  assert.deepEqual(await ostreeCommitOf(file), { ok: true, value: { ref: 'r', commit: c, parent: 'b'.repeat(64) } });
  for (const bad of [{ ref: 'r', commit: 'xyz', parent: null }, { commit: c, parent: null }, { ref: 'r', commit: c }]) {
    await writeFile(file, JSON.stringify(bad));
    const r = await ostreeCommitOf(file);
    assert.ok(!r.ok && r.error.startsWith(`${file}: has no ref`), JSON.stringify(r));
  }
  await writeFile(file, '{');
  const r = await ostreeCommitOf(file);
  assert.ok(!r.ok && /cannot be read as JSON/.test(r.error));
  const gone = await ostreeCommitOf(join(dir, 'none.json'));
  assert.ok(!gone.ok && /cannot be read/.test(gone.error));
});
