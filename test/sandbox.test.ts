/**
 * The sandbox, run for real: unshare + overlay prelude + bubblewrap, as root, on temp dirs.
 * Each test asserts on the host side (what landed where, what stayed untouched, which processes
 * and mounts remain), not only on what the stage printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bwrapSandbox } from '../src/sandbox/run.js';
import { SANDBOX_INPUTS, SANDBOX_TREE, type SandboxSpec } from '../src/sandbox/spec.js';
import { SOURCE_DATE_EPOCH } from '../src/key.js';
import {
  minimalRoot,
  mountsMentioning,
  processesWith,
  runScript,
  snapshot,
  tempDir,
  uniqueMarker,
  waitFor,
} from './helpers/sandbox-fixtures.js';

const T = { timeout: 60_000 };

/** A host-buildroot spec over a plain writable tree dir. */
function dirSpec(tree: string, over: Partial<SandboxSpec> = {}): Omit<SandboxSpec, 'argv' | 'env'> {
  return { buildroot: { kind: 'host' }, tree: { mount: { kind: 'dir', path: tree }, writable: true }, inputs: [], ...over };
}

function setup(): { dir: string; tree: string; cleanup: () => void } {
  const t = tempDir();
  const tree = join(t.dir, 'tree');
  mkdirSync(tree);
  return { dir: t.dir, tree, cleanup: t.cleanup };
}

function major(rdev: number): number {
  // (JS shifts are mod 32: the high bits need a division, not `>>> 32`.)
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
}

test('the tree is read-write at /run/imgmake/tree (the default cwd); output lands on the host; the log gets stdout and stderr', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    writeFileSync(join(tree, 'in.txt'), 'from host\n');
    const { result, log } = await runScript(
      dirSpec(tree),
      'pwd; read -r l < in.txt; echo "read: $l"; echo made > out.txt; mkdir -p sub/dir; echo deep > sub/dir/f; echo to-stderr >&2; exit 0',
      dir,
    );
    assert.equal(result.exitCode, 0, log);
    assert.equal(result.cancelled, false);
    assert.equal(readFileSync(join(tree, 'out.txt'), 'utf8'), 'made\n');
    assert.equal(readFileSync(join(tree, 'sub/dir/f'), 'utf8'), 'deep\n');
    assert.equal(log, `${SANDBOX_TREE}\nread: from host\nto-stderr\n`);
  } finally {
    cleanup();
  }
});

test('a failing command reports its exit code; output before the failure is in the log', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    const { result, log } = await runScript(dirSpec(tree), 'echo before; exit 7', dir);
    assert.equal(result.exitCode, 7);
    assert.equal(result.cancelled, false);
    assert.equal(log, 'before\n');
  } finally {
    cleanup();
  }
});

test('writes outside the tree fail: /usr, /etc, /, an input; nothing appears on the host', T, async () => {
  const { dir, tree, cleanup } = setup();
  const input = join(dir, 'input');
  mkdirSync(input);
  writeFileSync(join(input, 'keep'), 'input\n');
  const name = uniqueMarker();
  const targets = [`/usr/${name}`, `/etc/${name}`, `/${name}`, `${SANDBOX_INPUTS}/in/${name}`, `${SANDBOX_INPUTS}/in/keep`];
  try {
    const before = snapshot(input);
    const script = targets.map((p) => `if echo x > ${p}; then echo "WROTE ${p}"; else echo "DENIED ${p}"; fi 2>/dev/null`).join('\n');
    const { result, log } = await runScript(dirSpec(tree, { inputs: [{ name: 'in', mount: { kind: 'dir', path: input } }] }), script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, targets.map((p) => `DENIED ${p}\n`).join(''));
    for (const p of [`/usr/${name}`, `/etc/${name}`, `/${name}`]) assert.equal(existsSync(p), false, p);
    assert.deepEqual(snapshot(input), before);
    assert.deepEqual(readdirSync(tree), []);
  } finally {
    cleanup();
  }
});

