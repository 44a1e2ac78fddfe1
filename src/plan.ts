/**
 * plan: for the targets, which stages are cached and which must run, and why.
 *
 * A stage runs only when its tree is not in the store *and* something that will be built
 * needs it: starting from each target's final stage, a stage found in the store ends the walk
 * (its ancestors are already folded into its tree), so a no-op build reads one index entry per
 * stage and never a tree. Every other ancestor is reported `cached`. With a remote cache, a stage
 * not in the store is looked up there (all at once, bounded); one the remote has ends the walk
 * the same way, reported `remote` (the build downloads it instead of running it).
 *
 * Reasons compare the node's key fields with the newest build of the same node (history is
 * scoped by definition file): "options.hostname changed", "input motd changed", "never built".
 *
 * This module decides; it does not run anything or modify the store.
 */
import { ancestors, type BuildGraph } from './graph.js';
import type { CacheKey, NodeId } from './ids.js';
import { changedFields, sha256, type Keys } from './key.js';
import type { Store, TreeRecord } from './store/types.js';

export interface PlannedStage {
  id: NodeId;
  pipeline: string;
  stage: string;
  rule: string;
  key: CacheKey;
  /**
   * `unneeded`: not in the cache, and not needed either: every stage after it that the targets
   * need is cached or comes from the remote (e.g. below a downloaded tree, or after `cache gc`
   * kept only a later tree).
   */
  status: 'cached' | 'remote' | 'run' | 'unneeded';
  /**
   * The layers its tree is made of: its own key, then its parent's, and so on up the base
   * chain (what a commit records). A remote entry for `key` must list exactly these.
   */
  chain: CacheKey[];
  /** For `run`: why, in words a user can act on. */
  reasons: string[];
  /** `cached` because its output is current where it was delivered (out/TARGET), not in the store. */
  delivered?: true;
}

export interface Plan {
  /** Every stage the targets need, in dependency order. */
  stages: PlannedStage[];
  /** The committed trees found, by node (only those looked up). */
  found: Map<NodeId, TreeRecord>;
}

/** History scope of a definition: its absolute path, hashed (keys themselves never hold paths). */
export function historyScope(definitionFile: string): string {
  return sha256(definitionFile).slice(0, 16);
}

export interface PlanOptions {
  graph: BuildGraph;
  keys: Keys;
  store: Store;
  /** Final nodes of the targets' pipelines (or any nodes to build up to). */
  goals: NodeId[];
  scope: string;
  /** Nodes to run even if cached (`--from`): these and everything downstream of them. */
  force?: Set<NodeId>;
  /** A remote cache to ask for stages the store lacks (src/remote/). */
  remote?: RemoteLookup;
  /**
   * Stages whose output is current where it was delivered (src/deliver.ts): done, though the
   * store has no tree of theirs; like a found tree, each ends the walk.
   */
  current?: ReadonlySet<NodeId>;
  /** Stages that deliver to out/ when they run (src/deliver.ts): for the reason they run again. */
  delivers?: ReadonlySet<NodeId>;
}

/** What plan needs of a remote cache: which of these keys it holds. */
export interface RemoteLookup {
  lookup(keys: CacheKey[]): Promise<Set<CacheKey>>;
}

