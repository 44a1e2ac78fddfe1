/**
 * Runs one SandboxSpec: the only place a stage's process is started. Output (stdout and stderr,
 * interleaved as written) goes to a log file; the caller decides what to show.
 *
 * execa (a hundred modules) is imported by the first run, not with this module: a build that
 * runs no stage never starts a process (docs/bench.md, "Start-up").
 */
import type { Options } from 'execa';
import { randomBytes } from 'node:crypto';
import { OWNER } from '../store/orphans.js';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, symlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOURCE_DATE_EPOCH } from '../key.js';
import { ownerGone, pidScope, type PidScope } from '../store/local.js';
import { sandboxFilter } from './seccomp.js';
import { argsFile, DEFAULT_PATH, FSTAB, sandboxCommand, type SandboxSpec } from './spec.js';

export interface SandboxResult {
  /** Exit code, or null when killed by a signal. */
  exitCode: number | null;
  signal?: string;
  /** True when the run was cancelled through `signal`. */
  cancelled: boolean;
  ms: number;
}

/** The seam the scheduler runs stages through; tests may hand in their own. */
export interface Sandbox {
  run(spec: SandboxSpec, opts: { logFile: string; signal?: AbortSignal }): Promise<SandboxResult>;
}

export const bwrapSandbox: Sandbox = {
  async run(spec, { logFile, signal }) {
    const started = performance.now();
    await prepareMountpoints(spec);
    const { execa } = await import('execa');
    const r = await withStaging(spec, ({ file, args, fds, marker }) =>
      execa(file, args, {
        stdio: ['ignore', { file: logFile, append: true }, { file: logFile, append: true }, fds[0], fds[1]] as Options['stdio'],
        reject: false,
        env: { PATH: DEFAULT_PATH },
        extendEnv: false,
        ...(signal ? { cancelSignal: signal } : {}),
        forceKillAfterDelay: 2000,
      }).then(async (r) => {
        if (signal?.aborted) await reap(marker);
        return r;
      }),
    );
    return {
      exitCode: r.exitCode ?? null,
      ...(r.signal ? { signal: r.signal } : {}),
      cancelled: r.isCanceled === true,
      ms: Math.round(performance.now() - started),
    };
  },
};

/**
 * An interactive run (imgmake shell): the sandbox gets this process's stdin, stdout and stderr
 * (a terminal, or a pipe). Returns the command's exit code, 128 + the signal's number when it
 * was killed; `signal` kills it (SIGTERM, then SIGKILL).
 */
export async function runInteractive(spec: SandboxSpec, opts: { signal?: AbortSignal } = {}): Promise<number> {
  await prepareMountpoints(spec);
  const { execa } = await import('execa');
  const r = await withStaging({ ...spec, interactive: true }, ({ file, args, fds, marker }) =>
    execa(file, args, {
      stdio: ['inherit', 'inherit', 'inherit', fds[0], fds[1]] as Options['stdio'],
      reject: false,
      env: { PATH: DEFAULT_PATH },
      extendEnv: false,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      forceKillAfterDelay: 2000,
    }).then(async (r) => {
      if (opts.signal?.aborted) await reap(marker);
      return r;
    }),
  );
  if (r.exitCode !== undefined) return r.exitCode;
  return 128 + (r.signal ? (constants.signals[r.signal as keyof typeof constants.signals] ?? 0) : 0);
}

/**
 * Makes the run's staging directory (a private temp dir: the symlinks and mount points of
 * `sandboxLayout`, bwrap's options and the seccomp filter as files), opens the two files as
 * the descriptors bwrap reads (3 and 4; bwrap closes both before the command starts), runs
 * `go`, and removes it all. The namespace's mounts on it vanish with the namespace; the host
 * only ever sees symlinks and empty directories there.
 */
