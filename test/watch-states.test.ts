/**
 * The watcher's state machine (src/watch.ts) with a stand-in build: the seam between "a file
 * changed" and "build". The real watch, with real files and builds, is test/watch.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Rebuilder, type WatchState } from '../src/watch.js';

/** A build that takes `ms` unless aborted, recording what it was given and how it ended. */
function recorder(ms: number) {
  const builds: { changed: string[]; aborted: boolean }[] = [];
  const states: WatchState[] = [];
  const r = new Rebuilder({
    settleMs: 40,
    onState: (s) => states.push(s),
    build: async (changed, signal) => {
      const b = { changed, aborted: false };
      builds.push(b);
      await new Promise<void>((done) => {
        const t = setTimeout(done, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          b.aborted = true;
          done();
        });
      });
    },
  });
  return { r, builds, states };
}

test('a burst of changes settles into one build with every changed path', async () => {
  const { r, builds, states } = recorder(20);
  r.changed('a.yaml');
  await sleep(10);
  r.changed('b.txt');
  await sleep(10);
  r.changed('a.yaml');
  assert.equal(r.state, 'settling');
  assert.equal(builds.length, 0);
  await r.idle();
  assert.deepEqual(builds, [{ changed: ['a.yaml', 'b.txt'], aborted: false }]);
  assert.deepEqual(states, ['settling', 'building', 'idle']);
});

test('a change while building cancels that build, then settles and builds again', async () => {
  const { r, builds, states } = recorder(300);
  r.start(['first']);
  assert.equal(r.state, 'building');
  await sleep(30);
  r.changed('edit.yaml');
  assert.equal(r.state, 'cancelling');
  r.changed('other.txt'); // collected while cancelling
  await sleep(20);
  assert.equal(r.state, 'settling');
  assert.deepEqual(builds[0], { changed: ['first'], aborted: true });
  await r.idle();
  assert.deepEqual(builds[1], { changed: ['edit.yaml', 'other.txt'], aborted: false });
  assert.equal(builds.length, 2);
  assert.deepEqual(states, ['building', 'cancelling', 'settling', 'building', 'idle']);
});

test('stop aborts a running build, waits for it, and ignores later changes', async () => {
  const { r, builds, states } = recorder(5_000);
  r.start();
  await sleep(10);
  const started = Date.now();
  await r.stop();
  assert.ok(Date.now() - started < 1_000);
  assert.equal(builds[0]!.aborted, true);
  r.changed('late.yaml');
  await sleep(80);
  assert.equal(builds.length, 1);
  assert.equal(r.state, 'stopped');
  assert.deepEqual(states, ['building', 'stopped']);
});

test('stop while settling: no build starts', async () => {
  const { r, builds } = recorder(10);
  r.changed('x');
  await r.stop();
  await sleep(80);
  assert.equal(builds.length, 0);
});