export async function plan(opts: PlanOptions): Promise<Plan> {
  const { graph: g, keys, store, goals, force } = opts;
  const needed = ancestors(g, goals);
  const found = new Map<NodeId, TreeRecord>();
  const toRun = new Set<NodeId>();
  const keyOf = (id: NodeId): CacheKey => keys.get(id)!.key;

  // Look up every needed stage at once: one index entry each, no tree reads.
  await Promise.all(
    [...needed].map(async (id) => {
      if (force?.has(id)) return;
      const rec = await store.get(keyOf(id));
      if (rec) found.set(id, rec);
    }),
  );
  const missing = [...needed].filter((id) => !found.has(id) && !force?.has(id) && !opts.current?.has(id));
  const onRemote = opts.remote && missing.length ? await opts.remote.lookup(missing.map(keyOf)) : new Set<CacheKey>();
  const fromRemote = new Set<NodeId>();
  const visit = (id: NodeId): void => {
    if (toRun.has(id) || found.has(id) || fromRemote.has(id) || opts.current?.has(id)) return;
    if (onRemote.has(keyOf(id)) && !force?.has(id)) {
      fromRemote.add(id);
      return;
    }
    toRun.add(id);
    for (const p of g.graph.inNeighbors(id)) if (g.graph.getNodeAttributes(p).kind === 'stage') visit(p as NodeId);
  };
  goals.forEach(visit);

  const stages: PlannedStage[] = [];
  for (const id of g.order) {
    if (!needed.has(id)) continue;
    const { stage, rule } = g.stage(id);
    const run = toRun.has(id);
    stages.push({
      id,
      pipeline: stage.pipeline,
      stage: stage.id,
      rule: rule.name,
      key: keyOf(id),
      chain: chainOf(g, id, keyOf),
      status: run ? 'run' : fromRemote.has(id) ? 'remote' : found.has(id) || opts.current?.has(id) ? 'cached' : 'unneeded',
      reasons: run ? await reasons(opts, id, toRun) : [],
      ...(!run && !found.has(id) && opts.current?.has(id) ? { delivered: true as const } : {}),
    });
  }
  return { stages, found };
}

async function reasons(opts: PlanOptions, id: NodeId, toRun: Set<NodeId>): Promise<string[]> {
  const { graph: g, keys, store, scope } = opts;
  if (opts.force?.has(id)) return ['forced (--from)'];
  const now = keys.get(id)!;
  const before = await store.getHistory(scope, id);
  if (!before) return ['never built'];
  if (before.key === now.key) return [opts.delivers?.has(id) ? 'its output is no longer in out/ (delivered there, not kept in the cache)' : 'its tree is no longer in the cache'];
  const out: string[] = [];
  for (const f of changedFields(now.fields, before.fields)) {
    const [head, ...rest] = f.split('.');
    const name = rest.join('.');
    switch (head) {
      case 'options':
        out.push(before.fields[f] === undefined ? `option ${name} added` : now.fields[f] === undefined ? `option ${name} removed` : `option ${name} changed`);
        break;
      case 'inputs': {
        const src = upstream(g, id, 'input', name);
        out.push(src && toRun.has(src) ? `input ${name} changed (${src} will run)` : `input ${name} changed`);
        break;
      }
      case 'parent': {
        const src = upstream(g, id, 'parent');
        out.push(src ? `the stage before it changed (${src})` : 'parent changed');
        break;
      }
      case 'buildroot': {
        const src = upstream(g, id, 'buildroot');
        out.push(src ? `its buildroot changed (${src})` : 'its buildroot changed');
        break;
      }
      case 'rule':
        out.push('rule changed');
        break;
      case 'ruleCode':
        out.push(`the code of rule ${g.stage(id).rule.name} changed`);
        break;
      case 'schema':
        out.push('imgmake key schema changed');
        break;
      default:
        out.push(`${f} changed`);
    }
  }
  return out.length ? out : ['changed'];
}

/** The keys of `id`'s tree's layers: its own, its parent stage's, that one's parent's… */
export function chainOf(g: BuildGraph, id: NodeId, keyOf: (id: NodeId) => CacheKey): CacheKey[] {
  const chain: CacheKey[] = [];
  for (let n: NodeId | undefined = id; n !== undefined; n = upstream(g, n, 'parent')) chain.push(keyOf(n));
  return chain;
}

function upstream(g: BuildGraph, id: NodeId, kind: string, name?: string): NodeId | undefined {
  for (const e of g.graph.inEdges(id)) {
    const a = g.graph.getEdgeAttributes(e);
    if (a.kind === kind && (name === undefined || a.name === name)) return g.graph.source(e) as NodeId;
  }
  return undefined;
}
