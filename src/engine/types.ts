/**
 * The engine's nouns: what a build is run *with* (an Engine: store, sandbox, remote, package
 * formats, a cache folder) and *on* (a Project: rules and a loaded definition; a KeyedProject
 * also has its graph and keys). A front end (the CLI, `imgmake watch`, a server, a test) makes
 * both once and hands them to the engine's steps (engine/index.ts); nothing in the engine picks
 * an implementation or prints.
 */
import type { Definition } from '../definition.js';
import type { Logger } from '../event.js';
import type { BuildGraph } from '../graph.js';
import type { NodeId } from '../ids.js';
import type { Keys } from '../key.js';
import type { LockTable } from '../packages/lockfile.js';
import type { RemoteCache } from '../remote/index.js';
import type { RuleRegistry } from '../rule.js';
import type { Sandbox } from '../sandbox/run.js';
import type { Store } from '../store/types.js';
import type { PhaseClock } from '../timing.js';

export interface Engine {
  store: Store;
  /** What runs stages, exports, resolvers and signature checks. */
  sandbox: Sandbox;
  /** Read through before building, written behind while building; none: local only. */
  remote?: RemoteCache | undefined;
  /** The package formats (src/packages/formats.ts), and how a version 1 lock file reads. */
  formats: LockTable;
  /** The cache's folder: leases, the package artifacts and the formats' scratch live under it. */
  cacheDir: string;
}

export interface Project {
  rules: RuleRegistry;
  def: Definition;
  /** Whose build history the plan's reasons compare with (plan.ts, historyScope). */
  scope: string;
}

/** A project whose package stages are locked (engine/lock.ts), with its graph and keys. */
export interface KeyedProject extends Project {
  graph: BuildGraph;
  keys: Keys;
}

/** How one run reports and how hard it works; `signal` cancels it (running stages are killed). */
export interface RunOptions {
  logger: Logger;
  jobs: number;
  signal?: AbortSignal | undefined;
  /** Charged with each phase of the run (src/timing.ts); a build reports it in its `timing` event. */
  clock?: PhaseClock | undefined;
}

/** What a build aims at: the targets' final nodes, cut short by `--until`, rerun from `--from`. */
export interface Selection {
  goals: NodeId[];
  /** Stages to run even if cached (`--from`: that stage and every needed stage after it). */
  force: Set<NodeId>;
  /** The `--until` stage: the targets' trees are not complete, so nothing is exported. */
  until?: NodeId;
}
