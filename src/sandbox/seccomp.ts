/**
 * The sandbox's system-call filter: a classic BPF program, made here without libseccomp, that
 * bwrap loads (`--seccomp FD`) just before it execs the stage's command. It is a deny list
 * equivalent to Docker's default profile (what that profile refuses to a container without
 * CAP_SYS_ADMIN), a little stricter where no build needs the call:
 *
 *     arch != x86_64 (i386 via int 0x80)   → kill the process
 *     x32 ABI (nr & 0x40000000)             → kill the process
 *     keyrings, kexec, modules, bpf, perf, userfaultfd, mounts (old and new API), setns,
 *     swap, reboot, syslog, acct, clocks, file handles, quotas, io ports, io_uring,
 *     NUMA policy, other processes' memory, vhangup…   → EPERM
 *     clone / unshare with a CLONE_NEW* flag (new namespaces: `unshare -Ur`)  → EPERM
 *     clone3                                 → ENOSYS (its flags sit in memory a filter
 *                                              cannot read; glibc then falls back to clone)
 *     personality other than Linux / Linux32 / UNAME26 / query  → EPERM
 *     ioctl TIOCSTI, TIOCLINUX (typing into the terminal of `imgmake shell`'s user)  → EPERM
 *     socket(AF_VSOCK) (the hypervisor is not in any network namespace)  → EPERM
 *     anything else                          → allowed
 *
 * ptrace stays allowed, as in Docker on kernels ≥ 4.8: strace works in `imgmake shell`, and
 * the pid namespace holds only the stage's own processes and bwrap's capability-less init.
 * Every rule tests only the syscall number or one 32-bit argument word, so the kernel's
 * per-syscall cache (Linux ≥ 5.11) lets every allowed call skip the filter after the first.
 *
 * This module builds and encodes the program; it does not load it (bwrap does).
 */

/** One classic-BPF instruction (struct sock_filter). */
export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
const OFF_NR = 0;
const OFF_ARCH = 4;
/** Offset of the low 32 bits of argument `i` (x86_64 is little-endian). */
const offArgLo = (i: number): number => 16 + 8 * i;

