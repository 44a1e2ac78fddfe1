/**
 * schedule: runs the plan's stages in dependency order, independent ones in parallel (at most
 * `jobs` at once), each in its own sandbox on a writable view of its parent's tree, and
 * commits each tree as soon as its stage succeeds.
 *
 * A node's life:
 *
 *     waiting ──deps ready──► running ──exit 0──► committed
 *                                │  └──exit ≠ 0──► failed      (log kept, nothing committed)
 *                                └──signal───────► cancelled   (sandbox killed, work discarded)
 *
 * A failure stops the build from starting more stages; stages already running finish and
 * commit (their trees are valid). Cancellation (Ctrl-C, watch) kills running sandboxes.
 *
 * This module runs; it does not decide what is cached (plan) or print (it emits events).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildGraph } from './graph.js';
import type { NodeId } from './ids.js';
import type { Keys } from './key.js';
import type { Plan } from './plan.js';
import type { Sandbox } from './sandbox/run.js';
import { stageSpec } from './sandbox/stage.js';
import type { Store, TreeRecord, WorkTree } from './store/types.js';
import { logCommandOf, type Event, type Logger } from './event.js';
import { followLastLine } from './log-tail.js';
import { unreachable } from './result.js';
import { describeSpace, describeWriteError, isFull, NO_SPACE_TEXT, spaceLeft } from './write-error.js';

export interface ScheduleOptions {
  graph: BuildGraph;
  keys: Keys;
  plan: Plan;
  store: Store;
  sandbox: Sandbox;
  logger: Logger;
  jobs: number;
  scope: string;
  signal?: AbortSignal;
  /** Fetched artifacts by sha256 (verified): what a package stage's package input links. */
  artifacts?: ReadonlyMap<string, string>;
  /** Nodes re-run on purpose (`--from`): their new trees replace those cached under their keys. */
  replace?: ReadonlySet<NodeId>;
  /** Called when a node's tree is committed (the remote cache uploads it in the background). */
  onCommit?: (id: NodeId, tree: TreeRecord) => void;
  /**
   * Stages whose output goes elsewhere than the cache (src/deliver.ts): once the stage has
   * succeeded, this takes what it needs out of its upper directory and says true; the work
   * tree is then discarded instead of committed. False: nothing was taken, commit as usual.
   */
  deliver?: ReadonlyMap<NodeId, (upper: string) => Promise<boolean>>;
}

export interface ScheduleResult {
  ok: boolean;
  ran: number;
  cached: number;
  failed: number;
  cancelled: number;
  /** Committed or found trees by node: what export reads. */
  trees: Map<NodeId, TreeRecord>;
  /** Stages that ran and handed their output over (`deliver`) instead of committing a tree. */
  delivered: Set<NodeId>;
}

type NodeState = 'waiting' | 'running' | 'committed' | 'failed' | 'cancelled';

const LOG_TAIL_LINES = 20;

/** How often a running stage's latest output line is reported, at most (`stage-output`). */
export const OUTPUT_EVERY_MS = 500;

