/**
 * What one sandboxed process sees, as data. `bwrapArgs` and `mountScript` turn a spec into
 * the exact command line; they are pure, so the only part tests cannot check without running
 * is the short execa call in `run.ts`.
 *
 * Inside the sandbox:
 *
 *     /                     the buildroot, read-only (a build pipeline's tree), or a tmpfs
 *                           holding the host's /usr read-only plus the /bin, /lib… links
 *     /run/imgmake/tree     the tree being built, read-write (read-only for exports)
 *     /run/imgmake/inputs/N each input, read-only
 *     /run/imgmake/run      the rule's files (script, inline content), read-only
 *     /proc /dev /tmp       private: a new /proc, a minimal /dev, an empty /tmp
 *
 * No network (a new, empty network namespace), a cleared environment plus SOURCE_DATE_EPOCH,
 * the capabilities a package install needs but not CAP_SYS_ADMIN (no mounts, no escape), a
 * seccomp filter (seccomp.ts), a /proc whose host-global knobs are read-only or masked, no
 * host path anywhere a stage can read (see `sandboxLayout`), and the process dies with
 * imgmake. docs/sandbox.md has the threat model.
 */

import { lstatSync } from 'node:fs';
import { release } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { SOURCE_DATE_EPOCH } from '../key.js';

/** overlayfs takes `volatile` from Linux 5.10 on (Debian 12 has 6.1). */
export const OVERLAY_VOLATILE = ((): boolean => {
  const [major = 0, minor = 0] = release().split('.').map((n) => parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 10);
})();

export const SANDBOX_TREE = '/run/imgmake/tree';
export const SANDBOX_INPUTS = '/run/imgmake/inputs';
export const SANDBOX_RUN = '/run/imgmake/run';

/** A tree as the kernel will see it: overlay layers, or one plain directory. */
export type TreeMount =
  /**
   * One directory (a one-layer tree, a first stage's fresh tree, a directory input). With
   * `work` (an empty directory on the same filesystem, outside `path`) a writable one is
   * mounted through an overlay with an empty lower layer, which keeps its host path out of the
   * sandbox's mount table; without, a writable one is bound as it is.
   */
  | { kind: 'dir'; path: string; work?: string }
  /** One file (a `file:` input), read-only. */
  | { kind: 'file'; path: string }
  /**
   * An overlay: `lowers` are directory names relative to `layersDir`, topmost first. With
   * `upper` and `work` it is writable and `upper` receives the diff; without, read-only.
   * (`mountpoint` is the store's suggestion; the sandbox mounts every overlay in its own
   * staging directory.)
   */
  | { kind: 'overlay'; layersDir: string; lowers: string[]; upper?: string; work?: string; mountpoint: string };

export interface Bind {
  src: string;
  dest: string;
  writable: boolean;
}

