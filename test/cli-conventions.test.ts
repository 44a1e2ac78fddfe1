/**
 * The command line's conventions (issue 19), each on the real `imgmake` with a copy of
 * examples/hello (no network, seconds): --version, the definition found upward and -C, the
 * default target, --help's environment, exit codes and examples, completion, a mistyped command,
 * did-you-mean for rules, read-only commands that make no cache, one size grammar and IEC units,
 * cache gc --dry-run, clean, and the failed stage's `imgmake log NODE`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bin, imgmake, repoRoot, tempProject } from './helpers/cli.js';
import { formatSize, parseSize, SIZE_PATTERN } from '../src/size.js';
import { EXIT_CODES } from '../src/cli/exit.js';
import { ENVIRONMENT, EXAMPLES } from '../src/cli/help.js';

type Project = Awaited<ReturnType<typeof tempProject>>;
let p: Project;
before(async () => {
  p = await tempProject('hello');
  mkdirSync(join(p.dir, 'sub', 'deep'), { recursive: true });
});
after(() => p.cleanup());

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

test('--version and -V print package.json\'s version', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await imgmake([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), version);
  }
});

test('the definition is found upward from the current folder, and -C DIR changes folder first', async () => {
  const up = await imgmake(['targets', '--names'], { cwd: join(p.dir, 'sub', 'deep') });
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(up.stdout.trim().split('\n'), ['hello', 'rootfs']);
  const c = await imgmake(['-C', join(p.dir, 'sub'), 'targets', '--names'], { cwd: '/' });
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(c.stdout.trim().split('\n'), ['hello', 'rootfs']);
  // -f is relative to the -C folder.
  const f = await imgmake(['-C', p.dir, '-f', 'imgmake.yaml', 'targets', '--names'], { cwd: '/' });
  assert.equal(f.code, 0, f.stderr);
  const none = await imgmake(['targets'], { cwd: '/' });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no imgmake\.yaml in \/ or any folder above it/);
  const bad = await imgmake(['-C', join(p.dir, 'nope'), 'targets']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /-C .*nope: no such folder/);
});

test('a bare build builds the default target and says which; default: true picks another', async () => {
  const cache = join(p.dir, 'default-cache');
  const r = await imgmake(['build', '--json', '--cache', cache], { cwd: p.dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /the default target is hello/);
  assert.deepEqual(r.events.find((e) => e.type === 'plan')?.targets, ['hello']);
  assert.ok(existsSync(join(p.dir, 'out', 'hello', 'hello.tar')));

  const q = await tempProject('hello');
  try {
    const yaml = readFileSync(q.file, 'utf8').replace('  rootfs:\n    pipeline: rootfs', '  rootfs:\n    pipeline: rootfs\n    default: true');
    writeFileSync(q.file, yaml);
    const t = await imgmake(['targets', '--json'], { cwd: q.dir });
    assert.deepEqual(t.events.map((e) => [e.name, e.default]), [['hello', false], ['rootfs', true]]);
    const plan = await imgmake(['plan'], { cwd: q.dir });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stderr, /the default target is rootfs/);
    assert.doesNotMatch(plan.stdout, /tarball/);
    // Two marked: an error at the second, with its line.
    writeFileSync(q.file, yaml.replace('    export: [hello.tar]', '    export: [hello.tar]\n    default: true'));
    const two = await imgmake(['targets'], { cwd: q.dir });
    assert.equal(two.code, 2);
    assert.match(two.stderr, /imgmake\.yaml:\d+:\d+.*targets "hello" and "rootfs" are both marked "default: true"/);
  } finally {
    await q.cleanup();
  }
});

test('--help lists every IMGMAKE_ variable the code reads, the exit codes and an example per command', async () => {
  const r = await imgmake(['--help']);
  assert.equal(r.code, 0);
  const read = new Set<string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      // src/blueprint/ documents composer's own size grammar for blueprint input ("2 GB" is 2·10⁹
      // there, as in composer): input it must accept, not a size imgmake prints.
      if (e.isDirectory()) {
        if (e.name !== 'blueprint') walk(join(d, e.name));
      }
      else if (e.name.endsWith('.ts')) for (const m of readFileSync(join(d, e.name), 'utf8').matchAll(/\bIMGMAKE_[A-Z_]+[A-Za-z]*/g)) read.add(m[0]);
    }
  };
  walk(join(repoRoot, 'src'));
  // The sandbox's random marker is not a variable anyone sets; IMGMAKE_VAR_ is IMGMAKE_VAR_NAME.
  read.delete('IMGMAKE_SANDBOX_');
  read.delete('IMGMAKE_VAR_');
  assert.ok(read.size >= 8, [...read].join(' '));
  for (const name of read) {
    const shown = name.startsWith('IMGMAKE_VAR_') ? 'IMGMAKE_VAR_NAME' : name;
    assert.ok(ENVIRONMENT.some(([n]) => n === shown), `${name} is read but not in help.ts's ENVIRONMENT`);
    assert.match(r.stdout, new RegExp(`\\b${shown}\\b`));
  }
  for (const [code, meaning] of EXIT_CODES) assert.ok(r.stdout.includes(`${code}`) && r.stdout.includes(meaning), `exit code ${code}`);
  const commands = commandsOfHelp(r.stdout);
  for (const c of commands) {
    assert.ok(EXAMPLES[c], `no example for ${c}`);
    const sub = await imgmake([...c.split(' '), '--help']);
    assert.match(sub.stdout, /Example:\n  imgmake /, c);
  }
  const cache = await imgmake(['cache', '--help']);
  for (const c of commandsOfHelp(cache.stdout)) assert.ok(EXAMPLES[`cache ${c}`], `no example for cache ${c}`);
});

