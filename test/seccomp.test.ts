/**
 * Unit tests of the seccomp program (seccomp.ts): its instructions, and what it returns for
 * given syscalls when run through a small classic-BPF interpreter (the subset the program
 * uses). That the kernel agrees is shown in sandbox.test.ts, with real syscalls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AUDIT_ARCH_X86_64,
  BPF,
  CLONE_NEW_MASK,
  ENOSYS,
  EPERM,
  RET,
  SANDBOX_RULES,
  encodeProgram,
  sandboxFilter,
  seccompProgram,
  type Insn,
} from '../src/sandbox/seccomp.js';

interface Call {
  nr: number;
  arch?: number;
  args?: number[];
}

/** Runs `p` on a seccomp_data built from `c`; returns the filter's verdict. */
function run(p: readonly Insn[], c: Call): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(c.nr, 0);
  data.writeUInt32LE(c.arch ?? AUDIT_ARCH_X86_64, 4);
  (c.args ?? []).forEach((v, i) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), 16 + 8 * i));
  let a = 0;
  for (let pc = 0; pc < p.length; ) {
    const x = p[pc]!;
    switch (x.code) {
      case BPF.LD_W_ABS:
        a = data.readUInt32LE(x.k);
        pc++;
        break;
      case BPF.JEQ_K:
        pc += 1 + (a === x.k ? x.jt : x.jf);
        break;
      case BPF.JGE_K:
        pc += 1 + (a >= x.k ? x.jt : x.jf);
        break;
      case BPF.JSET_K:
        pc += 1 + ((a & x.k) !== 0 ? x.jt : x.jf);
        break;
      case BPF.RET_K:
        return x.k;
      default:
        throw new Error(`unknown instruction ${x.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const prog = seccompProgram();
const eperm = RET.errno(EPERM);
const nrOf = (name: string): number => SANDBOX_RULES.find((r) => r.name === name)!.nr;

test('the program starts with the architecture check and the x32 check, and ends in allow', () => {
  assert.deepEqual(prog.slice(0, 6), [
    { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 4 },
    { code: BPF.JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
    { code: BPF.RET_K, jt: 0, jf: 0, k: RET.KILL_PROCESS },
    { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 0 },
    { code: BPF.JGE_K, jt: 0, jf: 1, k: 0x40000000 },
    { code: BPF.RET_K, jt: 0, jf: 0, k: RET.KILL_PROCESS },
  ]);
  assert.deepEqual(prog.at(-1), { code: BPF.RET_K, jt: 0, jf: 0, k: RET.ALLOW });
  assert.ok(prog.length < 4096);
});

test('a small deny list compiles to exactly these instructions', () => {
  const p = seccompProgram([
    { name: 'keyctl', nr: 250, deny: 'always' },
    { name: 'clone3', nr: 435, deny: 'always', errno: ENOSYS },
    { name: 'unshare', nr: 272, deny: 'mask', arg: 0, mask: 0x10000000 },
    { name: 'personality', nr: 135, deny: 'unless', arg: 0, values: [0, 8] },
  ]);
  assert.deepEqual(p.slice(6), [
    { code: BPF.JEQ_K, jt: 0, jf: 1, k: 250 },
    { code: BPF.RET_K, jt: 0, jf: 0, k: eperm },
    { code: BPF.JEQ_K, jt: 0, jf: 1, k: 435 },
    { code: BPF.RET_K, jt: 0, jf: 0, k: RET.errno(ENOSYS) },
    { code: BPF.JEQ_K, jt: 0, jf: 4, k: 272 },
    { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 16 },
    { code: BPF.JSET_K, jt: 0, jf: 1, k: 0x10000000 },
    { code: BPF.RET_K, jt: 0, jf: 0, k: eperm },
    { code: BPF.RET_K, jt: 0, jf: 0, k: RET.ALLOW },
    { code: BPF.JEQ_K, jt: 0, jf: 5, k: 135 },
    { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 16 },
    { code: BPF.JEQ_K, jt: 2, jf: 0, k: 0 },
    { code: BPF.JEQ_K, jt: 1, jf: 0, k: 8 },
    { code: BPF.RET_K, jt: 0, jf: 0, k: eperm },
    { code: BPF.RET_K, jt: 0, jf: 0, k: RET.ALLOW },
    { code: BPF.RET_K, jt: 0, jf: 0, k: RET.ALLOW },
  ]);
});

test('verdicts: the deny list is denied with EPERM, everything else allowed', () => {
  for (const name of ['keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'bpf', 'perf_event_open', 'userfaultfd', 'setns', 'mount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr', 'swapon', 'swapoff', 'reboot', 'syslog', 'acct', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'open_by_handle_at', 'name_to_handle_at', 'lookup_dcookie', 'quotactl', 'iopl', 'ioperm', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'uselib', 'ustat', 'sysfs', '_sysctl', 'nfsservctl', 'fanotify_init', 'vhangup', 'pidfd_getfd']) {
    assert.equal(run(prog, { nr: nrOf(name) }), eperm, name);
  }
  // read, write, openat, execve, chroot, ptrace, seccomp, wait4, chown, mknodat, setresuid, capset
  for (const nr of [0, 1, 257, 59, 161, 101, 317, 61, 92, 259, 117, 126]) assert.equal(run(prog, { nr }), RET.ALLOW, String(nr));
});

test('verdicts: new namespaces through clone or unshare are denied; threads, forks and plain unshare are not', () => {
  const clone = nrOf('clone');
  const unshare = nrOf('unshare');
  assert.equal(run(prog, { nr: unshare, args: [0x10000000] }), eperm, 'unshare(CLONE_NEWUSER)');
  assert.equal(run(prog, { nr: unshare, args: [0x20000] }), eperm, 'unshare(CLONE_NEWNS)');
  assert.equal(run(prog, { nr: unshare, args: [0x200] }), RET.ALLOW, 'unshare(CLONE_FS)');
  assert.equal(run(prog, { nr: clone, args: [0x10000000 | 17] }), eperm, 'clone(CLONE_NEWUSER|SIGCHLD)');
  assert.equal(run(prog, { nr: clone, args: [0x003d0f00] }), RET.ALLOW, 'a pthread_create clone');
  assert.equal(run(prog, { nr: clone, args: [0x01200011] }), RET.ALLOW, 'a fork');
  // The flags' high word is not a way around: only the low word carries CLONE_NEW*.
  assert.equal(run(prog, { nr: unshare, args: [0x10000000 + 2 ** 32] }), eperm);
  assert.equal(CLONE_NEW_MASK, 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000);
  assert.equal(run(prog, { nr: nrOf('clone3') }), RET.errno(ENOSYS), 'clone3: ENOSYS so that glibc falls back to clone');
});

test('verdicts: personality, ioctl TIOCSTI/TIOCLINUX, socket(AF_VSOCK), other ABIs', () => {
  const pers = nrOf('personality');
  for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) assert.equal(run(prog, { nr: pers, args: [v] }), RET.ALLOW, v.toString(16));
  assert.equal(run(prog, { nr: pers, args: [0x0400000] }), eperm, 'READ_IMPLIES_EXEC');
  assert.equal(run(prog, { nr: 16, args: [0, 0x5412] }), eperm, 'TIOCSTI');
  assert.equal(run(prog, { nr: 16, args: [0, 0x5412 + 2 ** 32] }), eperm, 'TIOCSTI with high bits (the kernel reads 32)');
  assert.equal(run(prog, { nr: 16, args: [0, 0x541c] }), eperm, 'TIOCLINUX');
  assert.equal(run(prog, { nr: 16, args: [0, 0x5401] }), RET.ALLOW, 'TCGETS');
  assert.equal(run(prog, { nr: 41, args: [40] }), eperm, 'AF_VSOCK');
  assert.equal(run(prog, { nr: 41, args: [1] }), RET.ALLOW, 'AF_UNIX');
  assert.equal(run(prog, { nr: 0, arch: 0x40000003 }), RET.KILL_PROCESS, 'i386');
  assert.equal(run(prog, { nr: 0x40000000 | 0 }), RET.KILL_PROCESS, 'x32');
});

test('encoding: 8 little-endian bytes per instruction (struct sock_filter); sandboxFilter is the default program', () => {
  const b = encodeProgram([{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }]);
  assert.deepEqual([...b], [0x15, 0x00, 0x01, 0x02, 0x3e, 0x00, 0x00, 0xc0]);
  assert.deepEqual(sandboxFilter(), encodeProgram(prog));
  assert.equal(sandboxFilter().length, prog.length * 8);
});
