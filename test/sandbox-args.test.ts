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
  PROC_ENTRIES,
  PROC_MASKED,
  PROC_READONLY,
  SECCOMP_FD,
  STAGE_CAPS,
  STAGING_EXAMPLE as S,
  argsFile,
  bwrapArgs,
  mountScript,
  procArgs,
  sandboxCommand,
  sandboxLayout,
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

/** bwrap's options (the command is not among them: it follows `--args 3 --` on the command line). */
function optionsOf(a: string[]): string[] {
  return a;
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

test('tree buildroot: mounted in staging, bound read-only at / before everything else; no host /usr', () => {
  for (const mount of [{ kind: 'dir', path: '/cache/br' } as TreeMount, overlay({ upper: undefined, work: undefined, mountpoint: '/cache/mnt/br' })]) {
    const a = bwrapArgs(base({ buildroot: { kind: 'tree', mount } }));
    const root = assertHasSeq(a, ['--ro-bind', `${S}/_m0`, '/']);
    // bwrap stacks later mounts on top: / must precede /proc, /dev, /tmp, /run and the tree.
    for (const later of ['--proc', '--dev', '--tmpfs', SANDBOX_TREE]) assert.ok(a.indexOf(later) > root, `${later} after /`);
    assert.equal(indexOfSeq(a, ['--ro-bind', '/usr', '/usr']), -1);
    assert.equal(a.includes('--symlink'), false);
    assert.equal(a.includes('--ro-bind-try'), false, 'no host /etc leaks into a tree buildroot');
  }
});

test('private /proc, /dev, /tmp (sticky, for apt) and /run; / remounted read-only after every mount', () => {
  const a = bwrapArgs(base({ binds: [{ src: '/out', dest: '/run/imgmake/out', writable: true }], runDir: '/rules/x' }));
  assertHasSeq(a, [...procArgs('/proc'), '--dev', '/dev']);
  assertHasSeq(a, ['--perms', '01777', '--tmpfs', '/tmp']);
  assertHasSeq(a, ['--perms', '0755', '--tmpfs', '/run']);
  const ro = assertHasSeq(a, ['--remount-ro', '/']);
  for (const x of ['--bind', '--ro-bind', '--ro-bind-try', '--symlink', '--tmpfs', '--dir', '--proc', '--dev']) {
    assert.ok(a.lastIndexOf(x) < ro, `${x} must come before --remount-ro / (it needs a writable root for its mount point)`);
  }
});

test('tree: read-write or read-only at /run/imgmake/tree, from its mount in staging; a writable dir without work dir is bound as it is', () => {
  assertHasSeq(bwrapArgs(base()), ['--bind', '/cache/tree', SANDBOX_TREE]);
  const ro = bwrapArgs(base({ tree: { mount: { kind: 'dir', path: '/cache/tree' }, writable: false } }));
  assertHasSeq(ro, ['--ro-bind', `${S}/_m0`, SANDBOX_TREE]);
  assert.equal(ro.includes('/cache/tree'), false);
  assertHasSeq(bwrapArgs(base({ tree: { mount: overlay(), writable: true } })), ['--bind', `${S}/_m0`, SANDBOX_TREE]);
  const first = bwrapArgs(base({ tree: { mount: { kind: 'dir', path: '/cache/w/upper', work: '/cache/w/work' }, writable: true } }));
  assertHasSeq(first, ['--bind', `${S}/_m0`, SANDBOX_TREE]);
  // No tree (a lock step): the working directory is /.
  const none = bwrapArgs(base({ tree: undefined }));
  assert.equal(none.includes(SANDBOX_TREE), false);
  assert.deepEqual(none.slice(-2), ['--chdir', '/']);
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
        { name: 'conf', mount: { kind: 'file', path: '/project/files/app.conf' } },
      ],
      runDir: '/rules/files.copy',
      binds: [
        { src: '/out', dest: '/run/imgmake/out', writable: true },
        { src: '/ro', dest: '/run/imgmake/ro', writable: false },
      ],
    }),
  );
  assertHasSeq(a, ['--ro-bind', `${S}/_m0`, `${SANDBOX_INPUTS}/base`]);
  assertHasSeq(a, ['--ro-bind', `${S}/_m1`, `${SANDBOX_INPUTS}/debs`]);
  // A file: its directory is mounted, the file bound from there.
  assertHasSeq(a, ['--ro-bind', `${S}/_m2/app.conf`, `${SANDBOX_INPUTS}/conf`]);
  for (let i = 0; i < a.length; i++) if (a[i] === '--bind') assert.ok(!a[i + 2]!.startsWith(SANDBOX_INPUTS), 'an input bound writable');
  assertHasSeq(a, ['--ro-bind', `${S}/_m3`, SANDBOX_RUN]);
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

