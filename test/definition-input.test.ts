/**
 * A definition is untrusted input (a colleague's change, a pull request): through the real CLI,
 * it cannot read outside its project folder, cannot exhaust memory or print a stack trace, a
 * command-line variable it does not declare is an error, and imgmake run by another user says
 * it needs root in one line. Exit 2 and a message with file:line:col each time; the cache is
 * never touched. The exact messages are golden files in test/diagnostics/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { StageDef } from '../src/definition.js';
import type { RuleName, PipelineName } from '../src/ids.js';
import { loadRules } from '../src/rule.js';
import { stageSpec } from '../src/sandbox/stage.js';
import type { Store, WorkTree } from '../src/store/types.js';
import { bin, imgmake, projectWith, repoRoot, startImgmake } from './helpers/cli.js';
import { events } from './helpers/events.js';

const T = { timeout: 60_000 };

/** A folder outside every project, holding a file only root may read. */
async function hostSecret(): Promise<{ dir: string; file: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-host-'));
  const file = join(dir, 'secret');
  await writeFile(file, 'SECRET-FIRST-LINE: do not print me\nsecond\n', { mode: 0o600 });
  return { dir, file, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const COPY = (input: string): string => `version: 1
pipelines:
  rootfs:
    stages:
      - rule: files.copy
        inputs:
          data: { file: ${input} }
        options:
          items: [{ from: data, to: /data }]
targets:
  rootfs: { pipeline: rootfs }
`;

test('an include of a host file is exit 2 at the include, and nothing of the file is printed', T, async () => {
  const host = await hostSecret();
  const p = await projectWith('version: 1\ninclude:\n  - PATH\n');
  try {
    await symlink(host.dir, join(p.dir, 'hostdir'));
    for (const written of [host.file, `../${host.dir.split('/').pop()}/secret`, 'hostdir/secret']) {
      await writeFile(p.file, `version: 1\ninclude:\n  - ${written}\n`);
      const r = await imgmake(['-f', p.file, 'plan', 'hello'], { cwd: p.dir });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^imgmake\.yaml:3:5: error: included file ".*" (is outside|leads out of) the project folder/);
      assert.doesNotMatch(r.stderr + r.stdout, /SECRET|second/, 'no line of the host file is shown');
    }
    assert.equal(existsSync(join(p.dir, 'cache')), false, 'the cache is not touched');
  } finally {
    await p.cleanup();
    await host.cleanup();
  }
});

test('file: inputs outside the project are exit 2 with file:line:col; --allow-path admits a folder, and plan says so', T, async () => {
  const host = await hostSecret();
  const p = await projectWith(COPY(host.file));
  try {
    await symlink(host.dir, join(p.dir, 'hostdir'));
    await symlink('files', join(p.dir, 'inside'));
    const cases: [string, RegExp][] = [
      [host.file, /is outside the project folder/],
      ['../../../../../../../../etc/passwd', /leads out of the project folder through "\.\."/],
      ['hostdir/secret', /leads out of the project folder: hostdir is a symlink to /],
      ['hostdir', /leads out of the project folder: hostdir is a symlink to /],
    ];
    for (const [written, why] of cases) {
      await writeFile(p.file, COPY(written));
      const r = await imgmake(['-f', p.file, 'build', 'rootfs'], { cwd: p.dir });
      assert.equal(r.code, 2, `${written}: ${r.stderr}`);
      assert.match(r.stderr, /^imgmake\.yaml:7:25: error: input file "/, written);
      assert.match(r.stderr, why, written);
      assert.match(r.stderr, /--allow-path DIR/);
    }
    assert.equal(existsSync(join(p.dir, 'cache')), false, 'nothing ran, the cache is not touched');

    // A symlink inside the project that stays inside is fine.
    await writeFile(p.file, COPY('inside/motd'));
    assert.equal((await imgmake(['-f', p.file, 'targets'], { cwd: p.dir })).code, 0);

    // The explicit, visible way out: --allow-path, shown by plan (text and JSON).
    await writeFile(p.file, COPY(host.file));
    const plan = await imgmake(['-f', p.file, '--allow-path', host.dir, 'plan', 'rootfs'], { cwd: p.dir });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, new RegExp(`^imgmake: --allow-path: the definition may also read ${host.dir}$`, 'm'));
    const json = await imgmake(['--json', '-f', p.file, '--allow-path', host.dir, 'plan', 'rootfs'], { cwd: p.dir });
    assert.deepEqual(json.events.find((e) => e.type === 'allow-path'), { type: 'allow-path', dirs: [host.dir] });
    const build = await imgmake(['-f', p.file, '--allow-path', host.dir, 'build', 'rootfs'], { cwd: p.dir });
    assert.equal(build.code, 0, build.stderr + build.stdout);
    assert.match(build.stdout, new RegExp(`^imgmake: --allow-path: the definition may also read ${host.dir}$`, 'm'));
    assert.match(readFileSync(join(p.dir, 'out', 'rootfs', 'data'), 'utf8'), /^SECRET-FIRST-LINE/, 'allowed: the file is copied in');
    const missing = await imgmake(['-f', p.file, '--allow-path', join(host.dir, 'nope'), 'plan', 'rootfs'], { cwd: p.dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--allow-path .*nope does not exist/);
  } finally {
    await p.cleanup();
    await host.cleanup();
  }
});

test('a folder input holding symlinks to host files: files.copy copies the links, never what they point to', T, async () => {
  const host = await hostSecret();
  const p = await projectWith(COPY('data'));
  try {
    await mkdir(join(p.dir, 'data'));
    await writeFile(join(p.dir, 'data', 'plain'), 'plain\n');
    await symlink(host.file, join(p.dir, 'data', 'absolute'));
    await symlink(`../../../../../../../..${host.file}`, join(p.dir, 'data', 'relative'));
    await symlink(host.dir, join(p.dir, 'data', 'folder'));
    const r = await imgmake(['-f', p.file, 'build', 'rootfs'], { cwd: p.dir });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = join(p.dir, 'out', 'rootfs', 'data');
    assert.equal(readFileSync(join(out, 'plain'), 'utf8'), 'plain\n');
    for (const [name, target] of [
      ['absolute', host.file],
      ['relative', `../../../../../../../..${host.file}`],
      ['folder', host.dir],
    ] as const) {
      assert.ok(lstatSync(join(out, name)).isSymbolicLink(), `${name} stays a symlink`);
      assert.equal(readlinkSync(join(out, name)), target);
    }
    const everything = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? everything(join(d, e.name)) : e.isFile() ? [readFileSync(join(d, e.name), 'utf8')] : []));
    assert.ok(!everything(join(p.dir, 'out')).some((t) => t.includes('SECRET')), 'no host file content in the output');
  } finally {
    await p.cleanup();
    await host.cleanup();
  }
});

