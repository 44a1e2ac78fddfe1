/**
 * Delivered outputs: a target's last stage that only converts or packs a tree the cache keeps
 * (its rule.json says `"deliver": true`: qcow2, vmdk, vhd, gce, a compressed disk, an OCI or
 * tar archive, an ISO) hands its file to out/TARGET instead of committing it to the cache for
 * export to copy it out again. The copy was a second write of every byte of the image (0.8 GB
 * for examples/debian-12's qcow2, 1.3 s of a 9 s late edit: docs/bench.md); a rename is none.
 *
 *     stage runs ──► its upper holds TARGET's files ──take──► out/.TARGET.new-OWNER/out/
 *                                                             ──export: swap + stamp──► out/TARGET
 *     next build: out/TARGET's stamp names the stage's key, its folder and files still there
 *                 ──► the stage is current (planned `cached`, `delivered`), nothing runs
 *
 * What the cache keeps is the tree the stage reads (the raw disk, the OS tree): when out/TARGET
 * is gone or another build replaced it, the stage runs again (one conversion), and a build
 * whose target's files are elsewhere in the tree (a stage that left them in a lower layer) or
 * not plain files commits the stage as any other. A stage is delivered only when nothing else
 * needs its tree: it is the last stage of exactly one target of this build and no other goal's
 * ancestor, the build exports (not `--until`), has no remote cache (a remote gets every tree:
 * it is committed and uploaded as before) and is not a `--patch` build (patch/ keeps records
 * of full exports).
 *
 * out/ stays self-contained and the cache cannot be changed through it: the files are moved out
 * of the stage's own work directory, never linked to anything the cache holds. Their times are
 * clamped as a commit would (store/times.ts), so out/TARGET is byte for byte and time for time
 * what a copy out of the committed tree gave.
 */
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { basename, join } from 'node:path';
import type { TargetDef } from './definition.js';
import { deliveredCurrent, privateDir, type Staged } from './export.js';
import { ancestors, type BuildGraph } from './graph.js';
import type { CacheKey, NodeId } from './ids.js';
import type { Keys } from './key.js';
import { SOURCE_DATE_EPOCH } from './key.js';
import { clampTimes } from './store/times.js';
import { ownedName } from './store/orphans.js';

export interface Deliveries {
  /** Stages whose output out/ already holds: the plan counts them as done. */
  current: Set<NodeId>;
  /** Stages that, when they run, hand their target's files to `take`. */
  take: Map<NodeId, (upper: string) => Promise<boolean>>;
  /** What each stage that ran delivered, by target name: what export swaps in. */
  staged: Map<string, Staged>;
  /** Removes the staged folders no export took (a failed or cancelled build). */
  release(): Promise<void>;
}

/**
 * The deliveries of a build of `targets` up to `goals`: which of the targets' last stages
 * deliver, and which of those out/ already holds.
 */
export async function planDeliveries(o: { graph: BuildGraph; keys: Keys; targets: TargetDef[]; goals: NodeId[]; force: ReadonlySet<NodeId>; outDir: string }): Promise<Deliveries> {
  const { graph: g } = o;
  const finals = o.targets.map((t) => g.final(t.pipeline));
  const d: Deliveries = {
    current: new Set(),
    take: new Map(),
    staged: new Map(),
    async release() {
      await Promise.all([...d.staged.values()].map((s) => rm(s.dir, { recursive: true, force: true })));
      d.staged.clear();
    },
  };
  for (const [i, t] of o.targets.entries()) {
    const id = finals[i]!;
    if (!g.stage(id).rule.schema.deliver || finals.filter((f) => f === id).length > 1) continue;
    const others = o.goals.filter((x) => x !== id);
    if (others.length && ancestors(g, others).has(id)) continue;
    const key = o.keys.get(id)!.key;
    if (!o.force.has(id) && (await deliveredCurrent(o.outDir, t, key))) {
      d.current.add(id);
      continue;
    }
    d.take.set(id, async (upper) => {
      const staged = await takeFiles(o.outDir, t, key, upper);
      if (staged) d.staged.set(t.name, staged);
      return staged !== undefined;
    });
  }
  return d;
}

/**
 * Moves `target`'s files out of a finished stage's upper directory into a private folder beside
 * out/TARGET. Undefined, with nothing moved, when one of them is not a plain file at the top of
 * the upper (it is in a lower layer, a symlink, a folder, or a path below the top): the stage is
 * then committed and exported as any other.
 */
export async function takeFiles(outDir: string, target: TargetDef, key: CacheKey, upper: string): Promise<Staged | undefined> {
  const names = target.export.map((p) => p.replace(/^\/+/, ''));
  if (!names.length || names.some((n) => n === '' || n.includes('/') || n === '.' || n === '..')) return undefined;
  for (const n of names) {
    const s = await lstat(join(upper, n)).catch(() => undefined);
    if (!s?.isFile()) return undefined;
  }
  await clampTimes(upper, Number(SOURCE_DATE_EPOCH));
  await mkdir(outDir, { recursive: true });
  const dir = await privateDir(join(outDir, ownedName(`.${target.name}.new-`)));
  const into = join(dir, 'out');
  await mkdir(into);
  for (const n of names) await moveFile(join(upper, n), join(into, basename(n)));
  return { key, dir, into };
}

/** A rename; across filesystems (the cache elsewhere than out/), a copy that keeps holes, owner, mode and times. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    // A plain file checked by lstat, in the finished stage's own work directory: no link to follow.
    // Required here, not imported with the module: a no-op build starts no process (docs/bench.md, "Start-up").
    const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    await promisify(execFile)('cp', ['-a', '--sparse=auto', '--', from, to]);
  }
}
