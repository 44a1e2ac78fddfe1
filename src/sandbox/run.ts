/**
 * Runs one SandboxSpec: the only place a stage's process is started. Output (stdout and stderr,
 * interleaved as written) goes to a log file; the caller decides what to show.
 */
import { execa } from 'execa';
import { mkdir, readdir, readFile, utimes } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { SOURCE_DATE_EPOCH } from '../key.js';
import { DEFAULT_PATH, sandboxCommand, type SandboxSpec } from './spec.js';

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
    const { file, args } = sandboxCommand(spec);
    const r = await execa(file, args, {
      stdin: 'ignore',
      stdout: { file: logFile, append: true },
      stderr: { file: logFile, append: true },
      reject: false,
      env: { PATH: DEFAULT_PATH },
      extendEnv: false,
      ...(signal ? { cancelSignal: signal } : {}),
      forceKillAfterDelay: 2000,
    });
    if (signal?.aborted) await reapCancelled(spec);
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
  const { file, args } = sandboxCommand({ ...spec, interactive: true });
  const r = await execa(file, args, {
    stdio: 'inherit',
    reject: false,
    env: { PATH: DEFAULT_PATH },
    extendEnv: false,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    forceKillAfterDelay: 2000,
  });
  if (opts.signal?.aborted) await reapCancelled(spec);
  if (r.exitCode !== undefined) return r.exitCode;
  return 128 + (r.signal ? (constants.signals[r.signal as keyof typeof constants.signals] ?? 0) : 0);
}

/**
 * After a cancelled run, kills what is left of its sandbox before the caller discards the work
 * dir under it. bwrap's --die-with-parent should take the namespace down with the bwrap execa
 * killed; it has been seen to leave its pid 1 and the command running for more than 15 s. The
 * sandbox is named by its writable tree's path in its command line: a path inside this run's
 * own work dir (a committed layer's path can be in other builds' command lines).
 */
async function reapCancelled(spec: SandboxSpec): Promise<void> {
  const tree = spec.tree;
  if (tree?.writable) await reap(tree.mount.kind === 'dir' ? tree.mount.path : tree.mount.mountpoint);
}

/** SIGKILLs every process whose command line contains `needle`, until none is left (at most `ms`). */
async function reap(needle: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    const left: number[] = [];
    for (const name of await readdir('/proc').catch(() => [] as string[])) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').includes(needle) || cmdline.includes(`${needle}/`)) left.push(pid);
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