test('watch does not follow a folder input’s symlinks out of the project: a host file’s change rebuilds nothing, the link’s does', T, async (t) => {
  const host = await hostSecret();
  const p = await projectWith(COPY('data'));
  t.after(async () => {
    await p.cleanup();
    await host.cleanup();
  });
  await mkdir(join(p.dir, 'data'));
  await writeFile(join(p.dir, 'data', 'plain'), 'plain\n');
  await symlink(host.dir, join(p.dir, 'data', 'host'));
  const child = startImgmake(['--json', '-f', p.file, 'watch', 'rootfs']);
  t.after(() => child.kill('SIGKILL'));
  const ev = events(child);
  const rebuilt = (e: Record<string, any>) => e.type === 'rebuild';
  const idle = (e: Record<string, any>) => e.type === 'watch' && e.state === 'idle';
  const first = (await ev.next(rebuilt, 'first build')).at(-1)!;
  assert.equal(first.result, 'built', `the first build is not cancelled by the link's discovery: ${JSON.stringify(first)}`);
  await ev.next(idle, 'idle');
  // A host file behind the link: not watched (the sandbox and the key see only the link).
  await appendFile(host.file, 'changed\n');
  await new Promise((r) => setTimeout(r, 1500));
  // The link itself: the tree's copy of it changes.
  await rm(join(p.dir, 'data', 'host'));
  await symlink('../files', join(p.dir, 'data', 'host'));
  const link = (await ev.next(rebuilt, 'rebuild after the link changed')).at(-1)!;
  assert.deepEqual(link.changed, ['data/host'], 'the host file change made no rebuild of its own');
  assert.deepEqual(link.ran, ['rootfs.0']);
});

