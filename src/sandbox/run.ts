/**
 * Runs one SandboxSpec: the only place a stage's process is started. Output (stdout and stderr,
 * interleaved as written) goes to a log file; the caller decides what to show.
 *
 * The process is started with node:child_process, not execa: importing execa (a hundred
 * modules) cost the first stage of every build 100–150 ms of the main thread, and this needs
 * none of what it adds (docs/bench.md, "Where the time goes").
 */
import type { StdioOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { OWNER } from '../store/orphans.js';
import { createWriteStream } from 'node:fs';
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
    const r = await withStaging(spec, ({ file, args, fds, marker }) =>
      runProcess(file, args, ['ignore', 'pipe', 'pipe', fds[0], fds[1]], signal, logFile).then(async (r) => {
        if (signal?.aborted) await reap(marker);
        return r;
      }),
    );
    return {
      exitCode: r.error ? 127 : (r.exitCode ?? null),
      ...(r.signal ? { signal: r.signal } : {}),
      cancelled: r.cancelled,
      ms: Math.round(performance.now() - started),
    };
  },
};

/** How a process started by `runProcess` ended. */
interface Ended {
  /** Its exit code; undefined when a signal ended it, or it never started. */
  exitCode: number | undefined;
  signal?: string;
  /** `signal` was aborted while it ran: it was sent SIGTERM (and SIGKILL 2 s later). */
  cancelled: boolean;
  /** It could not be started (the program is missing): why. */
  error?: string;
}

/** How long a cancelled process has between SIGTERM and SIGKILL. */
const KILL_AFTER_MS = 2000;

/**
 * Starts `file` with `args`, the given stdio (descriptors 3 and 4 included) and an environment
 * of PATH alone, and waits for it to end. With `logFile`, stdout and stderr are pipes whose
 * output is appended to it as it comes: never the file itself, whose host path a stage would
 * read in /proc/self/fd. An abort of `signal` sends SIGTERM, then SIGKILL after KILL_AFTER_MS.
 */
function runProcess(file: string, args: string[], stdio: StdioOptions, signal: AbortSignal | undefined, logFile?: string): Promise<Ended> {
  return new Promise((resolve) => {
    // Cancelled before it started: as if the SIGTERM had reached it (an interrupted shell exits 143).
    if (signal?.aborted) return resolve({ exitCode: undefined, signal: 'SIGTERM', cancelled: true });
    // Required here, not imported with the module: a no-op build starts no process (docs/bench.md, "Start-up").
    const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const child = spawn(file, args, { stdio, env: { PATH: DEFAULT_PATH } });
    const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    if (log) {
      log.on('error', () => undefined);
      child.stdout?.pipe(log, { end: false });
      child.stderr?.pipe(log, { end: false });
    }
    let cancelled = false;
    let killer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      cancelled = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let finished = false;
    const done = (r: Ended): void => {
      // A process that cannot start emits 'error' and may then 'close' too.
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      if (killer) clearTimeout(killer);
      if (!log) return resolve(r);
      if (r.error) log.write(`imgmake: starting the sandbox failed: ${r.error}\n`);
      log.end(() => resolve(r));
    };
    child.once('error', (e) => done({ exitCode: undefined, cancelled, error: e.message }));
    // 'close': after the exit, once stdout and stderr have ended, so the log is whole.
    child.once('close', (code, sig) => done({ exitCode: code ?? undefined, ...(sig ? { signal: sig } : {}), cancelled }));
  });
}

/**
 * An interactive run (imgmake shell): the sandbox gets this process's stdin, stdout and stderr
 * (a terminal, or a pipe). Returns the command's exit code, 128 + the signal's number when it
 * was killed; `signal` kills it (SIGTERM, then SIGKILL).
 */
export async function runInteractive(spec: SandboxSpec, opts: { signal?: AbortSignal } = {}): Promise<number> {
  await prepareMountpoints(spec);
  const r = await withStaging({ ...spec, interactive: true }, ({ file, args, fds, marker }) =>
    runProcess(file, args, ['inherit', 'inherit', 'inherit', fds[0], fds[1]], opts.signal).then(async (r) => {
      if (opts.signal?.aborted) await reap(marker);
      return r;
    }),
  );
  if (r.error) throw new Error(`starting the sandbox failed: ${r.error}`);
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
 * dir under it. bwrap's --die-with-parent should take the namespace down with the bwrap runProcess
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
