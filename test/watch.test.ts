/**
 * `imgmake watch --json` on a temp copy of examples/hello, through the real CLI, real files and
 * real builds: each edit rebuilds only what it invalidates, out/ holds the new result, an
 * invalid edit reports its position and the watcher keeps going, a change during a build
 * cancels it, and --exec runs after each good rebuild. Every wait is bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { projectWith, startImgmake, tempProject } from './helpers/cli.js';
import { events } from './helpers/events.js';
import { diskProject } from './helpers/boot-disk.js';

const rebuilt = (e: Record<string, any>) => e.type === 'rebuild';
const idle = (e: Record<string, any>) => e.type === 'watch' && e.state === 'idle';

test('watch: an option, then a copied-in file, then invalid YAML, then the fix', { timeout: 180_000 }, async (t) => {
  const p = await tempProject();
  t.after(p.cleanup);
  const child = startImgmake(['--json', '-f', p.file, 'watch', 'hello']);
  t.after(() => child.kill('SIGKILL'));
  const ev = events(child);
  const tar = join(p.dir, 'out', 'hello', 'hello.tar');
  const inTar = (path: string) => execFileSync('tar', ['-xOf', tar, path], { encoding: 'utf8' });

  const first = (await ev.next(rebuilt, 'first build')).at(-1)!;
  assert.equal(first.result, 'built', ev.stderr);
  assert.equal(first.ran.length, 9);
  await ev.next(idle, 'idle');

  // An option: the stage that has it and those after it.
  const yaml = await readFile(p.file, 'utf8');
  await writeFile(p.file, yaml.replace('timezone: Europe/Berlin', 'timezone: Europe/Paris'));
  const option = (await ev.next(rebuilt, 'rebuild after an option')).at(-1)!;
  assert.equal(option.result, 'built');
  assert.deepEqual(option.changed, ['imgmake.yaml']);
  assert.deepEqual(option.ran, ['rootfs.greeting', 'rootfs.link', 'rootfs.locale', 'rootfs.manifest', 'rootfs.timezone', 'tarball.tar']);
  assert.equal(option.reused, 3);
  assert.match(inTar('./etc/timezone'), /Europe\/Paris/);
  await ev.next(idle, 'idle');

  // A file a stage copies in.
  await appendFile(join(p.dir, 'files', 'motd'), 'edited under watch\n');
  const file = (await ev.next(rebuilt, 'rebuild after a file edit')).at(-1)!;
  assert.equal(file.result, 'built');
  assert.deepEqual(file.changed, ['files/motd']);
  assert.ok(file.ran.includes('rootfs.motd') && !file.ran.includes('rootfs.dirs'), file.ran.join(' '));
  assert.match(inTar('./etc/motd'), /edited under watch/);
  await ev.next(idle, 'idle');

  // Invalid YAML: the position, nothing runs, out/ is kept, the watcher goes on.
  const good = await readFile(p.file, 'utf8');
  const before = await readFile(tar);
  await writeFile(p.file, good.replace('timezone: Europe/Paris', 'timezone: [Europe/Paris'));
  const batch = await ev.next(rebuilt, 'report of the invalid edit');
  const bad = batch.at(-1)!;
  assert.equal(bad.result, 'invalid');
  assert.deepEqual(bad.ran, []);
  const diag = batch.find((e) => e.type === 'diagnostic');
  assert.ok(diag, 'a diagnostic event');
  assert.match(`${diag.diagnostic.loc.file}:${diag.diagnostic.loc.line}`, /imgmake\.yaml:\d+/);
  assert.deepEqual(await readFile(tar), before, 'out/ keeps the last good output');
  await ev.next(idle, 'idle');
  // stderr is another pipe: it may arrive after stdout's events.
  for (let i = 0; i < 50 && !/error:/.test(ev.stderr); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(ev.stderr, /imgmake\.yaml:\d+:\d+: error:/);
  assert.equal(child.exitCode, null, 'still watching');

  // The fix: back to the last good definition, so nothing needs to run.
  await writeFile(p.file, good);
  const fixed = (await ev.next(rebuilt, 'rebuild after the fix')).at(-1)!;
  assert.equal(fixed.result, 'built');
  assert.deepEqual(fixed.ran, []);
  await ev.next(idle, 'idle');

  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  assert.equal(code, 130);
});

test('watch: a change during a build cancels it and builds again; --exec runs after a good build', { timeout: 180_000 }, async (t) => {
  const p = await projectWith(
    `version: 1
vars:
  word: one
pipelines:
  os:
    stages:
      - name: slow
        rule: shell.run
        options: { script: "sleep 4; echo \${word} > word" }
      - name: after
        rule: files.mkdir
        options: { paths: [{ path: /etc }] }
targets:
  os: { pipeline: os }
`,
  );
  t.after(p.cleanup);
  const marker = join(p.dir, 'exec-ran');
  const child = startImgmake(['--json', '-f', p.file, 'watch', 'os', '--exec', `cat out/os/word >> ${marker}`], { cwd: p.dir });
  t.after(() => child.kill('SIGKILL'));
  const ev = events(child);
  await ev.next((e) => e.type === 'stage-start' && e.node === 'os.slow', 'the slow stage starting');
  const yaml = await readFile(p.file, 'utf8');
  await writeFile(p.file, yaml.replace('word: one', 'word: two'));
  const batch = await ev.next(rebuilt, 'the cancelled build');
  assert.equal(batch.at(-1)!.result, 'cancelled');
  assert.ok(batch.some((e) => e.type === 'watch' && e.state === 'cancelling'));
  assert.ok(batch.some((e) => e.type === 'stage-cancelled' && e.node === 'os.slow'));
  assert.equal(existsSync(join(p.dir, 'out', 'os')), false, 'nothing exported');

  const again = (await ev.next(rebuilt, 'the build after it')).at(-1)!;
  assert.equal(again.result, 'built');
  assert.deepEqual(again.ran, ['os.after', 'os.slow']);
  assert.equal(await readFile(join(p.dir, 'out', 'os', 'word'), 'utf8'), 'two\n');
  await ev.next(idle, 'idle');
  // --exec ran once, after the good build (not after the cancelled one).
  const written = async () => (existsSync(marker) ? await readFile(marker, 'utf8') : '');
  for (let i = 0; i < 50 && !(await written()).endsWith('\n'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await readFile(marker, 'utf8'), 'two\n');

  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  assert.equal(code, 130);
});

test('watch --boot: each good rebuild (re)starts imgmake boot on the new image', { timeout: 360_000 }, async (t) => {
  const p = await projectWith(diskProject('FIRST-IMAGE'));
  t.after(p.cleanup);
  const child = startImgmake(['--json', '-f', p.file, 'watch', 'disk', '--boot', '--boot-args', '--bios --accel tcg --memory 64']);
  t.after(() => child.kill('SIGKILL'));
  const ev = events(child);
  // A generous bound: a software-emulated boot on a loaded machine (CI runs two files at once).
  const printed = async (marker: string): Promise<void> => {
    for (let i = 0; i < 1500 && !ev.stderr.includes(marker); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(ev.stderr.includes(marker), `${marker} on the booted console; stderr:\n${ev.stderr}`);
  };
  assert.equal((await ev.next(rebuilt, 'first build')).at(-1)!.result, 'built');
  await printed('FIRST-IMAGE');
  await ev.next(idle, 'idle');
  await writeFile(p.file, diskProject('SECOND-IMAGE'));
  assert.equal((await ev.next(rebuilt, 'rebuild')).at(-1)!.result, 'built');
  await printed('SECOND-IMAGE');
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  assert.equal(code, 130);
});