test('working directory: --chdir the tree by default, last of the options', () => {
  assert.deepEqual(bwrapArgs(base()).slice(-2), ['--chdir', SANDBOX_TREE]);
  assert.deepEqual(bwrapArgs(base({ cwd: '/run/imgmake/run' })).slice(-2), ['--chdir', '/run/imgmake/run']);
});

test('/proc: read-only sysctls, SysRq, irq, bus, fs; masked kcore, keys, timers… for every entry this kernel has', () => {
  const entries = new Map<string, 'file' | 'dir'>([['sys', 'dir'], ['sysrq-trigger', 'file'], ['keys', 'file'], ['acpi', 'dir']]);
  assert.deepEqual(procArgs('/p', entries), [
    '--proc', '/p',
    '--ro-bind', '/proc/sys', '/p/sys',
    '--ro-bind', '/proc/sysrq-trigger', '/p/sysrq-trigger',
    '--perms', '0555', '--tmpfs', '/p/acpi', '--remount-ro', '/p/acpi',
    '--dev-bind', '/dev/null', '/p/keys',
  ]);
  // The lists hold at least Docker's.
  for (const n of ['bus', 'fs', 'irq', 'sys', 'sysrq-trigger']) assert.ok((PROC_READONLY as readonly string[]).includes(n), n);
  for (const n of ['asound', 'acpi', 'kcore', 'keys', 'latency_stats', 'timer_list', 'timer_stats', 'sched_debug', 'scsi']) {
    assert.ok((PROC_MASKED as readonly string[]).includes(n), n);
  }
  // This kernel's: /proc/sys exists everywhere; what the host lacks is left out (bwrap cannot mount over nothing).
  assert.equal(PROC_ENTRIES.get('sys'), 'dir');
  // Both procfs of a spec get the same treatment: /proc, and the tree's under apiFilesystems.
  const a = bwrapArgs(base({ tree: { mount: { kind: 'dir', path: '/cache/tree' }, writable: true, apiFilesystems: true } }));
  assertHasSeq(a, procArgs('/proc'));
  assertHasSeq(a, procArgs(`${SANDBOX_TREE}/proc`));
  assertHasSeq(a, ['--ro-bind', '/proc/sys', `${SANDBOX_TREE}/proc/sys`]);
});

test('seccomp: the filter is read from its descriptor, before any mount', () => {
  const a = bwrapArgs(base());
  const i = assertHasSeq(a, ['--seccomp', String(SECCOMP_FD)]);
  assert.ok(i < a.indexOf('--proc'));
});