export interface SandboxSpec {
  /** `host`: the host's /usr read-only; `tree`: that tree as `/`, read-only. */
  buildroot: { kind: 'host' } | { kind: 'tree'; mount: TreeMount };
  /**
   * The tree, at /run/imgmake/tree. With `apiFilesystems`, a private /dev and /proc are also
   * mounted at its dev/ and proc/, as a package install that chroots into the tree needs
   * (maintainer scripts write to /dev/null and read /proc). Their contents never reach the
   * tree: only the two directories, created if missing.
   */
  tree?: { mount: TreeMount; writable: boolean; apiFilesystems?: boolean };
  /** Inputs by name, read-only at /run/imgmake/inputs/NAME. */
  inputs: { name: string; mount: TreeMount }[];
  /** Host directory holding the rule's files, read-only at /run/imgmake/run. */
  runDir?: string;
  /** Further binds (an export's output directory). */
  binds?: Bind[];
  argv: string[];
  /** The whole environment the command gets (PATH and SOURCE_DATE_EPOCH are added if absent). */
  env: Record<string, string>;
  /** Working directory inside the sandbox (default: the tree, or /). */
  cwd?: string;
  /** Network access: only a lock step that resolves packages asks for it. */
  network?: boolean;
  /** Give the command a terminal-friendly session (interactive shells); default: a new session. */
  interactive?: boolean;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Capabilities a stage keeps (Docker's default set): enough for a package manager, chown, mknod, setcap and
 * chroot into the tree; not CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE.
 */
export const STAGE_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_MKNOD',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
  'CAP_AUDIT_WRITE',
] as const;

/**
 * /proc entries a stage may read but never write (Docker's `readonlyPaths`): sysctls
 * (`kernel.core_pattern` runs a program as root on the host), the SysRq trigger, IRQ affinity,
 * bus and filesystem knobs.
 */
export const PROC_READONLY = ['sys', 'sysrq-trigger', 'irq', 'bus', 'fs'] as const;

/**
 * /proc entries a stage does not see at all (Docker's `maskedPaths`, plus `interrupts`): the
 * kernel's memory, keyrings of every user, timers and scheduler internals that leak addresses
 * and other processes' activity, hardware trees. Files read empty (/dev/null is bound over
 * them), directories are an empty read-only tmpfs.
 */
export const PROC_MASKED = [
  'acpi',
  'asound',
  'interrupts',
  'kcore',
  'key-users',
  'keys',
  'latency_stats',
  'sched_debug',
  'scsi',
  'timer_list',
  'timer_stats',
] as const;

/**
 * Which of those this kernel has, and whether each is a directory: a new procfs has the same
 * entries as the host's, and bwrap cannot mount over an entry that does not exist (nor make
 * one in procfs). Read once, from the host's /proc.
 */
export const PROC_ENTRIES: ReadonlyMap<string, 'file' | 'dir'> = (() => {
  const m = new Map<string, 'file' | 'dir'>();
  for (const name of [...PROC_READONLY, ...PROC_MASKED]) {
    try {
      m.set(name, lstatSync(`/proc/${name}`).isDirectory() ? 'dir' : 'file');
    } catch {
      // not in this kernel (no CONFIG_LATENCYTOP, sched_debug moved to debugfs, no sound…)
    }
  }
  return m;
})();

/** bwrap options that mount a private procfs at `at`, with the entries above made safe. */
export function procArgs(at: string, entries: ReadonlyMap<string, 'file' | 'dir'> = PROC_ENTRIES): string[] {
  const a = ['--proc', at];
  // The source is the host's /proc/NAME (bwrap binds from outside), which for sysctls is the
  // same thing: /proc/sys resolves every entry in the reading task's namespaces (its network
  // namespace's net.*), and the other entries are global.
  for (const name of PROC_READONLY) if (entries.has(name)) a.push('--ro-bind', `/proc/${name}`, `${at}/${name}`);
  for (const name of PROC_MASKED) {
    const kind = entries.get(name);
    if (kind === 'file') a.push('--dev-bind', '/dev/null', `${at}/${name}`);
    else if (kind === 'dir') a.push('--perms', '0555', '--tmpfs', `${at}/${name}`, '--remount-ro', `${at}/${name}`);
  }
  return a;
}

/**
 * Where each host directory of a spec is mounted before bwrap starts, all of it inside one
 * private staging directory (see `sandboxLayout`). Names in it are relative, so the kernel's
 * mount table, which shows an overlay's options as they were given and a bind mount's source
 * as its path on its filesystem, never shows a host path inside the sandbox.
 */
export interface SandboxLayout {
  /** Symlinks to make in the staging directory: name → host path. */
  links: [name: string, target: string][];
  /** Directories to make in it: the mount points and the empty lower layer. */
  dirs: string[];
  /** The overlays to mount, as an fstab in the staging directory (one `mount -a` mounts them all). */
  fstab: string;
  /** The shell prelude (see `mountScript`). */
  script: string;
  /** bwrap's options, without the command: they travel through a file descriptor (`--args`). */
  options: string[];
}

/** Characters the overlay option string (and an fstab field) cannot carry in a layer's name. */
const OVERLAY_UNSAFE = /[,:\\\s#]/;
const EMPTY = '_empty';
const OVERLAY_PLAIN = ['redirect_dir=off', 'metacopy=off', 'index=off', 'xino=off'];

/**
 * The staging directory's contents, the prelude and bwrap's options for a spec. Pure.
 *
 * Every host directory becomes an overlay mounted in `staging` by the prelude (a read-only
 * one over it and an empty directory, a writable one as the upper layer over an empty lower),
 * reached through a symlink with a meaningless name; bwrap binds those mounts. Only the host's
 * /usr and the few /etc files of a host buildroot, and an extra bind (an export's output, the
 * lock step's work dir and resolver files), are bound as they are.
 */
export function sandboxLayout(spec: SandboxSpec, staging: string): SandboxLayout {
  const links = new Map<string, string>();
  const dirs: string[] = [EMPTY];
  const fstab: string[] = [];
  let n = 0;
  const link = (want: string, target: string): string => {
    let name = want;
    for (let i = 1; links.has(name) && links.get(name) !== target; i++) name = `${want}~${i}`;
    links.set(name, target);
    return name;
  };
  const overlay = (opts: string[], readOnly: boolean): string => {
    const mp = `_m${n++}`;
    dirs.push(mp);
    const all = [...(readOnly ? ['ro'] : []), ...opts, ...OVERLAY_PLAIN];
    fstab.push(`imgmake ${mp} overlay ${all.join(',')} 0 0`);
    return `${staging}/${mp}`;
  };
  /** Mounts `m` in staging and returns the host path bwrap binds from. */
  const place = (m: TreeMount, writable: boolean): string => {
    if (m.kind === 'file') {
      const i = n;
      const at = overlay([`lowerdir=${link(`_s${i}`, dirname(m.path))}:${EMPTY}`], true);
      return `${at}/${basename(m.path)}`;
    }
    if (m.kind === 'dir') {
      const i = n;
      if (!writable) return overlay([`lowerdir=${link(`_s${i}`, m.path)}:${EMPTY}`], true);
      if (!m.work) return m.path;
      const opts = [`lowerdir=${EMPTY}`, `upperdir=${link(`_u${i}`, m.path)}`, `workdir=${link(`_w${i}`, m.work)}`];
      // (see the overlay case for `volatile`)
      return overlay(OVERLAY_VOLATILE ? [...opts, 'volatile'] : opts, false);
    }
    for (const l of m.lowers) {
      if (OVERLAY_UNSAFE.test(l)) throw new Error(`the layer name ${JSON.stringify(l)} holds a character (, : \\) overlayfs cannot take`);
    }
    if (m.lowers.length === 0) throw new Error(`Internal error: overlay at ${m.mountpoint} has no lower layer`);
    if ((m.upper === undefined) !== (m.work === undefined)) {
      throw new Error(`Internal error: overlay at ${m.mountpoint} has an upper dir without a work dir or the reverse`);
    }
    // Layers by their own names (keys), linked into staging: the option string stays under
    // the kernel's one-page limit for MAX_LAYERS layers, and shows no path.
    // A lower that is a path (a squash: `../squash/<key>`) gets a plain name of its own.
    const lowers = m.lowers.map((l, j) => link(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(l) ? l : `_l${n}.${j}`, resolve(m.layersDir, l)));
    // overlayfs refuses a single lower layer without an upper dir: an empty one goes under it.
    if (!m.upper && lowers.length === 1) lowers.push(EMPTY);
    const opts = [`lowerdir=${lowers.join(':')}`];
    if (m.upper && m.work) {
      const i = n;
      // (relative ones are relative to the layers directory, as the lowers are)
      opts.push(`upperdir=${link(`_u${i}`, resolve(m.layersDir, m.upper))}`, `workdir=${link(`_w${i}`, resolve(m.layersDir, m.work))}`);
      // No sync of the whole upper filesystem when the namespace ends (overlayfs syncs it at
      // unmount otherwise: seconds after a build that wrote a disk image). Layers were never
      // fsynced (docs/store.md: power loss is not covered); this only drops an accidental flush.
      if (OVERLAY_VOLATILE) opts.push('volatile');
    }
    return overlay(opts, !(m.upper && m.work));
  };

  const a: string[] = [];
  a.push('--die-with-parent');
  a.push('--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try');
  if (!spec.network) a.push('--unshare-net');
  if (!spec.interactive) a.push('--new-session');
  a.push('--cap-drop', 'ALL');
  for (const cap of STAGE_CAPS) a.push('--cap-add', cap);
  // The filter itself comes on its own descriptor (see seccomp.ts and run.ts).
  a.push('--seccomp', String(SECCOMP_FD));

  if (spec.buildroot.kind === 'host') {
    a.push('--ro-bind', '/usr', '/usr');
    for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) a.push('--symlink', `usr/${d}`, `/${d}`);
    // The dynamic linker's cache, name lookup, and the alternatives that /usr/bin/awk, pager, lzcat…
    // point into (without it Debian's `awk` is a dangling link); nothing else of the host's /etc.
    // /etc itself 0755: bwrap would make it 0700, and a tool that drops root (a package
    // manager's downloader, a daemon's own user) could then not read passwd or ld.so.cache.
    a.push('--perms', '0755', '--dir', '/etc');
    for (const f of ['/etc/ld.so.cache', '/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/alternatives']) {
      a.push('--ro-bind-try', f, f);
    }
  } else {
    a.push('--ro-bind', place(spec.buildroot.mount, false), '/');
  }
  a.push(...procArgs('/proc'), '--dev', '/dev');
  a.push('--perms', '01777', '--tmpfs', '/tmp');
  a.push('--perms', '0755', '--tmpfs', '/run');
  a.push('--dir', '/run/imgmake');

  if (spec.tree) a.push(spec.tree.writable ? '--bind' : '--ro-bind', place(spec.tree.mount, spec.tree.writable), SANDBOX_TREE);
  if (spec.tree?.apiFilesystems) {
    // A new devtmpfs-like /dev (bwrap's: null, zero, random, tty… bound from the host, pts,
    // shm) and the sandbox's own /proc, as safe as /proc; the tree's bind stays nodev, so a
    // device node a stage makes in the tree is still useless.
    a.push('--dev', `${SANDBOX_TREE}/dev`, ...procArgs(`${SANDBOX_TREE}/proc`));
  }
  for (const input of spec.inputs) a.push('--ro-bind', place(input.mount, false), `${SANDBOX_INPUTS}/${input.name}`);
  if (spec.runDir) a.push('--ro-bind', place({ kind: 'dir', path: spec.runDir }, false), SANDBOX_RUN);
  for (const b of spec.binds ?? []) a.push(b.writable ? '--bind' : '--ro-bind', b.src, b.dest);
  // Last, once every mount point exists: bwrap's own root is a writable tmpfs, and a stage that
  // wrote to /x or /etc/x would lose it silently. /tmp, /run and /dev are their own mounts and
  // stay writable. (A tree buildroot is a read-only bind already; this is then a no-op.)
  a.push('--remount-ro', '/');

  a.push('--clearenv');
  const env: Record<string, string> = { PATH: DEFAULT_PATH, SOURCE_DATE_EPOCH, ...spec.env };
  for (const k of Object.keys(env).sort()) a.push('--setenv', k, env[k]!);
  a.push('--chdir', spec.cwd ?? (spec.tree ? SANDBOX_TREE : '/'));

  const lines = [CLOSE_INHERITED, 'set -eu'];
  if (fstab.length) {
    // One process mounts every overlay, in order, with paths relative to staging. util-linux ≥
    // 2.39 passes options through the new mount API, which caps one value at 256 bytes: a
    // lowerdir= of more than three layers. mount(2) takes a page (util-linux#2287).
    lines.push(`cd ${shq(staging)}`, `LIBMOUNT_FORCE_MOUNT2=always mount -a -T ${FSTAB}`, 'cd /', 'unset OLDPWD');
  }
  // bwrap's environment becomes its pid 1's, which a stage can read: nothing of the host in it.
  lines.push('exec bwrap "$@"');
  return { links: [...links], dirs, fstab: fstab.map((l) => `${l}\n`).join(''), script: lines.join('\n'), options: a };
}

/** bwrap's options for a spec (the part read from `--args`), with staging at `staging`. Pure. */
export function bwrapArgs(spec: SandboxSpec, staging = STAGING_EXAMPLE): string[] {
  return sandboxLayout(spec, staging).options;
}

/**
 * The shell prelude run in a fresh private mount namespace before `exec bwrap`: it mounts the
 * staging fstab's overlays (see `sandboxLayout`). When the namespace's last process exits, the
 * mounts vanish with it: a killed build leaves no mount behind. Pure.
 */
export function mountScript(spec: SandboxSpec, staging = STAGING_EXAMPLE): string {
  return sandboxLayout(spec, staging).script;
}

/** The fstab's name in the staging directory. */
export const FSTAB = 'fstab';

/** A staging path for callers that only look at the shape (tests, docs). */
export const STAGING_EXAMPLE = '/tmp/imgmake-sandbox-example';

/** The descriptors bwrap reads its options and its seccomp filter from. */
export const ARGS_FD = 3;
export const SECCOMP_FD = 4;

/**
 * The prelude's first line: closes every descriptor but stdio and bwrap's two (ARGS_FD,
 * SECCOMP_FD). What imgmake was started with (a CI runner's pipe, a shell's `7>file`, a
 * directory some launcher leaked) is inherited by every process it starts, and bwrap closes
 * none of it: a stage could write to such a file, and a directory's descriptor is a way out of
 * every namespace (`/proc/self/fd/7/…` resolves on the host). bash, for `exec {fd}>&-` (dash
 * closes only 0–9); the glob's own descriptor is gone by the time its number comes up, hence
 * the silence.
 */
const CLOSE_INHERITED = `for fd in /proc/self/fd/*; do fd=\${fd##*/}; case $fd in 0|1|2|${ARGS_FD}|${SECCOMP_FD}) ;; *) { exec {fd}>&-; } 2>/dev/null || :;; esac; done`;

/**
 * The whole command: `unshare` makes the private mount namespace, bash mounts, bwrap runs with
 * its options from descriptor 3 and the filter from 4, so that its command line (which its
 * pid 1 inside the sandbox keeps) is only `bwrap --unsetenv MARKER --args 3 -- COMMAND…`.
 * `marker` is a random name by which the run's processes are found after a cancel. Pure.
 */
export function sandboxCommand(spec: SandboxSpec, o: { staging: string; marker: string }): { file: string; args: string[]; layout: SandboxLayout } {
  const layout = sandboxLayout(spec, o.staging);
  return {
    file: 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/bash',
      '-c',
      layout.script,
      'imgmake-sandbox',
      '--unsetenv',
      o.marker,
      '--args',
      String(ARGS_FD),
      '--',
      ...spec.argv,
    ],
    layout,
  };
}

/** bwrap's options as the NUL-separated text `--args` reads. */
export function argsFile(options: readonly string[]): Buffer {
  for (const o of options) if (o.includes('\0')) throw new Error(`a sandbox option holds a NUL character: ${JSON.stringify(o)}`);
  return Buffer.from(options.map((o) => `${o}\0`).join(''));
}

/** POSIX shell single-quoting. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_\/.=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
