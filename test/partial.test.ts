/**
 * Partial builds from stage checkpoints, through the real CLI: `build --until` stops after a
 * stage, `build --from` reruns a stage and everything after it even when cached (its new tree
 * replaces the cached one), and bad stage names are usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { imgmake, projectWith, ran, summary, tempProject } from './helpers/cli.js';

/** A stage whose output is not a function of its key (a random id): what --from is for. */
const RANDOM_TOKEN = `version: 1
pipelines:
  os:
    stages:
      - name: dirs
        rule: files.mkdir
        options: { paths: [{ path: /etc }] }
      - name: token
        rule: shell.run
        options: { script: "cat /proc/sys/kernel/random/uuid > etc/token" }
      - name: hostname
        rule: system.hostname
        options: { hostname: box }
targets:
  os: { pipeline: os }
`;

test('--until builds up to and including a stage and exports nothing; the next build runs the rest', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const until = await imgmake(['--json', '-f', p.file, 'build', 'hello', '--until', 'rootfs.hostname']);
  assert.equal(until.code, 0, until.stderr);
  assert.deepEqual(ran(until), ['rootfs.dirs', 'rootfs.hostname', 'rootfs.motd']);
  assert.equal(existsSync(join(p.dir, 'out', 'hello')), false, 'nothing exported');
  // By index, the same stage: nothing to do.
  const again = await imgmake(['--json', '-f', p.file, 'build', 'hello', '--until', 'rootfs.2']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(summary(again).ran, 0);
  const rest = await imgmake(['--json', '-f', p.file, 'build', 'hello']);
  assert.equal(rest.code, 0, rest.stderr);
  assert.deepEqual(ran(rest), ['rootfs.greeting', 'rootfs.link', 'rootfs.locale', 'rootfs.manifest', 'rootfs.timezone', 'tarball.tar']);
  assert.ok(existsSync(join(p.dir, 'out', 'hello', 'hello.tar')));
});

test('--from reruns a cached stage and the stages after it; the new trees replace the cached ones', async (t) => {
  const p = await projectWith(RANDOM_TOKEN);
  t.after(p.cleanup);
  const token = () => readFile(join(p.dir, 'out', 'os', 'etc', 'token'), 'utf8');
  assert.equal((await imgmake(['-f', p.file, 'build', 'os'])).code, 0);
  const first = await token();

  const planned = await imgmake(['--json', '-f', p.file, 'plan', 'os', '--from', 'os.token']);
  assert.equal(planned.code, 0, planned.stderr);
  assert.deepEqual(
    planned.events.map((e) => [e.node, e.status, e.reasons]),
    [
      ['os.dirs', 'cached', []],
      ['os.token', 'run', ['forced (--from)']],
      ['os.hostname', 'run', ['forced (--from)']],
    ],
  );

  const from = await imgmake(['--json', '-f', p.file, 'build', 'os', '--from', 'os.token']);
  assert.equal(from.code, 0, from.stderr);
  assert.deepEqual(ran(from), ['os.hostname', 'os.token']);
  const second = await token();
  assert.notEqual(second, first);

  // The cache now holds the new tree: a fresh export of a no-op build has the second token.
  await rm(join(p.dir, 'out'), { recursive: true });
  const noop = await imgmake(['--json', '-f', p.file, 'build', 'os']);
  assert.equal(summary(noop).ran, 0);
  assert.equal(await token(), second);
});

test('a stage that is unknown, not needed, or after --until is a usage error (exit 2)', async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const cases: [string[], RegExp][] = [
    [['--until', 'rootfs.hostnam'], /--until rootfs\.hostnam: pipeline rootfs has no stage "hostnam"\nhint: did you mean rootfs\.hostname\?/],
    [['--from', 'rootfz.0'], /--from rootfz\.0: no pipeline named "rootfz"\nhint: did you mean "rootfs"\?/],
    [['--until', 'hostname'], /--until hostname: a stage is named PIPELINE\.STAGE/],
    [['--until', 'rootfs'], /--until rootfs: name a stage of it, PIPELINE\.STAGE\nhint: the pipeline's tree is its last stage's: rootfs\.manifest/],
    [['--until', 'rootfs.99'], /pipeline rootfs has no stage "99"/],
    [['--until', 'rootfs.dirs', '--from', 'rootfs.locale'], /--from rootfs\.locale comes after --until rootfs\.dirs/],
  ];
  for (const [flags, message] of cases) {
    const r = await imgmake(['-f', p.file, 'build', 'hello', ...flags]);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const notNeeded = await imgmake(['-f', p.file, 'build', 'rootfs', '--until', 'tarball.tar']);
  assert.equal(notNeeded.code, 2);
  assert.match(notNeeded.stderr, /--until tarball\.tar: rootfs does not need that stage/);
  assert.equal(existsSync(join(p.dir, 'cache', 'layers')) && (await readdir(join(p.dir, 'cache', 'layers'))).length > 0, false, 'nothing ran');
});
