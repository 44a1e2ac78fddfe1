/**
 * Where a build's time goes (issue 18): the `timing` event's phases and each ran stage's set-up
 * and commit, from a real build of examples/hello (real bubblewrap), then a no-op rebuild.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imgmake, tempProject } from './helpers/cli.js';
import { PhaseClock } from '../src/timing.js';

test('PhaseClock: laps charge the time since the last lap, a phase met twice adds up', async () => {
  const origin = performance.now();
  const c = new PhaseClock(origin);
  await new Promise((r) => setTimeout(r, 30));
  c.lap('one');
  c.lap('two');
  await new Promise((r) => setTimeout(r, 20));
  c.lap('one');
  const end = performance.now();
  const p = c.phases();
  assert.deepEqual(Object.keys(p), ['one', 'two'], 'in the order each phase first ended');
  assert.ok(p['one']! >= 45, JSON.stringify(p));
  assert.ok(p['two']! < 20, JSON.stringify(p));
  const total = Object.values(p).reduce((a, b) => a + b, 0);
  // Each phase is rounded to a millisecond; `end` is read just after the last lap.
  assert.ok(Math.abs(total - (end - origin)) < 3, `nothing lost, nothing counted twice: ${total} against ${end - origin}`);
});

test('build --json: a timing event before the summary, phases that add up to the whole process', { timeout: 120_000 }, async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const before = performance.now();
  const cold = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  const whole = performance.now() - before;
  assert.equal(cold.code, 0, cold.stderr);
  const types = cold.events.map((e) => e.type);
  assert.equal(types.at(-1), 'summary');
  assert.equal(types.at(-2), 'timing');
  const phases = cold.events.at(-2)!.phases as Record<string, number>;
  for (const name of ['node', 'start', 'load', 'lock', 'keys', 'plan', 'fetch', 'stages', 'export', 'extras', 'flush']) {
    assert.ok(typeof phases[name] === 'number', `phase ${name} in ${JSON.stringify(phases)}`);
  }
  const sum = Object.values(phases).reduce((a, b) => a + b, 0);
  const summary = cold.events.at(-1)!;
  // The phases cover the process from its start to the summary: at least the build's wall time
  // (which starts after `start`), at most the whole process as the test saw it.
  assert.ok(sum >= summary.wallMs, `phases ${sum} ms < wallMs ${summary.wallMs} ms`);
  assert.ok(sum <= whole + 50, `phases ${sum} ms > the whole process ${Math.round(whole)} ms`);
  assert.ok(phases['stages']! >= Math.max(...cold.events.filter((e) => e.type === 'stage').map((e) => e.ms)), 'the stages phase holds the longest stage');

  const ran = cold.events.filter((e) => e.type === 'stage' && e.status === 'ran');
  assert.ok(ran.length > 0);
  for (const s of ran) assert.ok(Number.isInteger(s.setupMs) && Number.isInteger(s.commitMs), JSON.stringify(s));

  // A no-op: nothing runs, nothing to fetch; still the same phases, and no stage set-up.
  const noop = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(noop.code, 0, noop.stderr);
  const t2 = noop.events.find((e) => e.type === 'timing')!;
  assert.ok(t2 && t2.phases.stages < 1000, JSON.stringify(t2));
  // The cold build wrote V8's code cache of the CLI (bin/imgmake.js) if none was there: used now.
  assert.equal(t2.codeCache, 'accepted', JSON.stringify(t2));
  assert.ok(noop.events.filter((e) => e.type === 'stage').every((e) => e.status === 'cached' && e.setupMs === undefined));
});

test('build --verbose (plain): the phases on one line, each ran stage with its set-up and commit', { timeout: 120_000 }, async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const r = await imgmake(['--verbose', '--progress', 'plain', '-f', p.file, 'build', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  const text = r.stdout + r.stderr;
  assert.match(text, /^ {2}time {3}node .*, start .*, load .*, stages .*, export /m);
  assert.match(text, /^ {2}ran {4}\S+ \(\S+\) .* \(set-up .*, commit .*\)$/m);
});
