/**
 * Crash leftovers are reclaimed (issue 21): builds killed with SIGKILL at random moments —
 * during planning, stages, commits and exports — leave temporaries in out/ and in the cache;
 * one successful build afterwards leaves out/ holding exactly the target's files, the cache
 * holding no temporary of a dead process, and `cache verify` finding nothing corrupt.
 *
 * A cheap fixture keeps the loop bounded: one stage writes a 16 MiB file (so an export takes
 * long enough to be hit), and its content depends on a variable that cycles through a few
 * values, so every build exports (the stamp never matches) and most builds run the stage.
 * Every other kill waits for the stage's event, so that exports are hit on purpose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { imgmake, projectWith, startImgmake } from './helpers/cli.js';

const YAML = `version: 1
vars:
  n: "0"
pipelines:
  p:
    stages:
      - name: data
        rule: shell.run
        options:
          script: |
            dd if=/dev/zero bs=1M count=16 status=none | tr '\\0' '\${n}' > big.bin
            echo "\${n}" > n.txt
targets:
  t:
    pipeline: p
    export: [big.bin, n.txt]
`;

const KILLS = 50;

test(`kill -9 ${KILLS} times at random moments, exports included, then one build: out/ holds only the target, the cache only what is committed`, { timeout: 300_000 }, async (t) => {
  const p = await projectWith(YAML);
  t.after(p.cleanup);
  const started = performance.now();
  const first = await imgmake(['--json', '-f', p.file, 'build', 't']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  const buildMs = performance.now() - started;

  let afterStage = 0;
  for (let i = 0; i < KILLS; i++) {
    const child = startImgmake(['--json', '-f', p.file, '--var', `n=${i % 6}`, 'build', 't']);
    const closed = new Promise((r) => child.on('close', r));
    let out = '';
    const stageDone = new Promise<void>((r) =>
      child.stdout!.on('data', (d) => {
        out += d;
        if (/"type":"stage".*"status":"(ran|cached)"/.test(out)) r();
      }),
    );
    if (i % 2 === 1) {
      // Once the stage is committed (or found), what follows is the export. (At most 3 s: on a
      // loaded machine a kill then lands wherever the build is.)
      await Promise.race([stageDone, closed, new Promise((r) => setTimeout(r, 3000))]);
      afterStage++;
      await new Promise((r) => setTimeout(r, Math.random() * 150));
    } else {
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(buildMs * 1.2, 1500)));
    }
    child.kill('SIGKILL');
    await closed;
  }
  t.diagnostic(`${KILLS} kills (${afterStage} after the stage) in ${Math.round((performance.now() - started) / 1000)} s; one build took ${Math.round(buildMs)} ms`);

  const after = await imgmake(['--json', '-f', p.file, 'build', 't']);
  assert.equal(after.code, 0, after.stderr + after.stdout);
  const out = join(p.dir, 'out');
  assert.deepEqual(readdirSync(out).sort(), ['.imgmake', 't']);
  assert.deepEqual(readdirSync(join(out, '.imgmake')), ['t.json']);
  assert.deepEqual(readdirSync(join(out, 't')).sort(), ['big.bin', 'n.txt']);

  const cache = join(p.dir, 'cache');
  for (const d of ['work', 'tmp', 'trash', 'leases', 'claims']) {
    const left = existsSync(join(cache, d)) ? readdirSync(join(cache, d)) : [];
    assert.deepEqual(left, [], `cache/${d} still holds ${left.join(' ')}`);
  }
  const v = await imgmake(['--json', '-f', p.file, 'cache', 'verify']);
  assert.equal(v.code, 0, v.stderr + v.stdout);
  assert.equal(v.events.find((e) => e.type === 'cache-verify')!.corrupt, 0, v.stdout);
});
