/**
 * The benchmark must not rot: its statistics and table (pure), and a real `--quick` run on
 * examples/hello that writes the JSON, the Markdown table and the SVG chart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { breakdownOf, markdown, median, uniqueBytes, verdict, type Report, type Scenario } from '../bench/run.js';
import { repoRoot } from './helpers/cli.js';

test('median, ratio to the baseline, and whether the target is met', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const floor: Scenario = { name: 'floor', label: 'floor', samples: [100, 110, 90] };
  const cold: Scenario = { name: 'cold', label: 'cold', samples: [120, 100, 110], baseline: 'floor', target: { ratio: 1.15 } };
  const slow: Scenario = { name: 'slow', label: 'slow', samples: [300], baseline: 'floor', target: { ratio: 1.15 } };
  const noop: Scenario = { name: 'noop', label: 'noop', samples: [250, 350, 310], target: { ms: 300 } };
  const missing: Scenario = { name: 'm', label: 'm', samples: [], missing: 'not here', baseline: 'floor' };
  // The no-op's target is on the whole process (Node's start-up included), not the engine's wallMs.
  const whole: Scenario = { name: 'whole', label: 'whole', samples: [90, 100, 110], processMs: [280, 320, 290], target: { processMs: 300 } };
  const wholeSlow: Scenario = { name: 'ws', label: 'ws', samples: [90], processMs: [310, 400, 305], target: { processMs: 300 } };
  const all = [floor, cold, slow, noop, missing, whole, wholeSlow];
  assert.deepEqual(verdict(cold, all), { ratio: 1.1, met: true });
  assert.deepEqual(verdict(slow, all), { ratio: 3, met: false });
  assert.deepEqual(verdict(noop, all), { met: false });
  assert.deepEqual(verdict(missing, all), {});
  assert.deepEqual(verdict(whole, all), { met: true });
  assert.deepEqual(verdict(wholeSlow, all), { met: false });
  const r: Report = { date: '2026-11-23T00:00:00Z', mode: 'quick', machine: { cpus: 2, model: 'x', memoryGiB: 24, kernel: 'k' }, runs: 3, scenarios: all, sizes: [] };
  const md = markdown(r);
  assert.match(md, /\| cold \| 110 ms \| 100 ms–120 ms \| floor \| 1\.10× \| ≤ 1\.15× floor \| yes \|/);
  assert.match(md, /\| slow \| 300 ms .* \| \*\*no\*\* \|/);
  assert.match(md, /\| m \| — \| — \| floor \| — \| {2}\| not measured: not here \|/);
  assert.match(md, /\| whole \| 100 ms \| 90 ms–110 ms \| {2}\| {2}\| ≤ 300 ms whole process \| yes \| 290 ms \(280 ms–320 ms\) \|/);
});

test('the breakdown: each phase\'s and stage\'s median, a stage over the runs it ran in, then the table', () => {
  const b = breakdownOf([
    { phases: { start: 100, load: 50, stages: 900 }, stages: [{ node: 'os.a', setup: 10, run: 500, commit: 30 }], codeCache: 'rejected' },
    { phases: { start: 140, load: 70, stages: 700, export: 20 }, stages: [{ node: 'os.a', setup: 20, run: 300, commit: 50 }, { node: 'os.b', setup: 1, run: 2, commit: 3 }], codeCache: 'accepted' },
  ]);
  assert.deepEqual(b.codeCache, { rejected: 1, accepted: 1 });
  assert.deepEqual(b.phases, { start: 120, load: 60, stages: 800, export: 10 });
  assert.deepEqual(b.stages, [
    { node: 'os.a', setup: 15, run: 400, commit: 40 },
    { node: 'os.b', setup: 1, run: 2, commit: 3 },
  ]);
  const late: Scenario = { name: 'late', label: 'late edit', samples: [1000, 1100], breakdown: b };
  const md = markdown({ date: '2026-12-05T00:00:00Z', mode: 'quick', machine: { cpus: 2, model: 'x', memoryGiB: 24, kernel: 'k' }, runs: 2, scenarios: [late], sizes: [] });
  assert.match(md, /Where the time of "late edit" went/);
  assert.match(md, /\| start \| load \| stages \| export \|\n\|---\|---\|---\|---\|\n\| 120 ms \| 60 ms \| 800 ms \| 10 ms \|/);
  assert.match(md, /\| os\.a \| 15 ms \| 400 ms \| 40 ms \|/);
  assert.match(md, /code cache of the CLI \(bin\/imgmake\.js\): rejected in 1 of 2 runs, accepted in 1 of 2 runs\./);
});

test('unique bytes: each content once, hardlinks once, allocated bytes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-bench-unique-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await writeFile(join(dir, 'one'), 'x'.repeat(10_000));
  await writeFile(join(dir, 'a', 'b', 'copy'), 'x'.repeat(10_000));
  await link(join(dir, 'one'), join(dir, 'a', 'link'));
  await writeFile(join(dir, 'a', 'other'), 'y'.repeat(10_000));
  const one = Number((await lstat(join(dir, 'one'))).blocks) * 512;
  assert.ok(one >= 10_000);
  assert.equal(await uniqueBytes(dir), 2 * one);
});

// Two runs: the second cold build starts where the first left out/ (a current out/hello, delivered
// there by the tarball's stage); the bench stops if a cold or edited build ran no stage.
test('npm run bench -- --quick: every scenario measured, the three reports written', { timeout: 180_000 }, async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'imgmake-bench-test-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'bench', 'run.js'), '--quick', '--runs', '2', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as Report;
  assert.equal(report.mode, 'quick');
  const names = report.scenarios.map((s) => s.name).sort();
  assert.deepEqual(names, ['cold', 'copy-per-stage', 'early', 'floor-cold', 'floor-late', 'late', 'noop']);
  for (const s of report.scenarios) {
    assert.equal(s.samples.length, 2, s.name);
    for (const ms of s.samples) assert.ok(ms > 0 && ms < 60_000, `${s.name}: ${ms}`);
  }
  for (const z of report.sizes) assert.ok(z.bytes > 0, z.name);
  assert.match(await readFile(join(out, 'latest.md'), 'utf8'), /\| imgmake no-op: nothing changed \| \d+(\.\d+)? m?s \|/);
  // The late edit's breakdown: the phases of a real build, the stages that ran; each run said
  // what became of the CLI's code cache.
  const late = report.scenarios.find((s) => s.name === 'late')!;
  assert.equal(Object.values(late.breakdown?.codeCache ?? {}).reduce((a, b) => a + b, 0), 2, JSON.stringify(late.breakdown));
  assert.ok(late.breakdown && late.breakdown.phases['stages']! > 0 && late.breakdown.stages.length > 0, JSON.stringify(late.breakdown));
  assert.match(await readFile(join(out, 'latest.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*<rect [\s\S]*<\/svg>\n$/);
});