test('a symlink in the tree that points at host paths cannot make the stage write there', T, async () => {
  const { dir, tree, cleanup } = setup();
  const host = tempDir('imgmake-sandbox-victim-');
  const name = uniqueMarker();
  try {
    writeFileSync(join(host.dir, 'file'), 'original\n');
    const before = snapshot(host.dir);
    const rootBefore = readdirSync('/root').sort();
    symlinkSync(host.dir, join(tree, 'to-dir'));
    symlinkSync(join(host.dir, 'file'), join(tree, 'to-file'));
    symlinkSync('/root', join(tree, 'to-root'));
    symlinkSync(`../../../../../../../../..${host.dir}`, join(tree, 'relative-up'));
    const script = [
      'echo pwned > to-file; echo pwned >> to-file',
      'echo pwned > to-dir/new; mkdir -p to-dir/sub && echo pwned > to-dir/sub/f',
      'echo pwned > relative-up/new2; echo pwned > relative-up/file',
      `echo pwned > to-root/${name}`,
      'true',
    ].join('\n');
    const { result, log } = await runScript(dirSpec(tree), script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.deepEqual(snapshot(host.dir), before, 'the host directory a tree symlink points at was changed');
    assert.equal(readFileSync(join(host.dir, 'file'), 'utf8'), 'original\n');
    assert.deepEqual(readdirSync('/root').sort(), rootBefore);
    assert.equal(existsSync(`/root/${name}`), false);
    // The links themselves are still links (the stage did not replace them with files either).
    for (const l of ['to-dir', 'to-file', 'to-root', 'relative-up']) assert.ok(lstatSync(join(tree, l)).isSymbolicLink(), l);
  } finally {
    host.cleanup();
    cleanup();
  }
});

test('no network: a TCP server on the host loopback is unreachable from the stage (and reachable with network: true)', T, async () => {
  const { dir, tree, cleanup } = setup();
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    sock.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const probe = `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected`;
  try {
    const off = await runScript(dirSpec(tree), probe, dir);
    assert.notEqual(off.result.exitCode, 0, off.log);
    assert.equal(off.log.includes('connected'), false, off.log);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(connections, 0, 'the server saw a connection from a sandbox without network');

    // Control: the same probe with network reaches the server, so the probe can detect a leak.
    const on = await runScript(dirSpec(tree, { network: true }), probe, dir);
    assert.equal(on.result.exitCode, 0, on.log);
    assert.ok(await waitFor(() => connections === 1, 5000), `connections: ${connections}`);
  } finally {
    server.close();
    cleanup();
  }
});

test('the environment is cleared: only PATH, SOURCE_DATE_EPOCH, the spec env and PWD (bwrap sets it to the tree)', T, async () => {
  const { dir, tree, cleanup } = setup();
  process.env['IMGMAKE_SANDBOX_TEST_LEAK'] = 'leaked';
  try {
    const logFile = join(dir, 'env.log');
    const result = await bwrapSandbox.run(
      { ...dirSpec(tree), argv: ['/usr/bin/env'], env: { LANG: 'C.UTF-8' } },
      { logFile },
    );
    assert.equal(result.exitCode, 0);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').sort();
    assert.deepEqual(lines, [
      'LANG=C.UTF-8',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `PWD=${SANDBOX_TREE}`,
      `SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}`,
    ]);
  } finally {
    delete process.env['IMGMAKE_SANDBOX_TEST_LEAK'];
    cleanup();
  }
});

test('pid namespace: the stage is a low pid and sees none of the host processes', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    const script = 'echo "pid=$$"; for p in /proc/[0-9]*; do printf "%s " "${p#/proc/}"; tr "\\0" " " < "$p/cmdline"; echo; done';
    const { result, log } = await runScript(dirSpec(tree), script, dir);
    assert.equal(result.exitCode, 0, log);
    const pid = Number(/^pid=(\d+)$/m.exec(log)?.[1]);
    assert.ok(pid >= 1 && pid <= 3, log);
    const procs = log.split('\n').slice(1).filter((l) => l.trim());
    assert.ok(procs.length <= 4, log); // bwrap's init, bash, and the tr/subshell of the moment
    assert.equal(procs.some((l) => /node|process_api/.test(l)), false, log);
    assert.equal(procs.some((l) => l.startsWith(`${process.pid} `) && l.includes('bash') === false), false);
  } finally {
    cleanup();
  }
});