export const BPF = {
  LD_W_ABS: 0x20,
  JEQ_K: 0x15,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const X32_SYSCALL_BIT = 0x40000000;

export const RET = {
  KILL_PROCESS: 0x80000000,
  ALLOW: 0x7fff0000,
  errno: (e: number): number => (0x00050000 | (e & 0xffff)) >>> 0,
} as const;

export const EPERM = 1;
export const ENOSYS = 38;

/** Every CLONE_NEW* flag (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET): Docker's mask. */
export const CLONE_NEW_MASK = 0x7e020000;

/** What the filter does for one syscall (its number on x86_64). */
export type SyscallRule =
  | { name: string; nr: number; deny: 'always'; errno?: number }
  /** Denied when the low word of argument `arg` has any bit of `mask`. */
  | { name: string; nr: number; deny: 'mask'; arg: number; mask: number }
  /** Denied when the low word of argument `arg` is one of `values`. */
  | { name: string; nr: number; deny: 'values'; arg: number; values: number[] }
  /** Denied unless the low word of argument `arg` is one of `values`. */
  | { name: string; nr: number; deny: 'unless'; arg: number; values: number[] };

/** Syscalls denied outright, by name and x86_64 number. */
const ALWAYS: [string, number][] = [
  ['syslog', 103],
  ['vhangup', 153],
  ['uselib', 134],
  ['ustat', 136],
  ['sysfs', 139],
  ['pivot_root', 155],
  ['_sysctl', 156],
  ['adjtimex', 159],
  ['acct', 163],
  ['settimeofday', 164],
  ['mount', 165],
  ['umount2', 166],
  ['swapon', 167],
  ['swapoff', 168],
  ['reboot', 169],
  ['iopl', 172],
  ['ioperm', 173],
  ['create_module', 174],
  ['init_module', 175],
  ['delete_module', 176],
  ['get_kernel_syms', 177],
  ['query_module', 178],
  ['quotactl', 179],
  ['nfsservctl', 180],
  ['lookup_dcookie', 212],
  ['clock_settime', 227],
  ['mbind', 237],
  ['set_mempolicy', 238],
  ['get_mempolicy', 239],
  ['kexec_load', 246],
  ['add_key', 248],
  ['request_key', 249],
  ['keyctl', 250],
  ['migrate_pages', 256],
  ['move_pages', 279],
  ['perf_event_open', 298],
  ['fanotify_init', 300],
  ['name_to_handle_at', 303],
  ['open_by_handle_at', 304],
  ['clock_adjtime', 305],
  ['setns', 308],
  ['process_vm_readv', 310],
  ['process_vm_writev', 311],
  ['kcmp', 312],
  ['finit_module', 313],
  ['kexec_file_load', 320],
  ['bpf', 321],
  ['userfaultfd', 323],
  ['io_uring_setup', 425],
  ['io_uring_enter', 426],
  ['io_uring_register', 427],
  ['open_tree', 428],
  ['move_mount', 429],
  ['fsopen', 430],
  ['fsconfig', 431],
  ['fsmount', 432],
  ['fspick', 433],
  ['pidfd_getfd', 438],
  ['process_madvise', 440],
  ['mount_setattr', 442],
  ['quotactl_fd', 443],
  ['set_mempolicy_home_node', 450],
  ['open_tree_attr', 467],
];

/** The sandbox's rules (x86_64), in the order the program tests them. */
export const SANDBOX_RULES: readonly SyscallRule[] = [
  ...ALWAYS.map(([name, nr]): SyscallRule => ({ name, nr, deny: 'always' })),
  { name: 'clone3', nr: 435, deny: 'always', errno: ENOSYS },
  { name: 'clone', nr: 56, deny: 'mask', arg: 0, mask: CLONE_NEW_MASK },
  { name: 'unshare', nr: 272, deny: 'mask', arg: 0, mask: CLONE_NEW_MASK },
  // PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (a query): Docker's set.
  { name: 'personality', nr: 135, deny: 'unless', arg: 0, values: [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] },
  // TIOCSTI, TIOCLINUX. The kernel reads the request as 32 bits: the high word must not matter.
  { name: 'ioctl', nr: 16, deny: 'values', arg: 1, values: [0x5412, 0x541c] },
  // AF_VSOCK
  { name: 'socket', nr: 41, deny: 'values', arg: 0, values: [40] },
];

const insn = (code: number, k: number, jt = 0, jf = 0): Insn => ({ code, jt, jf, k: k >>> 0 });

/**
 * The filter program for `rules` on x86_64. Pure. Each rule is a block entered with A = nr;
 * a block that loads an argument ends in a return, so A is never stale for the next block.
 */
export function seccompProgram(rules: readonly SyscallRule[] = SANDBOX_RULES): Insn[] {
  const deny = RET.errno(EPERM);
  const p: Insn[] = [
    insn(BPF.LD_W_ABS, OFF_ARCH),
    insn(BPF.JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
    insn(BPF.RET_K, RET.KILL_PROCESS),
    insn(BPF.LD_W_ABS, OFF_NR),
    insn(BPF.JGE_K, X32_SYSCALL_BIT, 0, 1),
    insn(BPF.RET_K, RET.KILL_PROCESS),
  ];
  for (const r of rules) {
    const body: Insn[] = [];
    if (r.deny === 'always') {
      body.push(insn(BPF.RET_K, r.errno === undefined ? deny : RET.errno(r.errno)));
    } else if (r.deny === 'mask') {
      body.push(insn(BPF.LD_W_ABS, offArgLo(r.arg)), insn(BPF.JSET_K, r.mask, 0, 1), insn(BPF.RET_K, deny), insn(BPF.RET_K, RET.ALLOW));
    } else {
      // One JEQ per value; a match jumps to the "match" return, the last miss falls to the other.
      const [onMatch, onMiss] = r.deny === 'values' ? [deny, RET.ALLOW] : [RET.ALLOW, deny];
      const n = r.values.length;
      if (n === 0) throw new Error(`Internal error: seccomp rule ${r.name} has no values`);
      body.push(insn(BPF.LD_W_ABS, offArgLo(r.arg)));
      r.values.forEach((v, i) => body.push(insn(BPF.JEQ_K, v, n - 1 - i + 1, 0)));
      body.push(insn(BPF.RET_K, onMiss), insn(BPF.RET_K, onMatch));
    }
    if (body.length > 255) throw new Error(`Internal error: seccomp rule ${r.name} is too long for one jump`);
    p.push(insn(BPF.JEQ_K, r.nr, 0, body.length), ...body);
  }
  p.push(insn(BPF.RET_K, RET.ALLOW));
  if (p.length > 4096) throw new Error('Internal error: the seccomp program is longer than the kernel takes');
  return p;
}

/** The program as the bytes bwrap reads (struct sock_filter[], native = little-endian). */
export function encodeProgram(p: readonly Insn[]): Buffer {
  const b = Buffer.alloc(p.length * 8);
  p.forEach((x, i) => {
    b.writeUInt16LE(x.code, i * 8);
    b.writeUInt8(x.jt, i * 8 + 2);
    b.writeUInt8(x.jf, i * 8 + 3);
    b.writeUInt32LE(x.k, i * 8 + 4);
  });
  return b;
}

let cached: Buffer | undefined;
/** The sandbox's filter, encoded once per process. */
export function sandboxFilter(): Buffer {
  cached ??= encodeProgram(seccompProgram());
  return cached;
}
