/**
 * A build that waits says what for: while `imgmake cache verify` (here: a stand-in process that
 * holds the cache's collection lock, gc.lock, the way store/gc.ts takes it) works, a build emits
 * one typed `wait` event naming the command and its pid, then goes on when the lock is free.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidScope } from '../src/store/local.js';
import { imgmake, startImgmake, tempProject } from './helpers/cli.js';
import { events } from './helpers/events.js';

test('a build waiting for cache verify says so (wait event, pid), then builds', async () => {
  const p = await tempProject();
  const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    const cache = join(p.dir, 'cache');
    await mkdir(cache, { recursive: true });
    const here = await pidScope();
    await symlink(`${holder.pid}-${here.boot}.${here.ns}-abcdef`, join(cache, 'gc.lock'));
    await writeFile(join(cache, 'gc.op'), 'cache-verify');
    const child = startImgmake(['--json', 'build', 'hello'], { cwd: p.dir });
    const ev = events(child);
    const before = await ev.next((e) => e.type === 'wait', 'a wait event', 120_000);
    assert.deepEqual(before.at(-1), { type: 'wait', for: 'cache-verify', pid: holder.pid });
    assert.deepEqual(before.filter((e) => e.type === 'plan'), [], 'it waits before planning');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(child.exitCode, null, 'still waiting while the lock is held');
    holder.kill();
    const rest = await ev.next((e) => e.type === 'summary', 'the summary', 120_000);
    assert.equal(rest.at(-1)!.ok, true, ev.stderr);
    assert.deepEqual(rest.filter((e) => e.type === 'wait'), [], 'one wait event');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    assert.equal(child.exitCode, 0);

    const text = await imgmake(['build', 'hello'], { cwd: p.dir });
    assert.doesNotMatch(text.stdout, /waiting/, 'nothing holds the lock now: no wait');
  } finally {
    holder.kill();
    if (holder.exitCode === null && holder.signalCode === null) await once(holder, 'exit');
    await p.cleanup();
  }
});
