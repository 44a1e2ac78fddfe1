/**
 * Locking, an explicit step between loading a project and keying it: every package stage gets
 * its lock (imgmake.lock), resolved now when the mode allows, and its locked artifacts as its
 * package input; only then can keys be computed (engine/project.ts, keyProject).
 *
 * A format with `needsBuildroot` resolves and verifies in the stage's `build:` pipeline's tree,
 * never the host's. When the cache lacks that tree, `buildroots` builds it first with the
 * build's own spine (engine/run.ts), holding a lease on it until the step ends:
 *
 *     lockPackages ─▶ attachLocks(def, { buildrootOf }) ─▶ stage os.packages unlocked
 *       ─▶ buildrootOf(stage) ─▶ lease + runSpine(its build: pipeline) ─▶ its tree
 *       ─▶ the format resolves in it ─▶ imgmake.lock written ─▶ release
 *
 * The package layer locks the other formats' stages first (the buildroot's own among them), so
 * the buildroot's keys exist when it is built. A build's verify step uses the same hook: a
 * buildroot the cache lacks there (a lock from git, a cold cache) is built then.
 */
import { join } from 'node:path';
import type { Diagnostic } from '../diagnostic.js';
import { ancestors } from '../graph.js';
import type { PipelineName } from '../ids.js';
import { attachLocks, type Locked, type LockOptions } from '../packages/index.js';
import type { Plan } from '../plan.js';
import type { Result } from '../result.js';
import type { Lease } from '../store/gc.js';
import type { TreeRecord } from '../store/types.js';
import { leaseGoals } from './lease.js';
import { keyProject } from './project.js';
import { exclusively } from './exclusive.js';
import { runSpine, type BuildrootOf } from './run.js';
import type { Engine, KeyedProject, Project, RunOptions } from './types.js';

export type LockMode = LockOptions['mode'];

export interface LockStepOptions extends RunOptions {
  /** A line of the step's progress ("locking os.packages: …"); default: an `info` event. */
  say?: (line: string) => void;
}

/**
 * `read`: use imgmake.lock (a stage it lacks is a usage error); `resolve`: also lock what it
 * lacks; `update`: lock everything again; `skip`: attach nothing (commands that need no keys).
 * A buildroot that fails to build is a `buildroot-failed` diagnostic (a failure of the build,
 * not of the input: its stage's failure was logged).
 */
export async function lockPackages(e: Engine, p: Project, mode: LockMode, o: LockStepOptions): Promise<Result<Locked, Diagnostic[]>> {
  const roots = mode === 'resolve' || mode === 'update' ? buildroots(e, p, o) : undefined;
  const attach = () =>
    attachLocks(p.def, p.rules, {
      ...e.formats,
      mode,
      sandbox: e.sandbox,
      workDir: join(e.cacheDir, 'lock'),
      say: o.say ?? ((message) => o.logger.log({ type: 'info', message })),
      ...(roots ? { buildrootOf: roots.of } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  try {
    // Resolving writes in CACHE/lock: one build at a time (reading imgmake.lock writes nothing).
    return await (roots ? exclusively(e, 'locking', o, attach) : attach());
  } finally {
    await roots?.release();
    // A buildroot built here went to the remote like any build's trees: let the uploads finish.
    if (roots) await e.remote?.drain();
  }
}

export interface Buildroots {
  of: BuildrootOf;
  /** Releases the leases on the buildroots built or found. */
  release(): Promise<void>;
}

/**
 * The hook: for a stage whose pipeline has a `build:` pipeline, that pipeline's tree (built
 * first if the cache lacks it, once per hook, leased until `release`); undefined for a stage
 * without one (the format then says what it needs). Throws when the buildroot cannot be built:
 * its stage's failure has been logged; the message names the pipeline.
 */
export function buildroots(e: Engine, p: Project | KeyedProject, o: RunOptions): Buildroots {
  const built = new Map<PipelineName, Promise<TreeRecord>>();
  const leases: Promise<Lease | undefined>[] = [];
  const of: BuildrootOf = async (stage) => {
    const pipeline = p.def.pipelines.get(stage.pipeline)?.build?.pipeline;
    if (!pipeline) return undefined;
    let tree = built.get(pipeline);
    if (!tree) {
      tree = buildPipeline(pipeline);
      built.set(pipeline, tree);
    }
    return { kind: 'tree', mount: e.store.readMount(await tree, join(e.cacheDir, 'tmp', 'buildroot')) };
  };
  async function buildPipeline(pipeline: PipelineName): Promise<TreeRecord> {
    // While locking: keys of the definition as locked so far. The buildroot's ancestors are all
    // locked (see above); stages still without their packages get keys nothing here uses.
    const keyed = 'graph' in p ? p : await keyProject(p);
    const goal = keyed.graph.final(pipeline);
    for (const id of ancestors(keyed.graph, [goal])) {
      const { stage, rule } = keyed.graph.stage(id);
      if (rule.schema.lock !== undefined && !stage.inputs.some((i) => i.kind === 'packages')) {
        throw new Error(`the buildroot pipeline ${pipeline} cannot be built before its stage ${stage.pipeline}.${stage.id} is locked: run imgmake lock for it first`);
      }
    }
    const lease = leaseGoals(e, keyed, [goal], o.logger).catch(() => undefined);
    leases.push(lease);
    await lease;
    const onPlan = (planned: Plan): void => {
      // A cached buildroot is not news.
      if (planned.stages.some((s) => s.status === 'run')) o.logger.log({ type: 'buildroot', pipeline });
    };
    // Its trees go to the remote like a build's (it is one); the build proper then finds them.
    const spine = await runSpine(e, keyed, { goals: [goal], force: new Set() }, { ...o, clock: undefined, onPlan, buildrootOf: of });
    if (!spine.ok) throw new Error(`building the buildroot pipeline ${pipeline} failed: ${spine.fetch}`);
    const tree = spine.schedule.trees.get(goal);
    if (!spine.schedule.ok || !tree) throw new Error(`building the buildroot pipeline ${pipeline} failed (its stage's failure is above)`);
    await e.store.flush();
    return tree;
  }
  return {
    of,
    release: async () => {
      for (const l of await Promise.all(leases)) await l?.release();
    },
  };
}

