/**
 * Pure unit tests of the sandbox's command line: bwrapArgs, mountScript, sandboxCommand, shq.
 * What the process then really sees is tested with bubblewrap in sandbox.test.ts; these pin the
 * argument list so that a change to it is a visible, reviewed change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { SOURCE_DATE_EPOCH } from '../src/key.js';
import {
  DEFAULT_PATH,
  SANDBOX_INPUTS,
  SANDBOX_RUN,
  SANDBOX_TREE,
  OVERLAY_VOLATILE,
  STAGE_CAPS,
  bwrapArgs,
  mountScript,
  overlaysOf,
  sandboxCommand,
  shq,
  type SandboxSpec,
  type TreeMount,
} from '../src/sandbox/spec.js';

const base = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  buildroot: { kind: 'host' },
  tree: { mount: { kind: 'dir', path: '/cache/tree' }, writable: true },
  inputs: [],
  argv: ['/run/imgmake/run/rule', '--flag'],
  env: {},
  ...over,
});

/** Index of the first occurrence of the consecutive run `seq` in `a`, or -1. */
function indexOfSeq(a: string[], seq: string[]): number {
  for (let i = 0; i + seq.length <= a.length; i++) if (seq.every((s, j) => a[i + j] === s)) return i;
  return -1;
}

function assertHasSeq(a: string[], seq: string[]): number {
  const i = indexOfSeq(a, seq);
  assert.notEqual(i, -1, `expected ${JSON.stringify(seq)} in ${JSON.stringify(a)}`);
  return i;
}

/** The option pairs before `--` (so an argv that says --bind is not mistaken for a mount). */
function optionsOf(a: string[]): string[] {
  return a.slice(0, a.indexOf('--'));
}

const overlay = (over: Partial<Extract<TreeMount, { kind: 'overlay' }>> = {}): TreeMount => ({
  kind: 'overlay',
  layersDir: '/cache/layers',
  lowers: ['l1', 'l2'],
  upper: 'up',
  work: 'wk',
  mountpoint: '/cache/mnt/tree',
  ...over,
});

test('host buildroot: the host /usr read-only, merged-/usr links, a few /etc files, no bind at /', () => {
  const a = bwrapArgs(base());
  assertHasSeq(a, ['--ro-bind', '/usr', '/usr']);
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) assertHasSeq(a, ['--symlink', `usr/${d}`, `/${d}`]);
  // /etc made 0755 before anything is bound into it (bwrap's default for a parent is 0700).
  assertHasSeq(a, ['--perms', '0755', '--dir', '/etc']);
  assert.ok(a.indexOf('/etc') < a.indexOf('/etc/passwd'));
  for (const f of ['/etc/ld.so.cache', '/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/alternatives']) {
    assertHasSeq(a, ['--ro-bind-try', f, f]);
  }
  // No other /etc (no resolv.conf, no hostname, no machine-id of the build host).
  const etc = optionsOf(a).filter((x) => x.startsWith('/etc/'));
  assert.deepEqual([...new Set(etc)].sort(), ['/etc/alternatives', '/etc/group', '/etc/ld.so.cache', '/etc/nsswitch.conf', '/etc/passwd']);
  const opts = optionsOf(a);
  for (let i = 0; i < opts.length; i++) {
    if (opts[i] === '--ro-bind' || opts[i] === '--bind') assert.notEqual(opts[i + 2], '/', 'nothing bound at / for a host buildroot');
  }
});