test('the sandbox dies with imgmake: kill -9 of the parent leaves no process of the run', T, async () => {
  const { dir, tree, cleanup } = setup();
  const marker = uniqueMarker();
  // sleep sums its arguments: the marker rides along as "0" seconds would not be unique,
  // so it goes to bash as $0 of the inner command instead.
  const spec: SandboxSpec = { ...dirSpec(tree), argv: ['/bin/bash', '-c', 'sleep 300; true', marker], env: {} };
  const child = spawn(process.execPath, [fileURLToPath(new URL('./helpers/sandbox-child.js', import.meta.url))], {
    env: { IMGMAKE_TEST_SPEC: JSON.stringify(spec), IMGMAKE_TEST_LOG: join(dir, 'child.log'), PATH: process.env['PATH'] ?? '' },
    stdio: 'ignore',
  });
  try {
    const started = await waitFor(() => processesWith(marker).some((p) => p.cmdline.startsWith('/bin/bash -c sleep 300')), 15_000);
    assert.ok(started, `the sandbox did not start; log: ${existsSync(join(dir, 'child.log')) ? readFileSync(join(dir, 'child.log'), 'utf8') : '(none)'}`);
    // The sleep itself does not carry the marker: find it as a child of the marked bash.
    const bash = processesWith(marker).find((p) => p.cmdline.startsWith('/bin/bash -c sleep 300'))!;
    // bash forks, then the child execs sleep: on a loaded machine the child may still be bash.
    const sleepOf = (): number => {
      const pid = Number(readFileSync(`/proc/${bash.pid}/task/${bash.pid}/children`, 'utf8').trim().split(' ')[0]);
      return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\x00300') ? pid : 0;
    };
    assert.ok(await waitFor(() => sleepOf() > 0, 10_000), 'bash started sleep');
    const sleepPid = sleepOf();

    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const gone = await waitFor(() => processesWith(marker).length === 0 && !existsSync(`/proc/${sleepPid}/cmdline`), 10_000);
    assert.ok(gone, `left behind: ${JSON.stringify(processesWith(marker))}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const p of processesWith(marker)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    cleanup();
  }
});

test('descriptors imgmake inherits do not reach the stage: a host directory\'s cannot be written through, a host file\'s cannot be written', T, async () => {
  const { dir, tree, cleanup } = setup();
  const hostDir = join(dir, 'host-dir');
  mkdirSync(hostDir);
  const hostFile = join(dir, 'host-file');
  writeFileSync(hostFile, '');
  // What a launcher may leave open: fd 40 a directory, fd 41 a file open for appending. (Node
  // marks its first inherited descriptors close-on-exec at start-up, up to the first gap above
  // 15; one above a gap, like bash's 255 or a CI runner's, stays inheritable: these two.)
  const dirFd = openSync(hostDir, 'r');
  const fileFd = openSync(hostFile, 'a');
  const script = [
    'ls /proc/$$/fd | tr "\\n" " " > fds.txt',
    'for n in 40 41; do [ -e /proc/$$/fd/$n ] && echo "leak $n" >> leak.txt; done',
    'echo planted > /proc/self/fd/40/planted 2>/dev/null || true',
    'echo appended >> /proc/self/fd/41 2>/dev/null || true',
    'exit 0',
  ].join('\n');
  const spec: SandboxSpec = { ...dirSpec(tree), argv: ['/bin/sh', '-c', script], env: {} };
  const child = spawn(process.execPath, [fileURLToPath(new URL('./helpers/sandbox-child.js', import.meta.url))], {
    env: { IMGMAKE_TEST_SPEC: JSON.stringify(spec), IMGMAKE_TEST_LOG: join(dir, 'child.log'), PATH: process.env['PATH'] ?? '' },
    stdio: [...Array<'ignore'>(40).fill('ignore'), dirFd, fileFd],
  });
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, existsSync(join(dir, 'child.log')) ? readFileSync(join(dir, 'child.log'), 'utf8') : '(no log)');
    const fds = readFileSync(join(tree, 'fds.txt'), 'utf8').trim().split(' ');
    assert.ok(!fds.includes('40') && !fds.includes('41'), `the stage's descriptors: ${fds.join(' ')}`);
    assert.equal(existsSync(join(tree, 'leak.txt')), false, existsSync(join(tree, 'leak.txt')) ? readFileSync(join(tree, 'leak.txt'), 'utf8') : '');
    assert.deepEqual(readdirSync(hostDir), [], 'nothing written into the host directory');
    assert.equal(readFileSync(hostFile, 'utf8'), '', 'nothing appended to the host file');
  } finally {
    closeSync(dirFd);
    closeSync(fileFd);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    cleanup();
  }
});

test('cancellation: aborting the signal mid-run ends the run as cancelled and leaves no process', T, async () => {
  const { dir, tree, cleanup } = setup();
  const marker = uniqueMarker();
  const ac = new AbortController();
  try {
    const logFile = join(dir, 'cancel.log');
    const running = bwrapSandbox.run({ ...dirSpec(tree), argv: ['/bin/bash', '-c', 'sleep 300; true', marker], env: {} }, { logFile, signal: ac.signal });
    assert.ok(await waitFor(() => processesWith(marker).some((p) => p.cmdline.startsWith('/bin/bash')), 15_000), 'the sandbox did not start');
    ac.abort();
    const result = await running;
    assert.equal(result.cancelled, true);
    assert.notEqual(result.exitCode, 0);
    assert.ok(result.ms < 30_000, `took ${result.ms} ms`);
    assert.ok(await waitFor(() => processesWith(marker).length === 0, 10_000), `left behind: ${JSON.stringify(processesWith(marker))}`);
  } finally {
    for (const p of processesWith(marker)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    cleanup();
  }
});

test('writable overlay: merged view inside; lowers untouched; upper holds only the diff; no mount left on the host', T, async () => {
  const t = tempDir();
  // Awkward names on purpose: the prelude must quote them.
  const layersDir = join(t.dir, "layers dir 'q'");
  const mountpoint = join(t.dir, 'mnt point');
  try {
    for (const d of ['l1', 'l2', 'up', 'wk']) mkdirSync(join(layersDir, d), { recursive: true });
    mkdirSync(mountpoint);
    writeFileSync(join(layersDir, 'l2', 'a'), 'base\n'); // appended to
    writeFileSync(join(layersDir, 'l2', 'b'), 'doomed\n'); // deleted
    writeFileSync(join(layersDir, 'l2', 'shadowed'), 'old\n');
    writeFileSync(join(layersDir, 'l1', 'shadowed'), 'new\n'); // topmost lower wins
    writeFileSync(join(layersDir, 'l1', 't'), 'top\n'); // left alone
    const l1 = snapshot(join(layersDir, 'l1'));
    const l2 = snapshot(join(layersDir, 'l2'));

    const spec = {
      buildroot: { kind: 'host' as const },
      tree: { mount: { kind: 'overlay' as const, layersDir, lowers: ['l1', 'l2'], upper: 'up', work: 'wk', mountpoint }, writable: true },
      inputs: [],
    };
    const script = [
      'echo "before: $(echo *)"; read -r s < shadowed; echo "shadowed: $s"',
      'echo more >> a; rm b; echo new > c',
      'echo "after: $(echo *)"; echo "a: $(tr "\\n" " " < a)"',
      // mountinfo: field 5 is the mount point, the type follows the " - " separator.
      `awk '$5 == "${SANDBOX_TREE}"' /proc/self/mountinfo | grep -q ' - overlay ' && echo overlay-mounted`,
    ].join('\n');
    const { result, log } = await runScript(spec, script, t.dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, 'before: a b shadowed t\nshadowed: new\nafter: a c shadowed t\na: base more \noverlay-mounted\n');

    // Invariant 2: the lower layers are byte-for-byte, inode-for-inode unchanged.
    assert.deepEqual(snapshot(join(layersDir, 'l1')), l1);
    assert.deepEqual(snapshot(join(layersDir, 'l2')), l2);
    // The upper dir is the diff: the appended file (copied up whole), a whiteout, the new file.
    const up = join(layersDir, 'up');
    assert.deepEqual(readdirSync(up).sort(), ['a', 'b', 'c']);
    assert.equal(readFileSync(join(up, 'a'), 'utf8'), 'base\nmore\n');
    assert.equal(readFileSync(join(up, 'c'), 'utf8'), 'new\n');
    const wh = lstatSync(join(up, 'b'));
    assert.ok(wh.isCharacterDevice(), 'a deletion is a whiteout character device');
    assert.equal(wh.rdev, 0, 'whiteout is device 0:0');
    // No mount outlives the run, and none ever reached the host's mount table.
    assert.deepEqual(mountsMentioning(t.dir), []);
    assert.deepEqual(readdirSync(mountpoint), []);
  } finally {
    t.cleanup();
  }
});

test('read-only overlay inputs (two lowers, and a single lower) are readable and not writable', T, async () => {
  const { dir, tree, cleanup } = setup();
  const layersDir = join(dir, 'layers');
  try {
    for (const d of ['l1', 'l2', 'solo', 'mnt1', 'mnt2']) mkdirSync(join(layersDir, d), { recursive: true });
    writeFileSync(join(layersDir, 'l2', 'a'), 'from l2\n');
    writeFileSync(join(layersDir, 'l1', 't'), 'from l1\n');
    writeFileSync(join(layersDir, 'solo', 's'), 'from solo\n');
    const before = ['l1', 'l2', 'solo'].map((l) => snapshot(join(layersDir, l)));
    const spec = dirSpec(tree, {
      inputs: [
        { name: 'two', mount: { kind: 'overlay', layersDir, lowers: ['l1', 'l2'], mountpoint: join(layersDir, 'mnt1') } },
        { name: 'one', mount: { kind: 'overlay', layersDir, lowers: ['solo'], mountpoint: join(layersDir, 'mnt2') } },
      ],
    });
    const I = SANDBOX_INPUTS;
    const script = [
      `cat ${I}/two/a ${I}/two/t ${I}/one/s`,
      `for p in ${I}/two/new ${I}/two/a ${I}/one/new ${I}/one/s; do if echo x >> $p; then echo "WROTE $p"; else echo "DENIED $p"; fi 2>/dev/null; done`,
      `rm ${I}/two/t 2>/dev/null && echo REMOVED; cp ${I}/two/a ${I}/one/s . && echo copied`,
    ].join('\n');
    const { result, log } = await runScript(spec, script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(
      log,
      ['from l2', 'from l1', 'from solo', `DENIED ${I}/two/new`, `DENIED ${I}/two/a`, `DENIED ${I}/one/new`, `DENIED ${I}/one/s`, 'copied', ''].join('\n'),
    );
    assert.deepEqual(['l1', 'l2', 'solo'].map((l) => snapshot(join(layersDir, l))), before);
    assert.deepEqual(readdirSync(tree).sort(), ['a', 's']);
    assert.deepEqual(mountsMentioning(dir), []);
  } finally {
    cleanup();
  }
});

test('a read-only tree (an export) is readable and not writable', T, async () => {
  const { dir, tree, cleanup } = setup();
  const out = join(dir, 'out');
  mkdirSync(out);
  try {
    writeFileSync(join(tree, 'disk.qcow2'), 'image\n');
    const before = snapshot(tree);
    const { result, log } = await runScript(
      dirSpec(tree, { tree: { mount: { kind: 'dir', path: tree }, writable: false }, binds: [{ src: out, dest: '/run/imgmake/out', writable: true }] }),
      'cp disk.qcow2 /run/imgmake/out/ && echo exported; if echo x > new; then echo WROTE; else echo denied; fi 2>/dev/null',
      dir,
    );
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, 'exported\ndenied\n');
    assert.deepEqual(snapshot(tree), before);
    assert.equal(readFileSync(join(out, 'disk.qcow2'), 'utf8'), 'image\n');
  } finally {
    cleanup();
  }
});

test('a tree buildroot (an overlay of two layers) is the whole of /, read-only; the host /usr is not there', T, async () => {
  const { dir, tree, cleanup } = setup();
  const layersDir = join(dir, 'br-layers');
  try {
    mkdirSync(join(layersDir, 'base'), { recursive: true });
    mkdirSync(join(layersDir, 'top', 'etc'), { recursive: true });
    mkdirSync(join(layersDir, 'mnt'));
    minimalRoot(join(layersDir, 'base'));
    writeFileSync(join(layersDir, 'top', 'etc', 'os-release'), 'ID=imgmake-test-root\n');
    const before = snapshot(layersDir);
    const spec = dirSpec(tree, {
      buildroot: { kind: 'tree', mount: { kind: 'overlay', layersDir, lowers: ['top', 'base'], mountpoint: join(layersDir, 'mnt') } },
    });
    const script = [
      'read -r l < /etc/os-release; echo "$l"',
      'for p in /usr/bin/env /usr/bin/python3 /usr/bin/sleep; do [ -e $p ] && echo "HOST $p"; done',
      'if echo x > /usr/new; then echo WROTE-usr; else echo usr-ro; fi 2>/dev/null',
      'if echo x > /new; then echo WROTE-root; else echo root-ro; fi 2>/dev/null',
      'echo built > out; echo "$PATH"',
    ].join('\n');
    const logFile = join(dir, 'br.log');
    const result = await bwrapSandbox.run({ ...spec, argv: ['/usr/bin/bash', '-c', script], env: {} }, { logFile });
    const log = readFileSync(logFile, 'utf8');
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, 'ID=imgmake-test-root\nusr-ro\nroot-ro\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
    assert.equal(readFileSync(join(tree, 'out'), 'utf8'), 'built\n');
    assert.deepEqual(snapshot(layersDir), before);
    assert.deepEqual(mountsMentioning(dir), []);
  } finally {
    cleanup();
  }
});

test('apiFilesystems: /dev and /proc work inside the tree (as chroot needs); only empty dirs reach the tree', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    const spec = { ...dirSpec(tree), tree: { mount: { kind: 'dir' as const, path: tree }, writable: true, apiFilesystems: true } };
    const script = [
      'echo discarded > dev/null && echo dev-null-ok',
      '[ -c dev/urandom ] && echo urandom-ok',
      'read -r name _ < proc/self/status; echo "$name"',
      'chroot . /bin/true 2>/dev/null || echo chroot-needs-a-root-fs',
    ].join('\n');
    const { result, log } = await runScript(spec, script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, 'dev-null-ok\nurandom-ok\nName:\nchroot-needs-a-root-fs\n');
    assert.deepEqual(readdirSync(tree).sort(), ['dev', 'proc']);
    assert.deepEqual(readdirSync(join(tree, 'dev')), []);
    assert.deepEqual(readdirSync(join(tree, 'proc')), []);
    assert.deepEqual(mountsMentioning(dir), []);
  } finally {
    cleanup();
  }
});

