/**
 * CI runners for the remote-cache tests: each runner is a fresh copy of examples/hello and an
 * empty cache directory under `root`; `build` runs `imgmake build hello` on one with --json.
 * `cleanup()` removes the projects and `root`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packLayer, type PackedBlob } from '../../src/remote/blob.js';
import { imgmake, ran, tempProject, type CliResult } from './cli.js';

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

/** Flips one byte in the middle of a file: the same size, so only its digest can tell. */
export function flipByte(file: string): void {
  const bad = Buffer.from(readFileSync(file));
  bad[Math.floor(bad.length / 2)]! ^= 0xff;
  writeFileSync(file, bad);
}

/**
 * `r`, a build of runner `d` that met a corrupt blob for tarball.tar: it built that node (its
 * input came from the remote), said so in one warning naming it, and exported the same bytes
 * as runner `reference`.
 */
export function assertCorruptRejected(r: CliResult, d: Runner, reference: Runner): void {
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(ran(r), ['tarball.tar'], 'the corrupt node is built; its input comes from the remote');
  const warnings = events(r, 'warning');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.equal(warnings[0]!.node, 'tarball.tar');
  assert.match(warnings[0]!.message, /tarball\.tar: its tree on the remote was not used \(blob [0-9a-f]{64} is corrupt/);
  assert.equal(sha256(join(d.dir, 'out', 'hello', 'hello.tar')), sha256(join(reference.dir, 'out', 'hello', 'hello.tar')));
}

/**
 * A layer made by `script` (bash, run in an empty directory), packed as an upload packs it: the
 * blob file (under `root`) and its digest. The layer directory is removed.
 */
export async function packed(root: string, script: string): Promise<PackedBlob & { file: string }> {
  const dir = mkdtempSync(join(root, 'layer-'));
  const layer = join(dir, 'layer');
  mkdirSync(layer);
  execFileSync('/bin/bash', ['-euo', 'pipefail', '-c', script], { cwd: layer });
  const file = join(dir, 'blob.tar.zst');
  const b = await packLayer(layer, file);
  rmSync(layer, { recursive: true, force: true });
  return { ...b, file };
}
