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
 * the capabilities a package install needs but not CAP_SYS_ADMIN (no mounts, no escape),
 * and the process dies with imgmake.
 */

import { release } from 'node:os';
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
  /** One directory, bound as it is (a writable first stage, or a one-layer tree read-only). */
  | { kind: 'dir'; path: string }
  /**
   * An overlay: `lowers` are directory names relative to `layersDir`, topmost first. With
   * `upper` and `work` it is writable and `upper` receives the diff; without, read-only.
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
 * Capabilities a stage keeps (Docker's default set): enough for dpkg, chown, mknod, setcap and
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

/** Where a TreeMount appears on the host side of the mount namespace (what bwrap binds). */
export function hostPath(m: TreeMount): string {
  return m.kind === 'dir' ? m.path : m.mountpoint;
}

/**
 * bubblewrap's argument list for a spec (without the leading `bwrap`). Pure.
 * Order matters to bwrap: later mounts land on top of earlier ones, so `/` comes first.
 */
export function bwrapArgs(spec: SandboxSpec): string[] {
  const a: string[] = [];
  a.push('--die-with-parent');
  a.push('--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try');
  if (!spec.network) a.push('--unshare-net');
  if (!spec.interactive) a.push('--new-session');
  a.push('--cap-drop', 'ALL');
  for (const cap of STAGE_CAPS) a.push('--cap-add', cap);

  if (spec.buildroot.kind === 'host') {
    a.push('--ro-bind', '/usr', '/usr');
    for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) a.push('--symlink', `usr/${d}`, `/${d}`);
    // The dynamic linker's cache, name lookup, and the alternatives that /usr/bin/awk, pager, lzcat…
    // point into (without it Debian's `awk` is a dangling link); nothing else of the host's /etc.
    // /etc itself 0755: bwrap would make it 0700, and a tool that drops root (apt's _apt
    // downloader, a daemon's own user) could then not read passwd or ld.so.cache.
    a.push('--perms', '0755', '--dir', '/etc');
    for (const f of ['/etc/ld.so.cache', '/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/alternatives']) {
      a.push('--ro-bind-try', f, f);
    }
  } else {
    a.push('--ro-bind', hostPath(spec.buildroot.mount), '/');
  }
  a.push('--proc', '/proc', '--dev', '/dev');
  a.push('--perms', '01777', '--tmpfs', '/tmp');
  a.push('--perms', '0755', '--tmpfs', '/run');
  a.push('--dir', '/run/imgmake');

  if (spec.tree) a.push(spec.tree.writable ? '--bind' : '--ro-bind', hostPath(spec.tree.mount), SANDBOX_TREE);
  if (spec.tree?.apiFilesystems) {
    // A new devtmpfs-like /dev (bwrap's: null, zero, random, tty… bound from the host, pts,
    // shm) and the sandbox's own /proc; the tree's bind stays nodev, so a device node a stage
    // makes in the tree is still useless.
    a.push('--dev', `${SANDBOX_TREE}/dev`, '--proc', `${SANDBOX_TREE}/proc`);
  }
  for (const input of spec.inputs) a.push('--ro-bind', hostPath(input.mount), `${SANDBOX_INPUTS}/${input.name}`);
  if (spec.runDir) a.push('--ro-bind', spec.runDir, SANDBOX_RUN);
  for (const b of spec.binds ?? []) a.push(b.writable ? '--bind' : '--ro-bind', b.src, b.dest);
  // Last, once every mount point exists: bwrap's own root is a writable tmpfs, and a stage that
  // wrote to /x or /etc/x would lose it silently. /tmp, /run and /dev are their own mounts and
  // stay writable. (A tree buildroot is a read-only bind already; this is then a no-op.)
  a.push('--remount-ro', '/');

  a.push('--clearenv');
  const env: Record<string, string> = { PATH: DEFAULT_PATH, SOURCE_DATE_EPOCH, ...spec.env };
  for (const k of Object.keys(env).sort()) a.push('--setenv', k, env[k]!);
  a.push('--chdir', spec.cwd ?? (spec.tree ? SANDBOX_TREE : '/'));
  a.push('--', ...spec.argv);
  return a;
}

