/**
 * The buildroot a package stage's format resolves and verifies in, built on demand: a format
 * with `needsBuildroot` (its resolver and signature checker run in the pipeline's `build:` tree,
 * never the host's) gets that tree's mount through the package layer's `buildrootOf` hook.
 *
 * A bridge until issue 20 makes locking an explicit engine step. Locking runs in loadContext,
 * before the definition's keys exist, so when such a stage has no lock this builds its
 * buildroot pipeline first, on its own: the graph and keys of the definition as locked so far
 * (attach.ts locks the other formats' stages first, the buildroot's own among them), a plan of
 * that pipeline alone, its package stages fetched, scheduled, committed. The fetch before a
 * build uses the same hook for `verify`, so a buildroot the cache lacks there (a lock from git,
 * a cold cache) is built then, and the build proper finds it cached.
 *
 *     attachLocks(def, { buildrootOf }) ─▶ stage os.packages (needsBuildroot) unlocked
 *       ─▶ buildrootOf(stage) ─▶ plan + fetch + schedule of its build: pipeline ─▶ its tree
 *       ─▶ the format resolves in it ─▶ imgmake.lock written ─▶ fetch, verify (same hook), build
 *
 * It does not lock, export or print: what it runs is reported through the logger it is given,
 * as any build's stages are. It holds no cache lease while it builds (a `cache gc` at that
 * moment could take the buildroot again; the build proper then rebuilds it).
 */
import { join } from 'node:path';
import type { Definition, StageDef } from '../definition.js';
import type { Logger } from '../event.js';
import { ancestors, buildGraph } from '../graph.js';
import type { PipelineName } from '../ids.js';
import { computeKeys } from '../key.js';
import { fetchPackageInputs } from '../packages/index.js';
import { FORMATS } from '../packages/formats.js';
import { plan } from '../plan.js';
import type { RuleRegistry } from '../rule.js';
import { schedule } from '../schedule.js';
import type { Sandbox } from '../sandbox/run.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import type { Store, TreeRecord } from '../store/types.js';

/** The package layer's hook (attach.ts, fetch.ts): a stage's buildroot, or none. */
export type BuildrootOf = (stage: StageDef) => Promise<SandboxSpec['buildroot'] | undefined>;

export interface BuildrootOptions {
  def: Definition;
  rules: RuleRegistry;
  store: Store;
  sandbox: Sandbox;
  cacheDir: string;
  scope: string;
  logger: Logger;
  jobs: number;
  signal?: AbortSignal | undefined;
}

/**
 * The hook: for a stage whose pipeline has a `build:` pipeline, that pipeline's tree (built
 * first if the cache lacks it, once per hook); undefined for a stage without one (the format
 * then says what it needs). Throws when the buildroot cannot be built: its stage's failure has
 * been logged; the message names the pipeline.
 */
export function buildrootHook(o: BuildrootOptions): BuildrootOf {
  const built = new Map<PipelineName, Promise<TreeRecord>>();
  const hook: BuildrootOf = async (stage) => {
    const pipeline = o.def.pipelines.get(stage.pipeline)?.build?.pipeline;
    if (!pipeline) return undefined;
    let tree = built.get(pipeline);
    if (!tree) {
      tree = buildPipeline(pipeline, hook, o);
      built.set(pipeline, tree);
    }
    return { kind: 'tree', mount: o.store.readMount(await tree, join(o.cacheDir, 'tmp', 'buildroot')) };
  };
  return hook;
}

async function buildPipeline(pipeline: PipelineName, hook: BuildrootOf, o: BuildrootOptions): Promise<TreeRecord> {
  // Keys of the definition as locked so far: the buildroot's ancestors are all locked (see
  // above); stages still without their packages get keys nothing here uses.
  const graph = buildGraph(o.def, o.rules);
  const keys = await computeKeys(graph);
  const goal = graph.final(pipeline);
  for (const id of ancestors(graph, [goal])) {
    const { stage, rule } = graph.stage(id);
    if (rule.schema.lock !== undefined && !stage.inputs.some((i) => i.kind === 'packages')) {
      // A buildroot whose own packages need a buildroot to lock: not bridged (issue 20).
      throw new Error(`the buildroot pipeline ${pipeline} cannot be built before its stage ${stage.pipeline}.${stage.id} is locked: run imgmake lock for it first`);
    }
  }
  const p = await plan({ graph, keys, store: o.store, goals: [goal], scope: o.scope });
  const toRun = p.stages.filter((s) => s.status === 'run').map((s) => graph.stage(s.id).stage);
  if (toRun.length) o.logger.log({ type: 'buildroot', pipeline });
  const artifacts = await fetchPackageInputs(toRun, {
    formats: FORMATS,
    vars: o.def.vars,
    cacheDir: o.cacheDir,
    sandbox: o.sandbox,
    workDir: join(o.cacheDir, 'verify'),
    buildrootOf: hook,
    ...(o.signal ? { signal: o.signal } : {}),
    logger: o.logger,
  });
  if (!artifacts.ok) throw new Error(`building the buildroot pipeline ${pipeline} failed: ${artifacts.error}`);
  const r = await schedule({
    graph,
    keys,
    plan: p,
    store: o.store,
    sandbox: o.sandbox,
    logger: o.logger,
    jobs: o.jobs,
    scope: o.scope,
    artifacts: artifacts.value,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const tree = r.trees.get(goal);
  if (!r.ok || !tree) throw new Error(`building the buildroot pipeline ${pipeline} failed (its stage's failure is above)`);
  await o.store.settle();
  return tree;
}