test('sandboxLayout: every host directory is an overlay in staging, reached by a symlink; nothing but staging in the script', () => {
  const spec = base({
    buildroot: { kind: 'tree', mount: overlay({ lowers: ['k3', 'k4'], upper: undefined, work: undefined, mountpoint: '/m/br' }) },
    tree: { mount: overlay({ lowers: ['k1', 'k2'], upper: '/cache/work/123/upper', work: '/cache/work/123/work', mountpoint: '/m/tree' }), writable: true },
    inputs: [
      { name: 'one', mount: { kind: 'dir', path: '/cache/layers/k9' } },
      { name: 'solo', mount: overlay({ lowers: ['k2'], upper: undefined, work: undefined, mountpoint: '/m/i' }) },
      { name: 'f', mount: { kind: 'file', path: '/home/me/project/files/motd' } },
    ],
    runDir: '/cache/work/123/scratch/run',
  });
  const l = sandboxLayout(spec, S);
  const links = Object.fromEntries(l.links);
  assert.deepEqual(links, {
    k3: '/cache/layers/k3',
    k4: '/cache/layers/k4',
    k1: '/cache/layers/k1',
    k2: '/cache/layers/k2',
    _u1: '/cache/work/123/upper',
    _w1: '/cache/work/123/work',
    _s2: '/cache/layers/k9',
    _s4: '/home/me/project/files',
    _s5: '/cache/work/123/scratch/run',
  });
  assert.deepEqual(l.dirs, ['_empty', '_m0', '_m1', '_m2', '_m3', '_m4', '_m5']);
  const plain = 'redirect_dir=off,metacopy=off,index=off,xino=off';
  const volatile = OVERLAY_VOLATILE ? ',volatile' : '';
  assert.deepEqual(l.fstab.split('\n'), [
    `imgmake _m0 overlay ro,lowerdir=k3:k4,${plain} 0 0`,
    `imgmake _m1 overlay lowerdir=k1:k2,upperdir=_u1,workdir=_w1${volatile},${plain} 0 0`,
    `imgmake _m2 overlay ro,lowerdir=_s2:_empty,${plain} 0 0`,
    // overlayfs refuses one lower layer without an upper: an empty one goes under it.
    `imgmake _m3 overlay ro,lowerdir=k2:_empty,${plain} 0 0`,
    `imgmake _m4 overlay ro,lowerdir=_s4:_empty,${plain} 0 0`,
    `imgmake _m5 overlay ro,lowerdir=_s5:_empty,${plain} 0 0`,
    '',
  ]);
  assert.deepEqual(l.script.split('\n').slice(1), ['set -eu', `cd ${S}`, 'LIBMOUNT_FORCE_MOUNT2=always mount -a -T fstab', 'cd /', 'unset OLDPWD', 'exec bwrap "$@"']);
  // No host path of the cache or the project in bwrap's options either: only staging's.
  for (const o of l.options) assert.equal(/\/cache|\/home/.test(o), false, o);
  assertHasSeq(l.options, ['--ro-bind', `${S}/_m4/motd`, `${SANDBOX_INPUTS}/f`]);
});

test('sandboxLayout: a first stage (a dir with a work dir) is the upper layer over the empty one', () => {
  const l = sandboxLayout(base({ tree: { mount: { kind: 'dir', path: '/c/w/upper', work: '/c/w/work' }, writable: true } }), S);
  assert.deepEqual(l.links, [['_u0', '/c/w/upper'], ['_w0', '/c/w/work']]);
  assert.equal(
    l.fstab,
    `imgmake _m0 overlay lowerdir=_empty,upperdir=_u0,workdir=_w0${OVERLAY_VOLATILE ? ',volatile' : ''},redirect_dir=off,metacopy=off,index=off,xino=off 0 0\n`,
  );
});

test('sandboxLayout: two layers of the same name in different dirs get different links', () => {
  const l = sandboxLayout(
    base({
      inputs: [
        { name: 'a', mount: overlay({ layersDir: '/x', lowers: ['l1', 'l2'], upper: undefined, work: undefined }) },
        { name: 'b', mount: overlay({ layersDir: '/y', lowers: ['l1', 'l3'], upper: undefined, work: undefined }) },
      ],
    }),
    S,
  );
  assert.deepEqual(l.links, [['l1', '/x/l1'], ['l2', '/x/l2'], ['l1~1', '/y/l1'], ['l3', '/y/l3']]);
  assert.match(l.fstab, /lowerdir=l1~1:l3,/);
});