test('tree buildroot: its host path bound read-only at / before everything else; no host /usr', () => {
  for (const mount of [{ kind: 'dir', path: '/cache/br' } as TreeMount, overlay({ upper: undefined, work: undefined, mountpoint: '/cache/mnt/br' })]) {
    const a = bwrapArgs(base({ buildroot: { kind: 'tree', mount } }));
    const root = assertHasSeq(a, ['--ro-bind', mount.kind === 'dir' ? mount.path : mount.mountpoint, '/']);
    // bwrap stacks later mounts on top: / must precede /proc, /dev, /tmp, /run and the tree.
    for (const later of ['--proc', '--dev', '--tmpfs', SANDBOX_TREE]) assert.ok(a.indexOf(later) > root, `${later} after /`);
    assert.equal(indexOfSeq(a, ['--ro-bind', '/usr', '/usr']), -1);
    assert.equal(a.includes('--symlink'), false);
    assert.equal(a.includes('--ro-bind-try'), false, 'no host /etc leaks into a tree buildroot');
  }
});

test('private /proc, /dev, /tmp (sticky, for apt) and /run; / remounted read-only after every mount', () => {
  const a = bwrapArgs(base({ binds: [{ src: '/out', dest: '/run/imgmake/out', writable: true }], runDir: '/rules/x' }));
  assertHasSeq(a, ['--proc', '/proc', '--dev', '/dev']);
  assertHasSeq(a, ['--perms', '01777', '--tmpfs', '/tmp']);
  assertHasSeq(a, ['--perms', '0755', '--tmpfs', '/run']);
  const ro = assertHasSeq(a, ['--remount-ro', '/']);
  for (const x of ['--bind', '--ro-bind', '--ro-bind-try', '--symlink', '--tmpfs', '--dir', '--proc', '--dev']) {
    assert.ok(a.lastIndexOf(x) < ro, `${x} must come before --remount-ro / (it needs a writable root for its mount point)`);
  }
});

test('tree: read-write or read-only at /run/imgmake/tree; an overlay is bound from its mountpoint', () => {
  assertHasSeq(bwrapArgs(base()), ['--bind', '/cache/tree', SANDBOX_TREE]);
  const ro = bwrapArgs(base({ tree: { mount: { kind: 'dir', path: '/cache/tree' }, writable: false } }));
  assertHasSeq(ro, ['--ro-bind', '/cache/tree', SANDBOX_TREE]);
  assert.equal(indexOfSeq(ro, ['--bind', '/cache/tree', SANDBOX_TREE]), -1);
  assertHasSeq(bwrapArgs(base({ tree: { mount: overlay(), writable: true } })), ['--bind', '/cache/mnt/tree', SANDBOX_TREE]);
  // No tree (a lock step): the working directory is /.
  const none = bwrapArgs(base({ tree: undefined }));
  assert.equal(none.includes(SANDBOX_TREE), false);
  assertHasSeq(none, ['--chdir', '/', '--']);
});

test('apiFilesystems: a private /dev and /proc inside the tree, after the tree is bound; none by default', () => {
  const a = bwrapArgs(base({ tree: { mount: { kind: 'dir', path: '/cache/tree' }, writable: true, apiFilesystems: true } }));
  const tree = indexOfSeq(a, ['--bind', '/cache/tree', SANDBOX_TREE]);
  const dev = indexOfSeq(a, ['--dev', `${SANDBOX_TREE}/dev`]);
  const proc = indexOfSeq(a, ['--proc', `${SANDBOX_TREE}/proc`]);
  assert.ok(tree >= 0 && dev > tree && proc > tree, 'mounted over the bound tree, not under it');
  assert.equal(bwrapArgs(base()).includes(`${SANDBOX_TREE}/dev`), false);
});

