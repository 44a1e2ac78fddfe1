/**
 * CI runners for the remote-cache tests: each runner is a fresh copy of examples/hello and an
 * empty cache directory under `root`; `build` runs `imgmake build hello` on one with --json.
 * `cleanup()` removes the projects and `root`.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { imgmake, tempProject, type CliResult } from './cli.js';

export interface Runner {
  dir: string;
  file: string;
  cache: string;
}

export function runners(root: string): { runner(): Promise<Runner>; cleanup(): Promise<void> } {
  const projects: { cleanup(): Promise<void> }[] = [];
  return {
    async runner() {
      const p = await tempProject();
      projects.push(p);
      return { dir: p.dir, file: p.file, cache: mkdtempSync(join(root, 'cache-')) };
    },
    async cleanup() {
      for (const p of projects) await p.cleanup();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function build(r: { file: string; cache: string }, args: string[] = [], env: Record<string, string> = {}): Promise<CliResult> {
  return imgmake(['-f', r.file, '--cache', r.cache, '--json', ...args, 'build', 'hello'], { env });
}

export const events = (r: CliResult, type: string): Record<string, any>[] => r.events.filter((e) => e.type === type);

export const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
