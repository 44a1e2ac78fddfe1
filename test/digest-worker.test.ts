/**
 * The digest worker (src/store/digest.ts): digests asked for at once share one worker and give
 * what the same walk on this thread gives; an error keeps its code; a process whose digests are
 * done exits on its own (the worker does not hold it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFile, hashFileHere, layerManifest, layerManifestHere } from '../src/store/digest.js';
import { tempDir } from './helpers/sandbox-fixtures.js';

test('digests asked for in the same tick: one worker, the same answers as on this thread; errors keep their code', async () => {
  const t = tempDir('imgmake-digest-test-');
  try {
    const a = join(t.dir, 'a');
    mkdirSync(join(a, 'sub'), { recursive: true });
    writeFileSync(join(a, 'sub', 'f'), 'x'.repeat(3 << 20));
    writeFileSync(join(a, 'g'), 'small');
    const [m1, m2, h1] = await Promise.all([layerManifest(a), layerManifest(a), hashFile(join(a, 'sub', 'f'))]);
    assert.deepEqual(m1, await layerManifestHere(a));
    assert.deepEqual(m2, m1);
    assert.equal(h1, await hashFileHere(join(a, 'sub', 'f')));
    await assert.rejects(layerManifest(join(t.dir, 'absent')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  } finally {
    t.cleanup();
  }
});

test('a process exits on its own once its digests are done', () => {
  const t = tempDir('imgmake-digest-test-');
  try {
    writeFileSync(join(t.dir, 'f'), 'data');
    const digest = fileURLToPath(new URL('../src/store/digest.js', import.meta.url));
    const script = `const d = await import(${JSON.stringify(digest)}); const f = ${JSON.stringify(join(t.dir, 'f'))};
      const r = await Promise.all([d.hashFile(f), d.hashFile(f), d.layerManifest(${JSON.stringify(t.dir)})]); console.log(r[0] === r[1] ? 'same' : 'differ');`;
    const file = join(t.dir, 'digest.mjs');
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.signal, null, 'killed by the timeout: the worker kept the process alive');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'same');
  } finally {
    t.cleanup();
  }
});