test('inputs are always read-only, at /run/imgmake/inputs/NAME; the run dir read-only; extra binds as asked', () => {
  const a = bwrapArgs(
    base({
      inputs: [
        { name: 'base', mount: { kind: 'dir', path: '/cache/in1' } },
        { name: 'debs', mount: overlay({ upper: undefined, work: undefined, mountpoint: '/cache/mnt/debs' }) },
      ],
      runDir: '/rules/files.copy',
      binds: [
        { src: '/out', dest: '/run/imgmake/out', writable: true },
        { src: '/ro', dest: '/run/imgmake/ro', writable: false },
      ],
    }),
  );
  assertHasSeq(a, ['--ro-bind', '/cache/in1', `${SANDBOX_INPUTS}/base`]);
  assertHasSeq(a, ['--ro-bind', '/cache/mnt/debs', `${SANDBOX_INPUTS}/debs`]);
  for (let i = 0; i < a.length; i++) if (a[i] === '--bind') assert.ok(!a[i + 2]!.startsWith(SANDBOX_INPUTS), 'an input bound writable');
  assertHasSeq(a, ['--ro-bind', '/rules/files.copy', SANDBOX_RUN]);
  assertHasSeq(a, ['--bind', '/out', '/run/imgmake/out']);
  assertHasSeq(a, ['--ro-bind', '/ro', '/run/imgmake/ro']);
});

test('namespaces: network off unless asked, pid/ipc/uts unshared, dies with parent, new session unless interactive', () => {
  const a = bwrapArgs(base());
  assert.equal(a[0], '--die-with-parent');
  for (const x of ['--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--new-session']) assert.ok(a.includes(x), x);
  const net = bwrapArgs(base({ network: true }));
  assert.equal(net.includes('--unshare-net'), false);
  assert.ok(net.includes('--unshare-pid'));
  assert.equal(bwrapArgs(base({ interactive: true })).includes('--new-session'), false);
  assert.ok(bwrapArgs(base({ interactive: true })).includes('--die-with-parent'));
});