/** The command names of a commander help text's "Commands:" list (without `help`). */
function commandsOfHelp(text: string): string[] {
  const block = text.split('\nCommands:\n')[1]!.split('\n\n')[0]!;
  return block
    .split('\n')
    .map((l) => /^  (\S+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n !== 'help');
}

test("the README's Commands section and --help name the same commands", async () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split('\n## Commands\n')[1]!.split('\n## ')[0]!;
  const documented = new Set([...section.matchAll(/^\| `imgmake ((?:cache )?[a-z]+)/gm)].map((m) => m[1]!));
  const top = commandsOfHelp((await imgmake(['--help'])).stdout).filter((c) => c !== 'cache');
  const cache = commandsOfHelp((await imgmake(['cache', '--help'])).stdout).map((c) => `cache ${c}`);
  assert.deepEqual([...documented].sort(), [...top, ...cache].sort());
});

test('a mistyped command: the suggestion and where help is, not the whole help; exit 2', async () => {
  const r = await imgmake(['biuld']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'biuld'/);
  assert.match(r.stderr, /Did you mean build\?/);
  assert.match(r.stderr, /imgmake --help lists the commands/);
  assert.doesNotMatch(r.stderr, /Options:|Commands:/);
  assert.ok(r.stderr.split('\n').length < 6, r.stderr);
  const o = await imgmake(['cache', 'gc', '--dry-rn']);
  assert.equal(o.code, 2);
  assert.match(o.stderr, /--dry-run/);
  assert.match(o.stderr, /imgmake cache gc --help shows its usage/);
});

test('imgmake rules NAME and an unknown target say "did you mean"', async () => {
  const r = await imgmake(['rules', 'files.cpy']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no rule named "files\.cpy"\nhint: did you mean "files\.copy"\?/);
  const t = await imgmake(['plan', 'helo', '--cache', join(p.dir, 'absent')], { cwd: p.dir });
  assert.equal(t.code, 2);
  assert.match(t.stderr, /did you mean "hello"\?/);
});

test('read-only commands never create the cache they were pointed at, and say it is not there', async () => {
  const absent = join(p.dir, 'no-such-cache');
  for (const args of [['plan', 'hello'], ['cache', 'info'], ['cache', 'ls'], ['cache', 'gc', '--max-size', '0', '--dry-run'], ['targets'], ['rules']]) {
    const r = await imgmake([...args, '--cache', absent], { cwd: p.dir });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(!existsSync(absent), `${args.join(' ')} made ${absent}`);
    if (args[0] !== 'targets' && args[0] !== 'rules') assert.match(r.stderr, new RegExp(`no cache at ${absent}`), args.join(' '));
  }
  // Without a cache and without an output, everything runs; an out/hello current for the
  // tarball stage's key (delivered there by the default-target test's build) is done, cache or not.
  const plan = await imgmake(['plan', 'hello', '--cache', absent, '--out', join(p.dir, 'no-such-out')], { cwd: p.dir });
  assert.match(plan.stdout, /9 of 9 stages will run/);
  const current = await imgmake(['plan', 'hello', '--cache', absent], { cwd: p.dir });
  assert.match(current.stdout, /^cached +tarball\.tar +archive\.tar +— its output is current in out\/$/m);
  assert.match(current.stdout, /nothing will run; 8 not needed/);
  assert.ok(!existsSync(absent));
  const info = await imgmake(['cache', 'info', '--json', '--cache', absent], { cwd: p.dir });
  assert.equal(info.events[0]?.exists, false);
});

test('one size grammar (rules and cache) and IEC units when printed', () => {
  for (const [text, bytes] of [['512', 512], ['4G', 4 * 1024 ** 3], ['4GiB', 4 * 1024 ** 3], ['10g', 10 * 1024 ** 3], ['1.5K', 1536], ['0', 0], ['7B', 7]] as const) {
    assert.equal(parseSize(text), bytes, text);
    assert.match(text, new RegExp(SIZE_PATTERN), text);
  }
  for (const bad of ['', 'G', '4X', '-1', '4 GiBs', '1e9', '4iB', '4GB', '500MB']) {
    assert.equal(parseSize(bad), undefined, bad);
    assert.doesNotMatch(bad, new RegExp(SIZE_PATTERN), bad);
  }
  // Every size option of every rule uses the same grammar.
  const schema = readFileSync(join(repoRoot, 'rules', 'disk.partition', 'rule.json'), 'utf8');
  const body = SIZE_PATTERN.slice(1, -1);
  // (A rule may bound it further: disk.partition refuses a size of zero with a "not" pattern.)
  const patterns = [...schema.matchAll(/"(size|start)": \{[^}]*?"pattern": "([^"]*)"/g)].map((m) => JSON.parse(`"${m[2]}"`) as string);
  assert.equal(patterns.length, 3);
  for (const pat of patterns) assert.ok(pat === SIZE_PATTERN || pat === `^(${body}|rest)$`, pat);
  assert.equal(formatSize(512), '512 B');
  assert.equal(formatSize(8 * 1024 * 1024), '8.0 MiB');
  assert.equal(formatSize(3.5 * 1024 ** 3), '3.5 GiB');
});

test('no size is printed in decimal units (MB, GB, kB) by the code', () => {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      // src/blueprint/ documents composer's own size grammar for blueprint input ("2 GB" is 2·10⁹
      // there, as in composer): input it must accept, not a size imgmake prints.
      if (e.isDirectory()) {
        if (e.name !== 'blueprint') walk(join(d, e.name));
      }
      else if (e.name.endsWith('.ts')) {
        readFileSync(join(d, e.name), 'utf8').split('\n').forEach((l, i) => {
          if (/`[^`]*\d\)?\s*(kB|MB|GB)\b[^`]*`|\/ 1e[369]\)/.test(l) && !/^\s*(\*|\/\/)/.test(l)) hits.push(`${e.name}:${i + 1}: ${l.trim()}`);
        });
      }
    }
  };
  walk(join(repoRoot, 'src'));
  assert.deepEqual(hits, []);
});

test('cache gc --dry-run says what it would remove and removes nothing', async () => {
  const cache = join(p.dir, 'default-cache'); // built by the default-target test
  const before = await imgmake(['cache', 'ls', '--json', '--cache', cache], { cwd: p.dir });
  const trees = before.events.filter((e) => e.type === 'cache-tree').length;
  // Every stage's tree but the tarball's, which went to out/hello (src/deliver.ts).
  assert.ok(trees >= 8, before.stdout);
  const r = await imgmake(['cache', 'gc', '--max-size', '0', '--dry-run', '--cache', cache], { cwd: p.dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^would remove tree rootfs\./m);
  assert.match(r.stdout, /--dry-run: would remove \d+ trees.*nothing was removed/);
  const after = await imgmake(['cache', 'ls', '--json', '--cache', cache], { cwd: p.dir });
  assert.equal(after.events.filter((e) => e.type === 'cache-tree').length, trees);
  const plan = await imgmake(['plan', 'hello', '--cache', cache], { cwd: p.dir });
  assert.match(plan.stdout, /all 9 stages are cached/);
});

test('clean removes out/; --all needs --yes; a symlinked out/ is refused; a running build keeps its trees', async () => {
  const q = await tempProject('hello');
  try {
    const b = await imgmake(['build', 'hello'], { cwd: q.dir });
    assert.equal(b.code, 0, b.stderr);
    const no = await imgmake(['clean', '--all'], { cwd: q.dir });
    assert.equal(no.code, 2);
    assert.match(no.stderr, /add --yes/);
    assert.ok(existsSync(join(q.dir, 'out')) && existsSync(join(q.dir, 'cache')), 'nothing removed without --yes');
    const c = await imgmake(['clean'], { cwd: join(q.dir, 'files') });
    assert.equal(c.code, 0, c.stderr);
    assert.ok(!existsSync(join(q.dir, 'out')));
    assert.ok(existsSync(join(q.dir, 'cache')), 'the cache stays without --all');

    // A running build (here: a process holding a lease on every key, as a build does): clean
    // --all removes nothing it uses, says so, and keeps the cache folder.
    const inv = await imgmake(['cache', 'ls', '--json'], { cwd: q.dir });
    const keys = inv.events.filter((e) => e.type === 'cache-tree').map((e) => e.key as string);
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      const gc = await import(${JSON.stringify(join(repoRoot, 'dist', 'src', 'store', 'gc.js'))});
      await gc.takeLease(${JSON.stringify(join(q.dir, 'cache'))}, { keys: ${JSON.stringify(keys)}, debs: [] });
      console.log('leased');
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((done) => holder.stdout!.once('data', () => done()));
      const busy = await imgmake(['clean', '--all', '--yes'], { cwd: q.dir });
      assert.equal(busy.code, 0, busy.stderr);
      assert.match(busy.stdout, /1 running build uses the cache/);
      const still = await imgmake(['plan', 'hello'], { cwd: q.dir });
      // The tarball's stage delivered to out/, which clean removed: it alone runs again.
      assert.match(still.stdout, /1 of 9 stages will run/);
      assert.match(still.stdout, /^will run +tarball\.tar /m);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((done) => holder.once('exit', done));
    }
    // Its process is gone now: a dead lease does not stop clean.
    const all = await imgmake(['clean', '--all', '--yes'], { cwd: q.dir });
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /removed the cache/);
    assert.ok(!existsSync(join(q.dir, 'cache')));

    // out/ as a symlink to a folder outside the project: refused, the folder untouched.
    const elsewhere = join(q.dir, '..', `${q.dir.split('/').pop()}-elsewhere`);
    mkdirSync(elsewhere, { recursive: true });
    writeFileSync(join(elsewhere, 'keep'), 'x');
    symlinkSync(elsewhere, join(q.dir, 'out'));
    const link = await imgmake(['clean'], { cwd: q.dir });
    assert.equal(link.code, 2);
    assert.match(link.stderr, /is a symlink .*does not follow it/);
    assert.ok(existsSync(join(elsewhere, 'keep')));
    execFileSync('rm', ['-rf', elsewhere]);
  } finally {
    await q.cleanup();
  }
});

test('completion: bash completes commands, options and target names; zsh and fish scripts are made', async () => {
  const script = await imgmake(['completion', 'bash']);
  assert.equal(script.code, 0, script.stderr);
  const complete = (words: string[]): string[] => {
    const line = words.map((w) => `'${w}'`).join(' ');
    const shim = `imgmake() { ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} "$@"; }`;
    const out = execFileSync('bash', ['-c', `${shim}\n${script.stdout}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _imgmake; printf '%s\\n' "\${COMPREPLY[@]}"`], { cwd: p.dir }).toString();
    return out.split('\n').filter(Boolean);
  };
  assert.deepEqual(complete(['imgmake', 'bu']), ['build']);
  assert.deepEqual(complete(['imgmake', 'cache', 'v']), ['verify']);
  assert.ok(complete(['imgmake', 'cache', 'gc', '--']).includes('--dry-run'));
  assert.deepEqual(complete(['imgmake', '--cache', '/tmp', 'build', 'h']), ['hello']);
  assert.deepEqual(complete(['imgmake', 'build', '--locked', 'r']), ['rootfs']);
  for (const shell of ['zsh', 'fish']) {
    const s = await imgmake(['completion', shell]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, shell === 'zsh' ? /compdef _imgmake imgmake/ : /complete -c imgmake -n '__fish_use_subcommand' -a 'build watch/);
    assert.match(s.stdout, /targets --names/);
  }
  const bad = await imgmake(['completion', 'tcsh']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bash, zsh, fish/);
});

test('a failed stage says imgmake log NODE', async () => {
  const q = await tempProject('hello');
  try {
    writeFileSync(q.file, readFileSync(q.file, 'utf8').replace('find . -mindepth 1', 'echo broken >&2; exit 3; find . -mindepth 1'));
    const r = await imgmake(['build', 'hello'], { cwd: q.dir });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAILED rootfs\.manifest/);
    assert.match(r.stdout, /imgmake log rootfs\.manifest prints it/);
    const log = await imgmake(['log', 'rootfs.manifest'], { cwd: q.dir });
    assert.match(log.stdout, /broken/);
  } finally {
    await q.cleanup();
  }
});
