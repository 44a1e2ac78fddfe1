/**
 * Fixtures for the real-bubblewrap sandbox tests: temp dirs, a snapshot of a directory tree
 * (to prove a layer is byte-for-byte unchanged), a scan of /proc for a run's marker argument,
 * and a minimal root filesystem built from the host's bash (a buildroot that is not the host).
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bwrapSandbox, type SandboxResult } from '../../src/sandbox/run.js';
import type { SandboxSpec } from '../../src/sandbox/spec.js';

/** A fresh temp directory under the OS temp dir; `cleanup` removes it (it holds no mounts). */
export function tempDir(prefix = 'imgmake-sandbox-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A marker no other process on the machine carries in its command line. */
export function uniqueMarker(): string {
  return `imgmake-marker-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Every entry below `dir` with what a filesystem holds about it (type, mode, owner, size, mtime,
 * inode, device numbers, content digest or link target), keyed by relative path. Two equal
 * snapshots mean the tree was not touched, not even rewritten in place.
 */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const p = rel ? join(dir, rel) : dir;
    const st = lstatSync(p, { bigint: true });
    let what: string;
    if (st.isSymbolicLink()) what = `link:${readlinkSync(p)}`;
    else if (st.isFile()) what = `file:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    else if (st.isDirectory()) what = 'dir';
    else what = `special:${st.rdev}`;
    out[rel || '.'] = [what, st.mode, st.uid, st.gid, st.size, st.mtimeNs, st.ino, st.nlink].join(' ');
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) walk(rel ? join(rel, name) : name);
  };
  walk('');
  return out;
}

/** Pids whose command line contains `marker` (the sandbox's unshare/sh/bwrap and its command). */
export function processesWith(marker: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue; // exited while we looked
    }
    if (cmdline.includes(marker)) found.push({ pid: Number(name), cmdline });
  }
  return found;
}

/** Polls `pred` every 50 ms; resolves true as soon as it holds, false after `ms`. */
export async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (pred()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The host's mount table lines that mention `path` (mountinfo escapes spaces as \040). */
export function mountsMentioning(path: string): string[] {
  const escaped = path.replace(/ /g, '\\040');
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(path) || l.includes(escaped));
}

/** Runs `script` with bash in a sandbox built from `spec`; returns the result and the log text. */
export async function runScript(
  spec: Omit<SandboxSpec, 'argv' | 'env'> & { env?: Record<string, string> },
  script: string,
  logDir: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ result: SandboxResult; log: string }> {
  const logFile = join(logDir, `stage-${randomBytes(4).toString('hex')}.log`);
  const result = await bwrapSandbox.run(
    { ...spec, env: spec.env ?? {}, argv: ['/bin/bash', '-c', script] },
    { logFile, ...(opts.signal ? { signal: opts.signal } : {}) },
  );
  let log = '';
  try {
    log = readFileSync(logFile, 'utf8');
  } catch {
    // no output at all
  }
  return { result, log };
}

/**
 * A root filesystem that holds only the host's bash and the libraries it links, at the merged-/usr
 * paths, plus the empty directories bwrap mounts over (proc, dev, tmp, run). Enough to run bash
 * builtins; proves a stage runs in *this* root and not the host's.
 */
export function minimalRoot(root: string): void {
  for (const d of ['usr/bin', 'usr/lib', 'usr/lib64', 'proc', 'dev', 'tmp', 'run', 'etc']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${d === 'sbin' ? 'bin' : d}`, join(root, d));
  const bash = '/usr/bin/bash';
  const libs = execFileSync('ldd', [bash], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  for (const p of [bash, ...libs]) {
    // /lib/x86_64-linux-gnu/libc.so.6 → usr/lib/x86_64-linux-gnu/libc.so.6 in the merged layout.
    const inRoot = p.startsWith('/usr/') ? p.slice(1) : `usr${p}`;
    mkdirSync(dirname(join(root, inRoot)), { recursive: true });
    copyFileSync(realpathSync(p), join(root, inRoot));
    chmodSync(join(root, inRoot), 0o755);
  }
}