export async function schedule(opts: ScheduleOptions): Promise<ScheduleResult> {
  const { graph: g, plan, logger } = opts;
  const trees = new Map(plan.found);
  const delivered = new Set<NodeId>();
  const state = new Map<NodeId, NodeState>();
  let ran = 0;
  let failed = 0;
  let cancelled = 0;
  let cached = 0;

  for (const s of plan.stages) {
    if (s.status === 'unneeded') continue;
    if (s.status === 'cached') {
      cached++;
      logger.log({ type: 'stage', node: s.id, pipeline: s.pipeline, stage: s.stage, key: s.key, rule: s.rule, status: 'cached', ms: 0, ...(s.delivered ? { delivered: true } : {}) });
    } else state.set(s.id, 'waiting');
  }

  const stageDeps = (id: NodeId): NodeId[] =>
    g.graph.inNeighbors(id).filter((p) => g.graph.getNodeAttributes(p).kind === 'stage') as NodeId[];
  const ready = (id: NodeId): boolean =>
    stageDeps(id).every((d) => (state.has(d) ? state.get(d) === 'committed' : trees.has(d)));

  const running = new Map<NodeId, Promise<void>>();
  let stopping = false;

  const start = (id: NodeId): void => {
    state.set(id, 'running');
    const p = runStage(opts, id, trees).then((outcome) => {
      state.set(id, outcome.state === 'found' || outcome.state === 'delivered' ? 'committed' : outcome.state);
      running.delete(id);
      switch (outcome.state) {
        case 'committed':
          ran++;
          trees.set(id, outcome.tree);
          opts.onCommit?.(id, outcome.tree);
          break;
        case 'delivered':
          ran++;
          delivered.add(id);
          break;
        case 'found':
          // Another build on this cache made it while this one waited.
          cached++;
          trees.set(id, outcome.tree);
          break;
        case 'failed':
          failed++;
          stopping = true;
          break;
        case 'cancelled':
          cancelled++;
          stopping = true;
          break;
        default:
          unreachable(outcome);
      }
    });
    running.set(id, p);
  };

  for (;;) {
    if (!stopping && !opts.signal?.aborted) {
      for (const [id, st] of state) {
        if (running.size >= opts.jobs) break;
        if (st === 'waiting' && ready(id)) start(id);
      }
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  // Stages never started because the build stopped count as cancelled.
  for (const [id, st] of state) {
    if (st === 'waiting') {
      cancelled++;
      const s = g.stage(id).stage;
      logger.log({ type: 'stage-cancelled', node: id, pipeline: s.pipeline, stage: s.id, key: opts.keys.get(id)!.key });
    }
  }
  return { ok: failed === 0 && cancelled === 0, ran, cached, failed, cancelled, trees, delivered };
}

type Outcome = { state: 'committed'; tree: TreeRecord } | { state: 'found'; tree: TreeRecord } | { state: 'delivered' } | { state: 'failed' } | { state: 'cancelled' };

/**
 * Runs one stage under its claim: another build on the same cache that is making the same key
 * is waited for, and its tree used (`found`), so a node two builds need at once is built once.
 */
async function runStage(opts: ScheduleOptions, id: NodeId, trees: Map<NodeId, TreeRecord>): Promise<Outcome> {
  const { graph: g, keys, store, logger } = opts;
  const { stage, rule } = g.stage(id);
  const key = keys.get(id)!.key;
  const base = { node: id, pipeline: stage.pipeline, stage: stage.id, key, rule: rule.name };
  const held = await store.claim(key, {
    signal: opts.signal,
    onWait: (holder) => logger.log({ type: 'wait', for: 'stage', pid: Number(holder.split('-')[0]), node: id }),
  });
  if (!held) {
    logger.log({ type: 'stage-cancelled', node: id, pipeline: stage.pipeline, stage: stage.id, key });
    return { state: 'cancelled' };
  }
  try {
    const found = opts.replace?.has(id) ? undefined : await store.get(key);
    if (found) {
      logger.log({ type: 'stage', ...base, status: 'cached', ms: 0 });
      return { state: 'found', tree: found };
    }
    return await runClaimed(opts, id, trees);
  } finally {
    await held.release();
  }
}

async function runClaimed(opts: ScheduleOptions, id: NodeId, trees: Map<NodeId, TreeRecord>): Promise<Outcome> {
  const { graph: g, keys, store, sandbox, logger } = opts;
  const { stage, rule } = g.stage(id);
  const key = keys.get(id)!.key;
  const base = { node: id, pipeline: stage.pipeline, stage: stage.id, key, rule: rule.name };
  logger.log({ type: 'stage-start', ...base });
  const t0 = performance.now();

  const treeOf = (kind: 'parent' | 'buildroot' | 'input', name?: string): TreeRecord | undefined => {
    for (const e of g.graph.inEdges(id)) {
      const a = g.graph.getEdgeAttributes(e);
      const src = g.graph.source(e) as NodeId;
      if (a.kind !== kind || (name !== undefined && a.name !== name)) continue;
      if (g.graph.getNodeAttributes(src).kind !== 'stage') return undefined;
      const t = trees.get(src);
      if (!t) throw new Error(`Internal error: ${src} has no tree when ${id} starts`);
      return t;
    }
    return undefined;
  };

  let w: WorkTree;
  try {
    w = await store.begin(treeOf('parent'));
  } catch (e) {
    // No work dir, so no log: the event alone says why (a full disk, a squash that failed).
    const cause = isWriteError(e) ? `making its work dir in the cache failed: ${await describeWriteError(e, store.root, CACHE_FULL_HINT)}` : (e as Error).message;
    logger.log({ type: 'stage', ...base, status: 'failed', ms: 0, tail: [], reason: isNoSpace(e) ? 'no-space' : 'rule-error', cause });
    return { state: 'failed' };
  }
  const logFile = join(w.scratch, 'log');
  /**
   * Reports a failure. What needs the work dir (the log, the space left on its filesystem) is
   * read first; then the work dir goes, and only then is the log stored: after a full disk,
   * removing the work is what makes room for it.
   */
  const failedEvent = async (e: Partial<Extract<Event, { type: 'stage' }>>, ms: number, why?: string): Promise<Outcome> => {
    const text = await readFile(logFile).catch(() => Buffer.alloc(0));
    const tail = lastLines(text.toString('utf8'));
    const cause = e.cause ?? (e.reason === 'rule-exit-non-zero' || e.reason === 'rule-killed' ? await spaceCause(store, w.dir, text) : undefined);
    await store.discard(w);
    if (why && !tail.some((l) => l.includes(why))) tail.push(why);
    // The stored log says it too: `imgmake log NODE` shows why the last run failed.
    const stored = cause ? Buffer.concat([text, Buffer.from(`\nimgmake: ${cause}\n`)]) : text;
    const log = await store.putLog(key, stored).catch(() => undefined);
    const reason = cause && !e.cause ? 'no-space' : e.reason;
    logger.log({ type: 'stage', ...base, status: 'failed', ms, ...(log ? { log: logCommandOf(id) } : {}), tail, ...e, ...(reason ? { reason } : {}), ...(cause ? { cause } : {}) });
    return { state: 'failed' };
  };
  // What was being done when something threw: the rule's own code, or storing its result.
  let doing: 'preparing' | 'committing' | 'delivering' = 'preparing';
  let ranMs = 0;
  try {
    await writeFile(logFile, '');
    const spec = await stageSpec({ stage, rule, store, work: w, treeOf, artifacts: opts.artifacts });
    const setupMs = Math.round(performance.now() - t0);
    const stopFollowing = followLastLine(logFile, OUTPUT_EVERY_MS, (line) => logger.log({ type: 'stage-output', node: id, line }));
    const r = await sandbox.run(spec, { logFile, ...(opts.signal ? { signal: opts.signal } : {}) }).finally(stopFollowing);
    if (r.cancelled || opts.signal?.aborted) {
      await store.discard(w);
      logger.log({ type: 'stage-cancelled', node: id, pipeline: stage.pipeline, stage: stage.id, key });
      return { state: 'cancelled' };
    }
    if (r.exitCode !== 0) {
      return await failedEvent({ reason: r.exitCode === null ? 'rule-killed' : 'rule-exit-non-zero', exitCode: r.exitCode }, r.ms);
    }
    doing = 'committing';
    ranMs = r.ms;
    const t1 = performance.now();
    // The log lives in the work directory, which commit removes: store it first.
    await store.putLog(key, logFile);
    const take = opts.deliver?.get(id);
    doing = take ? 'delivering' : 'committing';
    if (take && (await take(w.upper))) {
      await store.discard(w);
      await store.putHistory(opts.scope, id, { key, fields: keys.get(id)!.fields, at: new Date().toISOString() });
      const commitMs = Math.round(performance.now() - t1);
      logger.log({ type: 'stage', ...base, status: 'ran', ms: r.ms, setupMs, commitMs, log: logCommandOf(id), delivered: true });
      return { state: 'delivered' };
    }
    doing = 'committing';
    const tree = await store.commit(w, { key, node: id, ms: r.ms, replace: opts.replace?.has(id) ?? false });
    await store.putHistory(opts.scope, id, { key, fields: keys.get(id)!.fields, at: tree.createdAt });
    const commitMs = Math.round(performance.now() - t1);
    logger.log({ type: 'stage', ...base, status: 'ran', ms: r.ms, setupMs, commitMs, log: logCommandOf(id) });
    return { state: 'committed', tree };
  } catch (e) {
    if (doing === 'committing') {
      // A write error (a full disk, a read-only cache): said with the path, no stack.
      const cause = `storing its tree in the cache failed: ${await describeWriteError(e, store.root, CACHE_FULL_HINT)}`;
      return await failedEvent({ reason: 'commit-failed', cause }, ranMs);
    }
    if (doing === 'delivering') {
      const cause = `handing its output to the target's folder failed: ${await describeWriteError(e, store.root, 'free some space there, or build into another folder (--out DIR)')}`;
      return await failedEvent({ reason: 'commit-failed', cause }, ranMs);
    }
    if (isNoSpace(e)) {
      const cause = `preparing its sandbox failed: ${await describeWriteError(e, store.root, CACHE_FULL_HINT)}`;
      return await failedEvent({ reason: 'no-space', cause }, 0);
    }
    // A rule's code threw, or the store failed: say so where the stage's log would be.
    await writeFile(logFile, `\nimgmake: ${(e as Error).stack ?? String(e)}\n`, { flag: 'a' }).catch(() => {});
    const outcome = await failedEvent({ reason: 'rule-error' }, 0, `imgmake: ${(e as Error).message}`);
    return outcome;
  }
}

const CACHE_FULL_HINT = 'free some space (imgmake cache gc --max-size SIZE removes the least recently used trees) or put the cache on a bigger filesystem (--cache DIR)';

/**
 * Why a stage that failed may have: its work dir's filesystem (the cache's) is full, or its log
 * says a write found no space (on the cache, or on a filesystem of the sandbox such as /tmp).
 * A sandboxed command's own message may never reach its log when the log is on that full
 * filesystem, hence the statfs. Undefined when neither.
 */
async function spaceCause(store: Store, workDir: string, log: Buffer): Promise<string | undefined> {
  const s = await spaceLeft(workDir);
  if (s && isFull(s)) return `no space left on the cache's filesystem (${store.root}: ${describeSpace(s)}); ${CACHE_FULL_HINT}`;
  if (NO_SPACE_TEXT.test(log.toString('utf8'))) {
    const free = s ? ` (the cache, ${store.root}, has ${describeSpace(s)})` : '';
    return `the stage ran out of space: its log says "No space left on device"${free}; a filesystem it wrote to was full (in the sandbox, /tmp is in memory)`;
  }
  return undefined;
}

/** An errno from the filesystem, not a bug: said in words, without a stack. */
function isWriteError(e: unknown): boolean {
  return typeof (e as NodeJS.ErrnoException)?.code === 'string' && /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code!);
}

function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function lastLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-LOG_TAIL_LINES);
}
