/**
 * Runs the real `imgmake` command (bin/imgmake.js) as a child process, the way a user does, and
 * parses `--json` output into events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkedEvent } from './event-schema.js';

export const repoRoot = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
export const bin = join(repoRoot, 'bin', 'imgmake.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Parsed JSON lines of stdout (when run with --json), each checked against the event schema, without `v` and `time`. */
  events: Record<string, any>[];
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Written to the command's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
}

export function startImgmake(args: string[], opts: CliOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, CI: 'true', ...opts.env },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (opts.input !== undefined) {
    // A command that exits without reading all of it closes the pipe: not the test's failure.
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input);
  }
  return child;
}

export function imgmake(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((done, reject) => {
    const child = startImgmake(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map(checkedEvent);
      done({ code, stdout, stderr, events });
    });
  });
}

/** A temporary copy of an example project; `cleanup()` removes it (cache and out/ included). */
export async function tempProject(example = 'hello'): Promise<{ dir: string; file: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `imgmake-${example}-`));
  await cp(join(repoRoot, 'examples', example), dir, {
    recursive: true,
    filter: (src) => !/\/(cache|out|imgmake\.lock)(\/|$)/.test(src.slice(join(repoRoot, 'examples', example).length)),
  });
  return { dir, file: join(dir, 'imgmake.yaml'), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function stageEvents(r: CliResult, status?: string): Record<string, any>[] {
  return r.events.filter((e) => e.type === 'stage' && (status === undefined || e.status === status));
}

export function ran(r: CliResult): string[] {
  return stageEvents(r, 'ran').map((e) => e.node as string).sort();
}

export function summary(r: CliResult): Record<string, any> {
  const s = r.events.filter((e) => e.type === 'summary');
  if (s.length !== 1) throw new Error(`expected one summary, got ${s.length}:\n${r.stdout}\n${r.stderr}`);
  return s[0]!;
}

/** A temporary project (a copy of examples/hello, for its files) whose definition is `yaml`. */
export async function projectWith(yaml: string): Promise<Awaited<ReturnType<typeof tempProject>>> {
  const p = await tempProject();
  await writeFile(p.file, yaml);
  return p;
}