test('capabilities: all dropped first, then exactly the stage set; never CAP_SYS_ADMIN and friends', () => {
  const a = bwrapArgs(base());
  const drop = assertHasSeq(a, ['--cap-drop', 'ALL']);
  const added: string[] = [];
  a.forEach((x, i) => {
    if (x === '--cap-add') {
      assert.ok(i > drop, '--cap-add before --cap-drop ALL would be undone');
      added.push(a[i + 1]!);
    }
  });
  assert.deepEqual(added.sort(), [...STAGE_CAPS].sort());
  for (const needed of ['CAP_CHOWN', 'CAP_MKNOD', 'CAP_SETFCAP', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_SETUID', 'CAP_SETGID']) {
    assert.ok(added.includes(needed), needed);
  }
  for (const never of ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_MODULE', 'CAP_SYS_PTRACE', 'CAP_SYS_RAWIO', 'CAP_SYS_BOOT', 'CAP_BPF']) {
    assert.equal(added.includes(never), false, never);
  }
  assert.equal(indexOfSeq(a, ['--cap-add', 'ALL']), -1);
});

test('environment: cleared, then sorted --setenv with PATH and SOURCE_DATE_EPOCH defaults; spec values win', () => {
  const a = bwrapArgs(base({ env: { ZED: '1', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' } }));
  const clear = a.indexOf('--clearenv');
  assert.ok(clear > 0);
  const pairs: [string, string][] = [];
  a.forEach((x, i) => {
    if (x === '--setenv') {
      assert.ok(i > clear, '--setenv before --clearenv would be cleared');
      pairs.push([a[i + 1]!, a[i + 2]!]);
    }
  });
  assert.deepEqual(pairs, [
    ['DEBIAN_FRONTEND', 'noninteractive'],
    ['LANG', 'C.UTF-8'],
    ['PATH', DEFAULT_PATH],
    ['SOURCE_DATE_EPOCH', SOURCE_DATE_EPOCH],
    ['ZED', '1'],
  ]);
  const own = bwrapArgs(base({ env: { SOURCE_DATE_EPOCH: '1700000000', PATH: '/usr/bin' } }));
  assertHasSeq(own, ['--setenv', 'SOURCE_DATE_EPOCH', '1700000000']);
  assertHasSeq(own, ['--setenv', 'PATH', '/usr/bin']);
  assert.equal(own.filter((x) => x === 'SOURCE_DATE_EPOCH').length, 1);
});

test('working directory and argv: --chdir the tree by default, argv verbatim after --', () => {
  const argv = ['/bin/sh', '-c', 'echo "$1"', '--bind', '--', ' spaced '];
  const a = bwrapArgs(base({ argv }));
  const dd = a.indexOf('--');
  assert.deepEqual(a.slice(dd + 1), argv);
  assert.deepEqual(a.slice(dd - 2, dd), ['--chdir', SANDBOX_TREE]);
  assertHasSeq(bwrapArgs(base({ cwd: '/run/imgmake/run' })), ['--chdir', '/run/imgmake/run', '--']);
});

test('mountScript without overlays: only the exec', () => {
  assert.equal(mountScript(base()), 'set -eu\ncd /\nexec bwrap "$@"');
});

test('mountScript: a writable overlay with plain options, layers relative to the layers dir, topmost first', () => {
  const s = mountScript(base({ tree: { mount: overlay(), writable: true } }));
  const lines = s.split('\n');
  assert.deepEqual(lines, [
    'set -eu',
    'export LIBMOUNT_FORCE_MOUNT2=always',
    'cd /cache/layers',
    `mount -t overlay imgmake -o 'lowerdir=l1:l2,upperdir=up,workdir=wk,redirect_dir=off,metacopy=off,index=off,xino=off${OVERLAY_VOLATILE ? ',volatile' : ''}' /cache/mnt/tree`,
    'cd /',
    'exec bwrap "$@"',
  ]);
});

test('mountScript: read-only overlay (no upper) says ro and has no upperdir/workdir', () => {
  const s = mountScript(base({ inputs: [{ name: 'x', mount: overlay({ lowers: ['a', 'b', 'c'], upper: undefined, work: undefined }) }] }));
  const mount = s.split('\n').find((l) => l.startsWith('mount '))!;
  assert.equal(
    mount,
    "mount -t overlay imgmake -o 'ro,lowerdir=a:b:c,redirect_dir=off,metacopy=off,index=off,xino=off' /cache/mnt/tree",
  );
});

test('mountScript: a one-layer read-only overlay is a read-only bind (overlayfs refuses one lower without upper)', () => {
  const s = mountScript(base({ inputs: [{ name: 'x', mount: overlay({ lowers: ['only'], upper: undefined, work: undefined }) }] }));
  assert.deepEqual(s.split('\n').slice(2, 4), ['cd /cache/layers', 'mount --bind -o ro only /cache/mnt/tree']);
  assert.equal(s.includes('-t overlay'), false);
});

test('mountScript: overlays in order buildroot, tree, inputs', () => {
  const spec = base({
    buildroot: { kind: 'tree', mount: overlay({ upper: undefined, work: undefined, mountpoint: '/m/br' }) },
    tree: { mount: overlay({ mountpoint: '/m/tree' }), writable: true },
    inputs: [
      { name: 'i1', mount: overlay({ upper: undefined, work: undefined, mountpoint: '/m/i1' }) },
      { name: 'd', mount: { kind: 'dir', path: '/plain' } },
      { name: 'i2', mount: overlay({ upper: undefined, work: undefined, mountpoint: '/m/i2' }) },
    ],
  });
  assert.deepEqual(overlaysOf(spec).map((o) => o.mountpoint), ['/m/br', '/m/tree', '/m/i1', '/m/i2']);
  const targets = mountScript(spec)
    .split('\n')
    .filter((l) => l.startsWith('mount '))
    .map((l) => l.split(' ').at(-1));
  assert.deepEqual(targets, ['/m/br', '/m/tree', '/m/i1', '/m/i2']);
});

test('mountScript: a path with , : \\ or a newline is refused with a message naming it and --cache', () => {
  const bad: Partial<Extract<TreeMount, { kind: 'overlay' }>>[] = [
    { layersDir: '/cache,evil/layers' },
    { layersDir: '/cache:x/layers' },
    { lowers: ['l1', 'l,2'] },
    { lowers: ['l:1'] },
    { upper: 'u,p' },
    { work: 'w:k' },
    { lowers: ['a\\b'] },
    { lowers: ['a\nb'] },
  ];
  for (const over of bad) {
    const spec = base({ tree: { mount: overlay(over), writable: true } });
    assert.throws(() => mountScript(spec), (e: Error) => /overlayfs cannot take/.test(e.message) && /--cache/.test(e.message), JSON.stringify(over));
    assert.throws(() => sandboxCommand(spec), /overlayfs cannot take/);
  }
  // The mountpoint is not part of the option string: any character is fine there.
  assert.doesNotThrow(() => mountScript(base({ tree: { mount: overlay({ mountpoint: '/a,b:c' }), writable: true } })));
});

test('mountScript: an upper without a work dir (or the reverse), or no lower at all, is an internal error', () => {
  assert.throws(() => mountScript(base({ tree: { mount: overlay({ work: undefined }), writable: true } })), /Internal error/);
  assert.throws(() => mountScript(base({ tree: { mount: overlay({ upper: undefined }), writable: true } })), /Internal error/);
  assert.throws(() => mountScript(base({ tree: { mount: overlay({ lowers: [] }), writable: true } })), /Internal error/);
});

test('mountScript quotes awkward paths so that sh reads them back unchanged', () => {
  const layersDir = `/tmp/a dir/it's "q" $HOME \`x\``;
  const mountpoint = '/tmp/m p/*';
  const s = mountScript(base({ tree: { mount: overlay({ layersDir, mountpoint }), writable: true } }));
  // Replace mount and cd by printers and run the script: sh must see each path as one word.
  const probe = s
    .replace(/^cd (.*)$/gm, 'printf "cd[%s]\\n" $1')
    .replace(/^mount (.*)$/gm, 'printf "mount[%s]\\n" $1')
    .replace('exec bwrap "$@"', 'printf "bwrap[%s]\\n" "$@"');
  const out = execFileSync('/bin/sh', ['-c', probe, 'imgmake-sandbox', 'a b', "c'd"], { encoding: 'utf8' });
  assert.equal(
    out,
    [
      `cd[${layersDir}]`,
      'mount[-t]',
      'mount[overlay]',
      'mount[imgmake]',
      'mount[-o]',
      `mount[lowerdir=l1:l2,upperdir=up,workdir=wk,redirect_dir=off,metacopy=off,index=off,xino=off${OVERLAY_VOLATILE ? ',volatile' : ''}]`,
      `mount[${mountpoint}]`,
      'cd[/]',
      'bwrap[a b]',
      "bwrap[c'd]",
      '',
    ].join('\n'),
  );
});

test('shq: plain words stay bare; everything else round-trips through /bin/sh', () => {
  assert.equal(shq('/cache/layers/abc-1.2_x+y=z'), '/cache/layers/abc-1.2_x+y=z');
  assert.equal(shq("it's"), `'it'\\''s'`);
  const awkward = ['with space', "it's", '"dq"', '$HOME', '`id`', '$(id)', 'a\\b', 'new\nline', '', '*', '-n', '~', 'ä ü', "'", "''", ';rm -rf /'];
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${awkward.map(shq).join(' ')}`], { encoding: 'utf8' });
  assert.deepEqual(out.split('\0').slice(0, -1), awkward);
});

test('sandboxCommand: unshare a private mount namespace, run the prelude with sh, pass bwrap its args as "$@"', () => {
  const spec = base({ tree: { mount: overlay(), writable: true } });
  const { file, args } = sandboxCommand(spec);
  assert.equal(file, 'unshare');
  assert.deepEqual(args.slice(0, 5), ['--mount', '--propagation', 'private', '--', '/bin/sh']);
  assert.deepEqual(args.slice(5, 8), ['-c', mountScript(spec), 'imgmake-sandbox']);
  assert.deepEqual(args.slice(8), bwrapArgs(spec));
  assert.ok(mountScript(spec).endsWith('\nexec bwrap "$@"'), 'exec: bwrap replaces sh, so --die-with-parent watches imgmake');
});