async function withStaging<T>(
  spec: SandboxSpec,
  go: (c: { file: string; args: string[]; fds: [args: number, seccomp: number]; marker: string }) => Promise<T>,
): Promise<T> {
  await (swept ??= sweepStaging());
  spec = await filesAsFiles(spec);
  const staging = await mkdtemp(join(tmpdir(), `${STAGING_PREFIX}${OWNER}-`));
  const handles: FileHandle[] = [];
  try {
    const marker = `IMGMAKE_SANDBOX_${randomBytes(8).toString('hex')}`;
    const { file, args, layout } = sandboxCommand(spec, { staging, marker });
    await Promise.all(layout.dirs.map((d) => mkdir(join(staging, d))));
    await Promise.all(layout.links.map(([name, target]) => symlink(target, join(staging, name))));
    await writeFile(join(staging, FSTAB), layout.fstab, { mode: 0o600 });
    await writeFile(join(staging, 'args'), argsFile(layout.options), { mode: 0o600 });
    await writeFile(join(staging, 'seccomp.bpf'), sandboxFilter(), { mode: 0o600 });
    handles.push(await open(join(staging, 'args'), 'r'), await open(join(staging, 'seccomp.bpf'), 'r'));
    // stdio[3] and stdio[4]: ARGS_FD and SECCOMP_FD.
    const fds: [number, number] = [handles[0]!.fd, handles[1]!.fd];
    return await go({ file, args, fds, marker });
  } finally {
    for (const h of handles) await h.close().catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * A `dir` input that is a file (how callers named a `file:` input before TreeMount had `file`)
 * becomes a `file` mount: an overlay can only be made of a directory.
 */
async function filesAsFiles(spec: SandboxSpec): Promise<SandboxSpec> {
  const inputs = await Promise.all(
    spec.inputs.map(async (i) =>
      i.mount.kind === 'dir' && !(await stat(i.mount.path).then((s) => s.isDirectory(), () => true)) ? { ...i, mount: { kind: 'file' as const, path: i.mount.path } } : i,
    ),
  );
  return { ...spec, inputs };
}

const STAGING_PREFIX = 'imgmake-sandbox-';
const STAGING_NAME = /^imgmake-sandbox-\d+-[0-9a-f]*\.\d+-[A-Za-z0-9]{6}$/;
let swept: Promise<PidScope> | undefined;

/**
 * Once per process: removes the staging directories of imgmake processes that are gone (killed
 * with -9: a few symlinks, empty directories and two small files each). Named like the store's
 * work directories, `<pid>-<boot>.<pidns>-<random>`, and judged the same way.
 */
async function sweepStaging(): Promise<PidScope> {
  const here = await pidScope();
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    // Exactly our own names (tests and other tools use the same prefix for other things).
    if (!STAGING_NAME.test(name) || !ownerGone(name.slice(STAGING_PREFIX.length), here)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
  return here;
}

/**
 * After a cancelled run, kills what is left of its sandbox before the caller discards the work
 * dir under it. bwrap's --die-with-parent should take the namespace down with the bwrap execa
 * killed; it has been seen to leave its pid 1 and the command running for more than 15 s. The
 * sandbox is found by the random marker on bwrap's command line (which its pid 1 keeps);
 * killing that pid 1 ends every process of the pid namespace. SIGKILLs every process whose
 * command line has `needle` as an argument, until none is left (at most `ms`).
 */
async function reap(needle: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    const left: number[] = [];
    for (const name of await readdir('/proc').catch(() => [] as string[])) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').includes(needle)) left.push(pid);
    }
    if (left.length === 0 || performance.now() > deadline) return;
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/**
 * The tree's dev/ and proc/ for `apiFilesystems`, made here when the tree is a plain directory:
 * bwrap would make them with the current time, and nothing in the sandbox can reach a directory
 * under a mount point to clamp it. (Over an overlay the parent's tree normally has them.)
 */
async function prepareMountpoints(spec: SandboxSpec): Promise<void> {
  if (!spec.tree?.apiFilesystems || spec.tree.mount.kind !== 'dir') return;
  const t = Number(SOURCE_DATE_EPOCH);
  for (const d of ['dev', 'proc']) {
    const p = join(spec.tree.mount.path, d);
    if ((await mkdir(p, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? 'exists' : Promise.reject(e)))) === 'exists') continue;
    await utimes(p, t, t);
  }
}
