/**
 * The work folders every build on a cache shares (CACHE/lock, CACHE/verify) are used by one
 * build at a time (src/engine/exclusive.ts): a second build waits and says so; a nested use
 * along one chain (an RPM stage's buildroot verified while verifying) does not wait for itself.
 * Two CI runs' catalog tests once locked into each other's files there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { openEngine } from '../src/engine/index.js';
import { exclusively } from '../src/engine/exclusive.js';
import type { Event } from '../src/event.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('exclusively: two chains take turns (the second says it waits), a nested use goes through, a release frees it', { timeout: 30_000 }, async (t) => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'imgmake-exclusive-'));
  t.after(() => rm(cacheDir, { recursive: true, force: true }));
  const e = await openEngine({ cacheDir });
  const events: Event[] = [];
  const logger = { log: (ev: Event) => void events.push(ev) };
  const trace: string[] = [];
  const job = (name: string) =>
    exclusively(e, 'locking', { logger }, async () => {
      trace.push(`${name} in`);
      // Nested along the same chain: no waiting for itself.
      await exclusively(e, 'locking', { logger }, async () => trace.push(`${name} nested`));
      await sleep(300);
      trace.push(`${name} out`);
      return name;
    });
  const [a, b] = await Promise.all([job('a'), (async () => (await sleep(50), job('b')))()]);
  assert.deepEqual([a, b], ['a', 'b']);
  assert.deepEqual(trace, ['a in', 'a nested', 'a out', 'b in', 'b nested', 'b out'], 'never both inside');
  const waits = events.filter((x) => x.type === 'wait');
  assert.equal(waits.length, 1, JSON.stringify(events));
  assert.deepEqual({ ...waits[0], pid: 0 }, { type: 'wait', for: 'locking', pid: 0 });
  assert.equal((waits[0] as { pid: number }).pid, process.pid);
  // Another kind of shared work is another folder: no wait.
  await exclusively(e, 'locking', { logger }, () => exclusively(e, 'verifying', { logger }, async () => undefined));
  assert.equal(events.filter((x) => x.type === 'wait').length, 1);
});

test('exclusively: a holder that was killed does not block the next build', { timeout: 30_000 }, async (t) => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'imgmake-exclusive-'));
  t.after(() => rm(cacheDir, { recursive: true, force: true }));
  const e = await openEngine({ cacheDir });
  // A child process takes the claim and is killed while holding it.
  const url = new URL('../src/engine/exclusive.js', import.meta.url).href;
  const defaults = new URL('../src/engine/index.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { exclusively } = await import(${JSON.stringify(url)});
    const { openEngine } = await import(${JSON.stringify(defaults)});
    const e = await openEngine({ cacheDir: ${JSON.stringify(cacheDir)} });
    await exclusively(e, 'verifying', { logger: { log() {} } }, async () => { console.log('held'); await new Promise(() => {}); });
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((done) => child.stdout!.on('data', (d) => String(d).includes('held') && done()));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const started = Date.now();
  assert.equal(await exclusively(e, 'verifying', { logger: { log() {} } }, async () => 'ran'), 'ran');
  assert.ok(Date.now() - started < 10_000, 'the dead holder’s claim was broken, not waited out');
});
