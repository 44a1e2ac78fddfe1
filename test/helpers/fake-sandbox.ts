/**
 * A recording sandbox for in-process engine tests (plan, schedule, remote, export): it runs no
 * process. A stage "runs" by writing one file into its writable tree (so each stage's layer has
 * content and its tree differs from its parent's); what each run asked for is recorded. A test
 * makes a chosen stage fail, or hang until cancelled, by a marker: a string in its argv or in
 * the files its rule wrote for the run (its options: a timezone's name, say).
 *
 * The seam it fakes is src/sandbox/run.ts's `Sandbox`; the real one is tested in sandbox*.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox, SandboxResult } from '../../src/sandbox/run.js';
import type { SandboxSpec } from '../../src/sandbox/spec.js';

export interface FakeRun {
  spec: SandboxSpec;
  logFile: string;
}

export interface FakeSandbox extends Sandbox {
  runs: FakeRun[];
  /** Runs whose writable tree is a stage's (not exports, resolvers, checks). */
  stageRuns(): FakeRun[];
  /** Make the run that mentions `marker` (argv, rule files) exit with `code`. */
  failWhen(marker: string, code?: number): void;
  /** Make the run that mentions `marker` wait until cancelled; `started` resolves when it starts. */
  hangWhen(marker: string): { started: Promise<void> };
}

function mentions(spec: SandboxSpec, marker: string): boolean {
  if (spec.argv.some((a) => a.includes(marker))) return true;
  if (!spec.runDir) return false;
  return readdirSync(spec.runDir).some((f) => readFileSync(join(spec.runDir!, f), 'utf8').includes(marker));
}

export function fakeSandbox(): FakeSandbox {
  const runs: FakeRun[] = [];
  const failing = new Map<string, number>();
  const hanging = new Map<string, () => void>();
  let n = 0;
  return {
    runs,
    stageRuns: () => runs.filter((r) => r.spec.tree?.writable === true),
    failWhen(marker, code = 1) {
      failing.set(marker, code);
    },
    hangWhen(marker) {
      let started!: () => void;
      const p = new Promise<void>((r) => (started = r));
      hanging.set(marker, started);
      return { started: p };
    },
    async run(spec, { logFile, signal }): Promise<SandboxResult> {
      runs.push({ spec, logFile });
      const t0 = performance.now();
      await appendFile(logFile, `fake run: ${spec.argv.join(' ')}\n`);
      for (const [marker, started] of hanging) {
        if (!mentions(spec, marker)) continue;
        started();
        await new Promise<void>((resolve) => {
          if (signal?.aborted) return resolve();
          signal?.addEventListener('abort', () => resolve(), { once: true });
        });
        return { exitCode: null, signal: 'SIGKILL', cancelled: true, ms: Math.round(performance.now() - t0) };
      }
      for (const [marker, code] of failing) {
        if (mentions(spec, marker)) {
          await appendFile(logFile, `fake failure: exit ${code}\n`);
          return { exitCode: code, cancelled: false, ms: Math.round(performance.now() - t0) };
        }
      }
      const tree = spec.tree;
      if (tree?.writable) {
        const dir = tree.mount.kind === 'overlay' ? tree.mount.upper! : tree.mount.path;
        await mkdir(join(dir, 'fake'), { recursive: true });
        await writeFile(join(dir, 'fake', `run-${++n}`), `${spec.argv.join(' ')}\n${JSON.stringify(spec.env)}\n`);
      }
      return { exitCode: 0, cancelled: false, ms: Math.round(performance.now() - t0) };
    },
  };
}