test('a file input swapped for a symlink out of the project after load is refused at bind time', T, async () => {
  const host = await hostSecret();
  const project = await mkdtemp(join(tmpdir(), 'imgmake-swap-'));
  try {
    await mkdir(join(project, 'data'));
    const rules = await loadRules();
    const rule = rules.get('files.copy' as RuleName)!;
    const stage: StageDef = {
      pipeline: 'rootfs' as PipelineName,
      index: 0,
      id: '0',
      rule: rule.name,
      ruleLoc: { file: join(project, 'imgmake.yaml'), line: 1, col: 1, endLine: 1, endCol: 1 },
      options: { items: [{ from: 'data', to: '/data' }] },
      optionLocs: {},
      inputs: [{ name: 'data', loc: { file: join(project, 'imgmake.yaml'), line: 1, col: 1, endLine: 1, endCol: 1 }, kind: 'file', path: join(project, 'data'), root: project, rel: 'data' }],
      loc: { file: join(project, 'imgmake.yaml'), line: 1, col: 1, endLine: 1, endCol: 1 },
    };
    const spec = async () => {
      const scratch = await mkdtemp(join(tmpdir(), 'imgmake-scratch-'));
      const work = { scratch, mount: { kind: 'dir', path: join(scratch, 'tree') } } as unknown as WorkTree;
      try {
        return await stageSpec({ stage, rule, store: {} as Store, work, treeOf: () => undefined });
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    };
    // As loaded: bound as it is.
    assert.deepEqual((await spec()).inputs, [{ name: 'data', mount: { kind: 'dir', path: join(project, 'data') } }]);
    // Swapped between load and the stage's start (an export into out/, another process).
    await rm(join(project, 'data'), { recursive: true });
    await symlink(host.dir, join(project, 'data'));
    await assert.rejects(spec(), /input data \(data\) changed since the definition was loaded/);
  } finally {
    await rm(project, { recursive: true, force: true });
    await host.cleanup();
  }
});

const BOMB = [
  'version: 1',
  'pipelines:',
  '  rootfs:',
  '    stages:',
  '      - rule: files.mkdir',
  '        options:',
  '          paths: [/etc]',
  '          x0: &a0 [lol]',
  ...Array.from({ length: 9 }, (_, i) => `          x${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]`),
];
const DOUBLING = ['version: 1', 'vars:', '  v0: "xx"', ...Array.from({ length: 40 }, (_, i) => `  v${i + 1}: "\${v${i}}\${v${i}}"`)];
const BAD: [string, string | Buffer, RegExp][] = [
  ['an alias bomb (9 levels of 9 aliases)', BOMB.join('\n'), /^imgmake\.yaml:17:20: error: aliases expand this file to more than 100,000 values/],
  ['40 variables doubling each other', DOUBLING.join('\n'), /^imgmake\.yaml:23:15: error: this value grows past 1 MiB of text here/],
  ['a 5 MiB file', `version: 1\n# ${'x'.repeat(5 * 1024 * 1024)}\n`, /^error: definition file .* is larger than 4 MiB/],
  ['a NUL', Buffer.from('version: 1\nvars:\n  a: "x\0y"\n'), /^imgmake\.yaml:3:8: error: control character U\+0000 \(NUL\)/],
  ['invalid UTF-8', Buffer.from([...Buffer.from('version: 1\nvars:\n  a: "caf'), 0xe9, ...Buffer.from('"\n')]), /^imgmake\.yaml:3:10: error: this file is not UTF-8/],
  ['20,000 nested [', `version: 1\nvars:\n  x: ${'['.repeat(20_000)}\n`, /^imgmake\.yaml:3:\d+: error: invalid YAML: lists or mappings nested too deep/],
];

for (const [what, content, expected] of BAD) {
  test(`a bad definition ends in a positioned error, exit 2, in seconds, with no line printed whole: ${what}`, T, async () => {
    const p = await projectWith('');
    try {
      await writeFile(p.file, content);
      const started = performance.now();
      const r = await imgmake(['-f', p.file, 'plan', 'hello'], { cwd: p.dir });
      assert.equal(r.code, 2, r.stderr.slice(0, 500));
      assert.match(r.stderr, expected);
      assert.doesNotMatch(r.stderr, /internal error|RangeError|\n\s+at /, 'no stack trace');
      assert.ok(r.stderr.split('\n').every((l) => l.length < 200), 'no line of the definition is printed whole');
      assert.ok(performance.now() - started < 15_000, `took ${Math.round(performance.now() - started)} ms`);
      assert.equal(existsSync(join(p.dir, 'cache')), false, 'the cache is not touched');
    } finally {
      await p.cleanup();
    }
  });
}

// Twelve whole processes: a generous bound for a loaded machine (each starts Node and imgmake).
test('--var and IMGMAKE_VAR_ for a variable the definition does not declare: exit 2 with a did-you-mean, for every command that loads it', { timeout: 240_000 }, async () => {
  const p = await projectWith(readFileSync(join(repoRoot, 'examples', 'hello', 'imgmake.yaml'), 'utf8'));
  try {
    const commands = [
      ['build', 'hello'],
      ['plan', 'hello'],
      ['watch', 'hello'],
      ['lock'],
      ['targets'],
      ['shell', 'rootfs.dirs'],
      ['export', 'rootfs.dirs', join(p.dir, 'x')],
      ['log', 'rootfs.dirs'],
      ['boot', 'hello'],
      ['cache', 'prune', '--keep', 'hello'],
    ];
    for (const c of commands) {
      const r = await imgmake(['-f', p.file, '--var', 'hostnme=web1', ...c], { cwd: p.dir });
      assert.equal(r.code, 2, `${c.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: --var hostnme=web1: the definition has no variable "hostnme"\nhint: did you mean "hostname"\?/, c.join(' '));
    }
    const env = await imgmake(['-f', p.file, 'plan', 'hello'], { cwd: p.dir, env: { IMGMAKE_VAR_timzone: 'UTC' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /^error: IMGMAKE_VAR_timzone \(in the environment\): the definition has no variable "timzone"\nhint: did you mean "timezone"\?/);
    assert.equal(existsSync(join(p.dir, 'cache')), false, 'nothing ran, the cache is not touched');
    // Declared ones and the host-provided ones are fine.
    const good = await imgmake(['-f', p.file, '--var', 'hostname=web1', '--var', 'debian_mirror=http://127.0.0.1/debian', 'targets'], { cwd: p.dir });
    assert.equal(good.code, 0, good.stderr);
  } finally {
    await p.cleanup();
  }
});

test('run by a user other than root: one line saying imgmake needs root and why, exit 2; rules and targets work', T, async (t) => {
  const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  if (spawnSync('setpriv', [...nobody, 'true']).status !== 0) return t.skip('setpriv cannot switch to uid 65534 here');
  if (spawnSync('setpriv', [...nobody, process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(bin)})`]).status !== 0) {
    return t.skip('the checkout is not readable by uid 65534');
  }
  const p = await projectWith(readFileSync(join(repoRoot, 'examples', 'hello', 'imgmake.yaml'), 'utf8'));
  try {
    await chmod(p.dir, 0o755);
    const run = (args: string[]) => spawnSync('setpriv', [...nobody, process.execPath, bin, '-f', p.file, ...args], { cwd: '/', encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    for (const [args, why] of [
      [['build', 'hello'], /it runs stages in bubblewrap sandboxes on overlayfs mounts/],
      [['plan', 'hello'], /it reads the cache and out\//],
      [['shell', 'rootfs.dirs'], /bubblewrap/],
      [['cache', 'ls'], /it reads the cache/],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${args.join(' ')}: one line, not ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: imgmake ${args[0]}( ls)? needs root: `));
      assert.match(r.stderr, why);
      assert.doesNotMatch(r.stderr, /EACCES/);
    }
    const targets = run(['targets']);
    assert.equal(targets.status, 0, targets.stderr);
    assert.match(targets.stdout, /^hello {2}\(pipeline tarball/m);
    assert.equal(run(['rules']).status, 0);
    assert.equal(existsSync(join(p.dir, 'cache')), false, 'no cache was made');
  } finally {
    await p.cleanup();
  }
});