test('a process that drops root can still read /etc/passwd and run tools (host buildroot)', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    const script = 'setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c "id -u; grep -c ^root: /etc/passwd; stat -c %a /etc"';
    const { result, log } = await runScript(dirSpec(tree), script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, '65534\n1\n755\n');
  } finally {
    cleanup();
  }
});

test('capabilities: chown and mknod work in the tree; mount does not; no CAP_SYS_ADMIN, no new privileges', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    writeFileSync(join(tree, 'owned'), 'x\n');
    const rootDev = statSync('/').dev; // the host's root filesystem device
    const script = [
      'chown 1234:5678 owned && echo chowned',
      'mknod null-dev c 1 3 && echo mknod-c',
      'chmod 4755 owned && echo setuid-bit',
      'if mount -t tmpfs none /tmp 2>/dev/null; then echo MOUNTED; else echo mount-denied; fi',
      'if mount --bind /run/imgmake/tree /mnt 2>/dev/null; then echo BOUND; else echo bind-denied; fi',
      // A block device node of the host's disk, made in the tree, cannot be opened (nodev).
      `mknod hostdisk b ${major(rootDev)} ${minor(rootDev)} && echo mknod-b`,
      'if head -c 1 hostdisk >/dev/null 2>&1; then echo READ-HOST-DISK; else echo disk-denied; fi',
      'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status',
    ].join('\n');
    const { result, log } = await runScript(dirSpec(tree), script, dir);
    assert.equal(result.exitCode, 0, log);
    const lines = log.trim().split('\n');
    assert.deepEqual(lines.slice(0, 7), ['chowned', 'mknod-c', 'setuid-bit', 'mount-denied', 'bind-denied', 'mknod-b', 'disk-denied']);
    const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(log)![1]}`);
    const bit = (n: number): boolean => ((capEff >> BigInt(n)) & 1n) === 1n;
    assert.equal(bit(21), false, 'CAP_SYS_ADMIN');
    assert.equal(bit(16), false, 'CAP_SYS_MODULE');
    assert.equal(bit(12), false, 'CAP_NET_ADMIN');
    assert.equal(bit(19), false, 'CAP_SYS_PTRACE');
    assert.ok(bit(0) && bit(27) && bit(31), 'CAP_CHOWN, CAP_MKNOD, CAP_SETFCAP');
    // no_new_privs: exec can never raise the permitted set (see the note on the bounding set).
    assert.match(log, /^NoNewPrivs:\s+1$/m);

    const owned = lstatSync(join(tree, 'owned'));
    assert.equal(owned.uid, 1234);
    assert.equal(owned.gid, 5678);
    assert.equal(owned.mode & 0o7777, 0o4755);
    const dev = lstatSync(join(tree, 'null-dev'));
    assert.ok(dev.isCharacterDevice());
    assert.deepEqual([major(dev.rdev), minor(dev.rdev)], [1, 3]);
  } finally {
    cleanup();
  }
});

// ── Issue 13, finding 1: a stage must not change anything host-global or learn host paths ──

/** A spec over a plain tree with a private /proc inside it too (as apt.install asks). */
function apiSpec(tree: string, over: Partial<SandboxSpec> = {}): Omit<SandboxSpec, 'argv' | 'env'> {
  return dirSpec(tree, { tree: { mount: { kind: 'dir', path: tree }, writable: true, apiFilesystems: true }, ...over });
}

test('finding 1: /proc/sys, /proc/sysrq-trigger, irq, bus, fs are read-only in /proc and in the tree\'s proc: core_pattern and drop_caches cannot be written', T, async () => {
  const { dir, tree, cleanup } = setup();
  const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
  try {
    const script = [
      'for P in /proc "$TREE/proc"; do',
      // Open for appending, write nothing: tells writable from not without changing a thing.
      '  for p in sys/kernel/core_pattern sys/kernel/modprobe sys/vm/drop_caches sysrq-trigger irq/default_smp_affinity; do',
      '    [ -e "$P/$p" ] || continue',
      '    if (exec 3>>"$P/$p") 2>/dev/null; then echo "WRITABLE $P/$p"; fi',
      '  done',
      // The writes of the probe: the same core_pattern back (harmless if it went through), and a cache drop.
      '  cp=$(cat "$P/sys/kernel/core_pattern")',
      '  if printf "%s\\n" "$cp" 2>/dev/null > "$P/sys/kernel/core_pattern"; then echo "WROTE $P core_pattern"; fi',
      '  if echo 1 2>/dev/null > "$P/sys/vm/drop_caches"; then echo "WROTE $P drop_caches"; fi',
      // Still readable, and the sandbox's own: its network namespace has only lo.
      '  ls "$P/sys/net/ipv4/conf" | tr "\\n" " "; echo',
      'done',
    ].join('\n');
    const { result, log } = await runScript({ ...apiSpec(tree), env: { TREE: SANDBOX_TREE } }, script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, 'all default lo \nall default lo \n');
    assert.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), before);
  } finally {
    cleanup();
  }
});

test('finding 1: /proc/keys, kcore, timer_list, sched_debug… read empty or not at all; /proc/acpi is empty', T, async () => {
  const { dir, tree, cleanup } = setup();
  try {
    const script = [
      'for P in /proc "$TREE/proc"; do',
      '  for p in keys key-users kcore timer_list timer_stats sched_debug latency_stats interrupts; do',
      '    [ -e "$P/$p" ] || continue',
      '    n=$(head -c 4096 "$P/$p" 2>/dev/null | wc -c); [ "$n" = 0 ] || echo "READ $n bytes of $P/$p"',
      '  done',
      '  for d in acpi asound scsi; do [ -d "$P/$d" ] && [ -n "$(ls -A "$P/$d")" ] && echo "LISTED $P/$d"; done',
      '  if (exec 3>>"$P/keys") 2>/dev/null; then :; fi', // a masked file is /dev/null: writable, and nothing
      'done',
      'echo done',
    ].join('\n');
    const { result, log } = await runScript({ ...apiSpec(tree), env: { TREE: SANDBOX_TREE } }, script, dir);
    assert.equal(result.exitCode, 0, log);
    assert.equal(log, 'done\n');
  } finally {
    cleanup();
  }
});

/** A perl script that calls each numbered syscall with harmless arguments and prints NAME ERRNO. */
const SYSCALL_PROBE = `
my @calls = (
  [keyctl => 250, 0, 0, 0, 0, 0], [add_key => 248, 0, 0, 0, 0, 0], [request_key => 249, 0, 0, 0, 0],
  [bpf => 321, 0, 0, 0], [perf_event_open => 298, 0, 0, 0, 0, 0], [userfaultfd => 323, 0],
  [kexec_load => 246, 0, 0, 0, 0], [init_module => 175, 0, 0, 0], [finit_module => 313, -1, 0, 0],
  [open_by_handle_at => 304, 0, 0, 0], [setns => 308, -1, 0], [mount => 165, 0, 0, 0, 0, 0],
  [fsopen => 430, 0, 0], [io_uring_setup => 425, 1, 0], [unshare_newuser => 272, 0x10000000],
  [unshare_newns => 272, 0x20000], [clone3 => 435, 0, 0], [unshare_fs => 272, 0x200],
);
for my $c (@calls) { my ($name, $nr, @args) = @$c; my $r = syscall($nr, @args); my $e = $r == -1 ? $! + 0 : 0; print "$name $e\\n"; }
`;

test('finding 1: seccomp: keyrings, bpf, perf, userfaultfd, kexec, modules, file handles, mounts, new user namespaces are denied (EPERM); clone3 is ENOSYS', T, async () => {
  const { dir, tree, cleanup } = setup();
  const run = join(dir, 'run');
  mkdirSync(run);
  writeFileSync(join(run, 'probe.pl'), SYSCALL_PROBE);
  try {
    const script = [
      'grep "^Seccomp:" /proc/self/status',
      'perl /run/imgmake/run/probe.pl',
      'if unshare -Ur true 2>/dev/null; then echo "unshare -Ur: WORKED"; else echo "unshare -Ur: denied"; fi',
      'if unshare -m true 2>/dev/null; then echo "unshare -m: WORKED"; else echo "unshare -m: denied"; fi',
      // What still works: threads and processes (clone), a plain unshare(CLONE_FS), chroot.
      '(sleep 0 & wait) && echo fork-ok',
    ].join('\n');
    const { result, log } = await runScript({ ...dirSpec(tree), runDir: run }, script, dir);
    assert.equal(result.exitCode, 0, log);
    const EPERM = 1;
    const ENOSYS = 38;
    assert.equal(
      log,
      [
        'Seccomp:\t2',
        ...['keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'userfaultfd', 'kexec_load', 'init_module', 'finit_module', 'open_by_handle_at', 'setns', 'mount', 'fsopen', 'io_uring_setup', 'unshare_newuser', 'unshare_newns'].map((n) => `${n} ${EPERM}`),
        `clone3 ${ENOSYS}`,
        'unshare_fs 0',
        'unshare -Ur: denied',
        'unshare -m: denied',
        'fork-ok',
        '',
      ].join('\n'),
    );
  } finally {
    cleanup();
  }
});

test('no host path inside: /proc/*/cmdline, /proc/*/environ and mountinfo (in /proc and the tree\'s proc) name no path of the cache, the work dir or the project', T, async () => {
  // Every host directory of the run lives under a directory whose name is a unique marker.
  const marker = uniqueMarker();
  const t = tempDir(`imgmake-${marker}-`);
  try {
    const layers = join(t.dir, 'cache', 'layers');
    const work = join(t.dir, 'cache', 'work', '1234-abcd');
    for (const d of [join(layers, 'k1'), join(layers, 'k2'), join(layers, 'k3'), join(work, 'upper'), join(work, 'work'), join(work, 'scratch', 'run'), join(work, 'scratch', 'two'), join(t.dir, 'project', 'files')]) {
      mkdirSync(d, { recursive: true });
    }
    writeFileSync(join(t.dir, 'project', 'files', 'motd'), 'hello\n');
    writeFileSync(join(layers, 'k1', 'from-k1'), '1\n');
    const spec: Omit<SandboxSpec, 'argv' | 'env'> = {
      buildroot: { kind: 'host' },
      // A first stage's tree, as store.begin(undefined) makes it: the upper and a work dir beside it.
      tree: { mount: { kind: 'dir', path: join(work, 'upper'), work: join(work, 'work') }, writable: true, apiFilesystems: true },
      inputs: [
        { name: 'two', mount: { kind: 'overlay', layersDir: layers, lowers: ['k1', 'k2'], mountpoint: join(work, 'scratch', 'two') } },
        { name: 'one', mount: { kind: 'dir', path: join(layers, 'k3') } },
        { name: 'motd', mount: { kind: 'file', path: join(t.dir, 'project', 'files', 'motd') } },
      ],
      runDir: join(work, 'scratch', 'run'),
    };
    const script = [
      'cat /run/imgmake/inputs/motd /run/imgmake/inputs/two/from-k1',
      'echo made > made',
      'for P in /proc "$TREE/proc"; do',
      '  cat "$P/self/mountinfo" "$P/1/mountinfo"',
      '  for p in "$P"/[0-9]*; do tr "\\0" " " < "$p/cmdline"; echo; tr "\\0" " " < "$p/environ"; echo; readlink "$p/cwd" "$p/root" "$p"/fd/* 2>/dev/null || true; done',
      'done',
    ].join('\n');
    const { result, log } = await runScript({ ...spec, env: { TREE: SANDBOX_TREE } }, script, t.dir);
    assert.equal(result.exitCode, 0, log);
    assert.match(log, /^hello\n1\n/);
    assert.match(log, / \/run\/imgmake\/tree /, 'the mount table was read');
    assert.match(log, /^bwrap /m, "bwrap's pid 1 command line was read");
    assert.equal(readFileSync(join(work, 'upper', 'made'), 'utf8'), 'made\n', 'the first stage writes into its upper dir');
    const leaks = log.split('\n').filter((l) => l.includes(marker) || l.includes(t.dir) || l.includes('/imgmake-sandbox-'));
    assert.deepEqual(leaks, []);
  } finally {
    t.cleanup();
  }
});