test('sandboxLayout: a layer name with , : \\ whitespace or # is refused; host paths may hold anything now', () => {
  for (const lowers of [['l1', 'l,2'], ['l:1'], ['a\\b'], ['a\nb'], ['a b'], ['#a']]) {
    const spec = base({ tree: { mount: overlay({ lowers }), writable: true } });
    assert.throws(() => mountScript(spec), /overlayfs cannot take/, JSON.stringify(lowers));
  }
  // The paths are symlink targets, never part of an option string.
  assert.doesNotThrow(() => mountScript(base({ tree: { mount: overlay({ layersDir: '/a,b:c d', upper: '/u:p', work: '/w,k#' }), writable: true } })));
  // Nothing to mount: no cd, only the exec.
  const noMounts = mountScript(base()).split('\n');
  assert.deepEqual(noMounts.slice(1), ['set -eu', 'exec bwrap "$@"']);
  assert.match(noMounts[0]!, /^for fd in \/proc\/self\/fd\/\*; .*case \$fd in 0\|1\|2\|3\|4\) ;; \*\) \{ exec \{fd\}>&-; \}/, 'first, every inherited descriptor but stdio and bwrap\'s two is closed');
});

test('mountScript: an upper without a work dir (or the reverse), or no lower at all, is an internal error', () => {
  assert.throws(() => mountScript(base({ tree: { mount: overlay({ work: undefined }), writable: true } })), /Internal error/);
  assert.throws(() => mountScript(base({ tree: { mount: overlay({ upper: undefined }), writable: true } })), /Internal error/);
  assert.throws(() => mountScript(base({ tree: { mount: overlay({ lowers: [] }), writable: true } })), /Internal error/);
});

test('mountScript quotes an awkward staging path so that bash reads it back unchanged', () => {
  const staging = `/tmp/a dir/it's "q" $HOME \`x\``;
  const s = mountScript(base({ tree: { mount: overlay(), writable: true } }), staging);
  const probe = s
    .replace(/^cd (.*)$/gm, 'printf "cd[%s]\\n" $1')
    .replace(/^LIBMOUNT_FORCE_MOUNT2=always mount (.*)$/gm, 'printf "mount[%s]\\n" $1')
    .replace('exec bwrap "$@"', 'printf "bwrap[%s]\\n" "$@"');
  const out = execFileSync('/bin/bash', ['-c', probe, 'imgmake-sandbox', 'a b', "c'd"], { encoding: 'utf8' });
  assert.equal(out, [`cd[${staging}]`, 'mount[-a]', 'mount[-T]', 'mount[fstab]', 'cd[/]', 'bwrap[a b]', "bwrap[c'd]", ''].join('\n'));
});

test('shq: plain words stay bare; everything else round-trips through /bin/sh', () => {
  assert.equal(shq('/cache/layers/abc-1.2_x+y=z'), '/cache/layers/abc-1.2_x+y=z');
  assert.equal(shq("it's"), `'it'\\''s'`);
  const awkward = ['with space', "it's", '"dq"', '$HOME', '`id`', '$(id)', 'a\\b', 'new\nline', '', '*', '-n', '~', 'ä ü', "'", "''", ';rm -rf /'];
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${awkward.map(shq).join(' ')}`], { encoding: 'utf8' });
  assert.deepEqual(out.split('\0').slice(0, -1), awkward);
});

test('sandboxCommand: unshare a private mount namespace, the prelude with bash; bwrap gets only a marker, --args 3 and the command', () => {
  const spec = base({ tree: { mount: overlay(), writable: true } });
  const { file, args, layout } = sandboxCommand(spec, { staging: S, marker: 'IMGMAKE_SANDBOX_x' });
  assert.equal(file, 'unshare');
  assert.deepEqual(args.slice(0, 5), ['--mount', '--propagation', 'private', '--', '/bin/bash']);
  assert.deepEqual(args.slice(5, 8), ['-c', layout.script, 'imgmake-sandbox']);
  // What bwrap's pid 1 shows inside: no option, no path but the command's own.
  assert.deepEqual(args.slice(8), ['--unsetenv', 'IMGMAKE_SANDBOX_x', '--args', '3', '--', ...spec.argv]);
  assert.deepEqual(layout.options, bwrapArgs(spec, S));
  assert.ok(layout.script.endsWith('\nexec bwrap "$@"'), 'exec: bwrap replaces sh, so --die-with-parent watches imgmake');
});

test('argsFile: NUL-terminated options; a NUL inside one is refused', () => {
  assert.equal(argsFile(['--bind', 'a b', '/x']).toString(), '--bind\0a b\0/x\0');
  assert.throws(() => argsFile(['a\0b']), /NUL/);
});
