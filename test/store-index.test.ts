/**
 * store/entries.ts's `findEntry` reads cacache's index without cacache (the lookup a no-op build
 * makes per stage, docs/bench.md "Start-up"), and `putEntry` writes an entry as cacache's `put`
 * does (a build's commits, logs and histories). These tests hold both to cacache's own reads and
 * writes on the same folder, so a cacache that lays out its cache differently fails here, not in
 * a build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacache, findEntry, putEntry } from '../src/store/entries.js';
import { repoRoot } from './helpers/cli.js';

/** findEntry's answer and cacache's, side by side. */
async function both(root: string, key: string): Promise<[unknown, unknown]> {
  const theirs = await cacache().get.info(root, key);
  return [await findEntry(root, key), theirs ? { metadata: theirs.metadata, time: theirs.time, path: theirs.path } : undefined];
}

test('findEntry answers as cacache.get.info: absent, written, rewritten, removed, written again', async () => {
  const root = await mkdtemp(join(tmpdir(), 'imgmake-index-'));
  try {
    const key = 'tree:abc';
    assert.deepEqual(await both(root, key), [undefined, undefined], 'no index at all');
    await cacache().put(root, key, 'one', { metadata: { n: 1 } });
    let [mine, theirs] = await both(root, key);
    assert.deepEqual(mine, theirs);
    assert.deepEqual((mine as { metadata: unknown }).metadata, { n: 1 });
    await cacache().put(root, key, 'two', { metadata: { n: 2 } });
    [mine, theirs] = await both(root, key);
    assert.deepEqual(mine, theirs, 'the last entry wins');
    assert.deepEqual((mine as { metadata: unknown }).metadata, { n: 2 });
    assert.deepEqual(await both(root, 'tree:other'), [undefined, undefined], 'another key');
    await cacache().rm.entry(root, key);
    assert.deepEqual(await both(root, key), [undefined, undefined], 'a removal shadows what came before');
    await cacache().put(root, key, 'three', { metadata: { n: 3 } });
    [mine, theirs] = await both(root, key);
    assert.deepEqual(mine, theirs);
    assert.deepEqual((mine as { metadata: unknown }).metadata, { n: 3 });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('findEntry skips a torn or altered line, as cacache does', async () => {
  const root = await mkdtemp(join(tmpdir(), 'imgmake-index-'));
  try {
    const key = 'tree:torn';
    await cacache().put(root, key, 'one', { metadata: { n: 1 } });
    const h = createHash('sha256').update(key).digest('hex');
    const bucket = join(root, 'index-v5', h.slice(0, 2), h.slice(2, 4), h.slice(4));
    const good = (await readFile(bucket, 'utf8')).trim().split('\n').pop()!;
    // A later entry whose JSON does not match its hash (altered), then half a line (torn).
    await appendFile(bucket, `\n${good.replace('"n":1', '"n":9')}\n${good.slice(0, 30)}`);
    const [mine, theirs] = await both(root, key);
    assert.deepEqual(mine, theirs);
    assert.deepEqual((mine as { metadata: unknown }).metadata, { n: 1 });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("the index findEntry reads is the version cacache writes (index-v5)", async () => {
  const pkg = JSON.parse(await readFile(join(repoRoot, 'node_modules', 'cacache', 'package.json'), 'utf8')) as { 'cache-version': { index: string } };
  assert.equal(pkg['cache-version'].index, '5', 'a new index version: update INDEX_DIR and findEntry in src/store/entries.ts');
});

test('putEntry writes what cacache.put writes: cacache reads back the data, metadata and size; content is shared; a removal and a rewrite work on it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'imgmake-index-'));
  try {
    const key = 'history:scope:os.hostname';
    const path = await putEntry(root, key, JSON.stringify({ n: 1 }), { n: 1 });
    const got = await cacache().get(root, key);
    assert.equal(got.data.toString(), '{"n":1}');
    assert.deepEqual(got.metadata, { n: 1 });
    assert.equal(got.size, 7);
    assert.equal(got.integrity, `sha512-${createHash('sha512').update('{"n":1}').digest('base64')}`);
    const info = await cacache().get.info(root, key);
    assert.equal(info?.path, path, 'the content where cacache looks for it');
    const [first, cacaches] = await both(root, key);
    assert.deepEqual(first, cacaches, 'findEntry reads it as cacache does');
    // The same bytes under a second key: one content file. cacache's own writes land beside ours.
    assert.equal(await putEntry(root, 'log:x', '{"n":1}'), path);
    await cacache().put(root, 'log:y', 'other', { metadata: { m: 2 } });
    assert.deepEqual(Object.keys(await cacache().ls(root)).sort(), ['history:scope:os.hostname', 'log:x', 'log:y']);
    const verified = await cacache().verify(root);
    assert.equal(verified.badContentCount, 0);
    assert.equal(verified.totalEntries, 3);
    // Data without metadata (a log), then a removal and a rewrite through putEntry.
    assert.equal((await cacache().get(root, 'log:x')).metadata, undefined);
    await cacache().rm.entry(root, key);
    assert.equal(await findEntry(root, key), undefined);
    await putEntry(root, key, JSON.stringify({ n: 2 }), { n: 2 });
    assert.deepEqual((await cacache().get(root, key)).metadata, { n: 2 });
    const [mine, theirs] = await both(root, key);
    assert.deepEqual(mine, theirs);
    assert.deepEqual(await readdir(join(root, 'tmp')), [], 'no temporary left');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