/** Every overlay the spec needs, in mount order. */
export function overlaysOf(spec: SandboxSpec): Extract<TreeMount, { kind: 'overlay' }>[] {
  const all: TreeMount[] = [];
  if (spec.buildroot.kind === 'tree') all.push(spec.buildroot.mount);
  if (spec.tree) all.push(spec.tree.mount);
  for (const i of spec.inputs) all.push(i.mount);
  return all.filter((m): m is Extract<TreeMount, { kind: 'overlay' }> => m.kind === 'overlay');
}

/** Characters the overlay option string cannot carry in a path. */
const OVERLAY_UNSAFE = /[,:\\\n]/;

/**
 * The shell prelude run in a fresh private mount namespace before `exec bwrap`: it mounts each
 * overlay. Layers are named relative to the layers directory (cd first), which keeps the
 * option string under the kernel's one-page limit for ~50 layers. When the namespace's last
 * process exits, the mounts vanish with it: a killed build leaves no mount behind. Pure.
 */
export function mountScript(spec: SandboxSpec): string {
  const lines = ['set -eu'];
  const overlays = overlaysOf(spec);
  // util-linux ≥ 2.39 passes options through the new mount API, which caps one value at 256
  // bytes: a lowerdir= of more than three layers. mount(2) takes a page (util-linux#2287).
  if (overlays.length) lines.push('export LIBMOUNT_FORCE_MOUNT2=always');
  for (const o of overlays) {
    for (const p of [o.layersDir, o.upper, o.work, ...o.lowers]) {
      if (p !== undefined && OVERLAY_UNSAFE.test(p)) {
        throw new Error(`the cache path ${JSON.stringify(p)} holds a character (, : \\) overlayfs cannot take; move the cache with --cache`);
      }
    }
    if (o.lowers.length === 0) throw new Error(`Internal error: overlay at ${o.mountpoint} has no lower layer`);
    if ((o.upper === undefined) !== (o.work === undefined)) {
      throw new Error(`Internal error: overlay at ${o.mountpoint} has an upper dir without a work dir or the reverse`);
    }
    lines.push(`cd ${shq(o.layersDir)}`);
    if (!o.upper && o.lowers.length === 1) {
      // overlayfs refuses a single lower layer without an upper dir ("at least 2 lowerdir are
      // needed"): a one-layer read-only tree is a read-only bind of that layer instead.
      lines.push(`mount --bind -o ro ${shq(o.lowers[0]!)} ${shq(o.mountpoint)}`);
      continue;
    }
    const opts = [`lowerdir=${o.lowers.join(':')}`];
    if (o.upper && o.work) opts.push(`upperdir=${o.upper}`, `workdir=${o.work}`);
    else opts.unshift('ro');
    // Plain, portable layers: no redirects, metacopy, index or xino that tie a layer to this mount.
    opts.push('redirect_dir=off', 'metacopy=off', 'index=off', 'xino=off');
    // No sync of the whole upper filesystem when the namespace ends (overlayfs syncs it at
    // unmount otherwise: seconds after a build that wrote a disk image). Layers were never
    // fsynced (docs/store.md: power loss is not covered); this only drops an accidental flush.
    if (o.upper && o.work && OVERLAY_VOLATILE) opts.push('volatile');
    lines.push(`mount -t overlay imgmake -o ${shq(opts.join(','))} ${shq(o.mountpoint)}`);
  }
  lines.push('cd /');
  lines.push('exec bwrap "$@"');
  return lines.join('\n');
}

/** The whole command: `unshare` makes the private mount namespace, sh mounts, bwrap runs. Pure. */
export function sandboxCommand(spec: SandboxSpec): { file: string; args: string[] } {
  return {
    file: 'unshare',
    args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', mountScript(spec), 'imgmake-sandbox', ...bwrapArgs(spec)],
  };
}

/** POSIX shell single-quoting. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_\/.=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
