/**
 * One catalogue of everything imgmake reports: every line `--json` writes is one of these, and
 * nothing else is. Core code emits build events to an injected Logger and never prints;
 * commands that only answer a question (`cache ls`, `targets`, `rules`) write their answers as
 * events of this union too. Renderers in `logging/` switch over `type` exhaustively.
 *
 * On the wire (`--json`) each event also carries `v` (EVENT_SCHEMA_VERSION) and `time` (an ISO
 * 8601 instant, when it was written): see `Stamped` and logging/index.ts. docs/events.md lists
 * every event; schema/events.schema.json describes them and a test validates every event the
 * suite sees against it. Adding a field is compatible; renaming or removing one, or changing
 * what it means, bumps EVENT_SCHEMA_VERSION.
 *
 * Failures and anything a program must react to are typed events (`fetch-failed`,
 * `export-failed`, `wait`, `stage` with a `reason`); `info` is a note for people, never one of
 * those.
 */
import type { Diagnostic } from './diagnostic.js';
import type { CacheKey, NodeId } from './ids.js';
import type { CodeCache } from './timing.js';

/** The version every `--json` line carries as `v`. */
export const EVENT_SCHEMA_VERSION = 1;

export type StageStatus = 'cached' | 'ran' | 'failed';

/** Why a stage failed (`stage` with status `failed`). */
export type StageFailure = 'rule-exit-non-zero' | 'rule-killed' | 'rule-error' | 'commit-failed' | 'no-space';

/** Work that takes a while and has no stage of its own (the live lines of a terminal). */
/** Why `--patch` did not patch a target (docs/patch.md explains each); it is then built in full. */
export type PatchRefusal =
  | 'not-a-disk'
  | 'no-record'
  | 'image-changed'
  | 'old-tree-gone'
  | 'disk-changed'
  | 'boot-files'
  | 'no-space'
  | 'unsupported'
  | 'patch-failed';

export type ProgressTask = 'fetch' | 'verify' | 'download' | 'upload' | 'export' | 'patch';

/** What a build waits for: another build making the same stage, or a cache command holding gc.lock. */
export type WaitFor = 'stage' | 'locking' | 'verifying' | 'cache-gc' | 'cache-verify' | 'cache-prune' | 'clean';

export type Event =
  // ── a build ─────────────────────────────────────────────────────────────────────────────────
  /** The plan for this build: how many stages will run and how many are cached. */
  | { type: 'plan'; targets: string[]; toRun: number; cached: number }
  /** `--allow-path`: the folders outside the project the definition may read (build and plan). */
  | { type: 'allow-path'; dirs: string[] }
  | { type: 'stage-start'; node: NodeId; pipeline: string; stage: string; key: CacheKey; rule: string }
  /**
   * The latest line a running stage wrote (its log's last line: a package manager's phase, the package
   * being unpacked). At most one every OUTPUT_EVERY_MS per stage, and only when it changed.
   */
  | { type: 'stage-output'; node: NodeId; line: string }
  /** A stage's outcome. `ms` is its run time (0 when cached). */
  | {
      type: 'stage';
      node: NodeId;
      pipeline: string;
      stage: string;
      key: CacheKey;
      rule: string;
      status: StageStatus;
      ms: number;
      /**
       * Ran: the time before its command started (the work dir, the inputs, the sandbox's
       * set-up) and after it ended (its log and tree stored, its history written).
       */
      setupMs?: number;
      commitMs?: number;
      /**
       * Ran: its output went to its target's folder in out/ instead of into the cache; cached:
       * that output is still there, current (src/deliver.ts). The cache holds no tree of it.
       */
      delivered?: true;
      /** Ran or failed, when its log was stored: the command that prints it (`imgmake log NODE`). */
      log?: string;
      /**
       * Failed: why, and the last lines of its log. `no-space`: the rule exited non-zero (or was
       * killed) and a filesystem it wrote to was full; `commit-failed`: it succeeded, but its
       * tree could not be stored (a write error in the cache).
       */
      reason?: StageFailure;
      exitCode?: number | null;
      tail?: string[];
      /** Failed: what imgmake found out beyond the exit code, one line naming the path (`no-space`, `commit-failed`). */
      cause?: string;
    }
  | { type: 'stage-cancelled'; node: NodeId; pipeline: string; stage: string; key: CacheKey }
  /**
   * Waiting before going on: `for: 'stage'`: another build on this cache (process `pid`) is
   * making `node`, whose tree this build then uses; otherwise a cache command (`imgmake cache
   * verify`, …) holds the cache's collection lock, and the build starts when it ends.
   */
  | { type: 'wait'; for: WaitFor; pid: number; node?: NodeId }
  /**
   * Work in progress without a stage: `state: 'running'` (again as it advances: `done` of
   * `total` in `unit`), then `'done'`. `subject`: what it works on (a node, a target,
   * `packages`). Updates are throttled (at most a few a second per subject).
   */
  | {
      type: 'progress';
      task: ProgressTask;
      subject: string;
      state: 'running' | 'done';
      unit?: 'bytes' | 'items';
      done?: number;
      total?: number;
    }
  /** The packages the stages to run need were fetched: `fetched` downloaded of `packages` (`bytes`). */
  | { type: 'fetched'; packages: number; fetched: number; bytes: number; ms: number }
  /** Fetching or verifying packages failed: the build stops before any stage runs. */
  | { type: 'fetch-failed'; message: string }
  /** The package stage's buildroot pipeline is built first: its format resolves or verifies in it. */
  | { type: 'buildroot'; pipeline: string }
  /** `--until`: the build stopped after that stage, as asked; nothing was exported. */
  | { type: 'until'; node: NodeId }
  /**
   * A target was exported. `mode` (with `--patch` only): `full`, the target's tree copied out
   * (bit-reproducible); `patched`, the previous image updated in place of a full build
   * (functionally equal, not byte-equal: docs/patch.md).
   */
  | { type: 'export'; target: string; path: string; ms: number; mode?: 'full' | 'patched' }
  /**
   * `--patch`: what became of a target's patch. `patched`: out/TARGET's image was updated
   * (`written` entries written, `removed` removed, from `layers` differing layers); `current`:
   * it already held this OS tree; `refused`: the target is built in full, `reason` says why.
   * `standby` (patched): written into the standby image rather than a copy of out/'s.
   */
  | {
      type: 'patch';
      target: string;
      result: 'patched' | 'current' | 'refused';
      reason?: PatchRefusal;
      message?: string;
      written?: number;
      removed?: number;
      layers?: number;
      standby?: boolean;
      ms: number;
    }
  /** Exporting a target failed (a full disk, a path the target names is missing): the build fails. */
  | { type: 'export-failed'; target: string; message: string }
  /**
   * An exported target holds an ostree commit (its `ostree-commit.json`, rules/ostree.commit):
   * the commit's checksum on `ref`, and its parent's (null: the first of its history).
   */
  | { type: 'ostree-commit'; target: string; ref: string; commit: string; parent: string | null }
  /** A node's tree came from the remote cache: `layers` blobs downloaded (`bytes`, compressed). */
  | { type: 'download'; node: NodeId; key: CacheKey; layers: number; bytes: number; ms: number }
  /** A node's tree went to the remote cache: `blobs` layer blobs sent (`bytes`), then its entry. */
  | { type: 'upload'; node: NodeId; key: CacheKey; blobs: number; bytes: number; ms: number }
  /** The remote cache failed `agoS` seconds ago (`cause`): it is not asked again for `retryS` seconds. */
  | { type: 'remote-skipped'; url: string; agoS: number; cause: string; retryS: number }
  /** Something that costs time but not the build (the remote cache is down, a blob was corrupt). */
  | { type: 'warning'; reason: 'remote-unusable' | 'remote-failed'; message: string; node?: NodeId }
  | { type: 'diagnostic'; diagnostic: Diagnostic }
  /** A note for people. Never a failure, never something a program must act on (those are typed). */
  | { type: 'info'; message: string }
  /** `imgmake watch`: the watcher's state changed (src/watch.ts); `files`: how many it watches. */
  | { type: 'watch'; state: 'idle' | 'settling' | 'building' | 'cancelling' | 'stopped'; files: number }
  /**
   * `imgmake watch`: one rebuild ended. `changed`: the files that triggered it (relative to the
   * definition's folder); `ran`: the stages that ran; `reused`: the stages found cached;
   * `result`: built (and exported), failed (a stage, or export), invalid (the definition has
   * errors: nothing ran, out/ keeps the last good output), cancelled (a newer change).
   */
  | {
      type: 'rebuild';
      targets: string[];
      changed: string[];
      ran: NodeId[];
      reused: number;
      wallMs: number;
      result: 'built' | 'failed' | 'invalid' | 'cancelled';
    }
  /**
   * Where the build's time went, phase by phase (src/timing.ts names them), in milliseconds;
   * just before `summary`. From the CLI the first phases, `node` and `start`, are Node's start-up
   * and the CLI's loading, and `codeCache` says whether V8's code cache of the CLI was used.
   */
  | { type: 'timing'; phases: Record<string, number>; codeCache?: CodeCache }
  | { type: 'summary'; ran: number; cached: number; failed: number; cancelled: number; wallMs: number; ok: boolean }
  // ── answers of commands that do not build ───────────────────────────────────────────────────
  /** `imgmake plan`: one stage, what the build would do with it and why. */
  | { type: 'plan-stage'; node: NodeId; pipeline: string; stage: string; rule: string; key: CacheKey; status: 'run' | 'cached' | 'remote' | 'unneeded'; reasons: string[] }
  /** `imgmake targets`. */
  | { type: 'target'; name: string; pipeline: string; export: string[]; default: boolean }
  /** `imgmake list`: one image of the catalog (distro × arch × type), its file, default size (null: none) and the blueprint options it supports. */
  | { type: 'image'; distro: string; arch: string; imageType: string; filename: string; size: string | null; options: string[] }
  /** `imgmake rules` (name, summary, digest) and `imgmake rules NAME` (also the rule's schema fields). */
  | { type: 'rule'; name: string; digest: string; summary?: string; [schemaField: string]: unknown }
  /** `imgmake cache info`. `exists`: false when there is no cache folder (nothing was made). */
  | { type: 'cache-info'; root: string; trees: number; logs: number; bytes: number; exists: boolean }
  /** `imgmake cache ls`: one tree. `complete`: false when a layer below it is gone (not usable). */
  | { type: 'cache-tree'; node: string; key: string; bytes: number; layers: number; createdAt: string; lastUse: string; complete: boolean; targets?: string[] }
  /** `imgmake cache ls --debs`: one package file. */
  | { type: 'cache-deb'; sha256: string; name?: string; version?: string; bytes: number; lastUse: string }
  /** `imgmake cache ls`: the totals (last line). */
  | { type: 'cache-ls'; root: string; trees: number; debs: number; debBytes: number; bytes: number }
  /** `imgmake cache verify`: something that did not match its digest, and was removed. */
  | { type: 'cache-corrupt'; kind: 'tree' | 'layer' | 'deb' | 'entry' | 'squash'; name: string; key: string; why: string }
  /** `cache gc|prune|verify`: one thing removed. */
  | ({ type: 'cache-removed' } & Removal)
  /** `cache gc --dry-run`: one thing that would be removed (nothing was). */
  | ({ type: 'cache-would-remove' } & Removal)
  /** `cache gc`: the totals (last line). `skipped`: kept because a running build uses them. */
  | ({ type: 'cache-gc' } & RemovalTotals)
  /** `cache prune`: the totals (last line). */
  | ({ type: 'cache-prune' } & RemovalTotals)
  /** `cache verify`: the totals (last line). */
  | {
      type: 'cache-verify';
      before: number;
      after: number;
      removed: number;
      skipped: number;
      corrupt: number;
      checked: { trees: number; debs: number; entries: number };
      unchecked: number;
      squashes: number;
    }
  /** `imgmake clean`: out/ or the cache was removed (`busy`: running builds kept what they use). */
  | { type: 'clean-removed'; what: 'out' | 'cache'; path: string; before?: number; busy?: number }
  /** `imgmake clean`: there was nothing at `path`. */
  | { type: 'clean-absent'; what: 'out' | 'cache'; path: string }
  /** `imgmake export NODE DIR`. */
  | { type: 'checkpoint-export'; node: NodeId; key: CacheKey; path: string; ms: number }
  /** `imgmake log NODE`: the stored log of its last run. */
  | { type: 'log'; node: NodeId; key: CacheKey; text: string };

/** One thing a cache command removed, or would. */
export interface Removal {
  kind: 'tree' | 'deb' | 'layer';
  /** The node (trees), the package (debs). */
  name?: string;
  key: string;
  bytes: number;
}

/** What a cache command removed in all: sizes before and after, how many went, how many a running build kept. */
export interface RemovalTotals {
  before: number;
  after: number;
  removed: number;
  skipped: number;
  dryRun?: boolean;
}

/** An event as `--json` writes it: with the schema version and the time it was written. */
export type Stamped = Event & { v: typeof EVENT_SCHEMA_VERSION; time: string };

/**
 * Every event type, once: `satisfies` makes the compiler refuse a type the union lacks or a
 * member left out, so tests can compare this list with the JSON Schema's.
 */
export const EVENT_TYPES = Object.keys({
  plan: 1,
  'allow-path': 1,
  'stage-start': 1,
  'stage-output': 1,
  stage: 1,
  'stage-cancelled': 1,
  wait: 1,
  progress: 1,
  fetched: 1,
  'fetch-failed': 1,
  buildroot: 1,
  until: 1,
  export: 1,
  patch: 1,
  'export-failed': 1,
  'ostree-commit': 1,
  download: 1,
  upload: 1,
  'remote-skipped': 1,
  warning: 1,
  diagnostic: 1,
  info: 1,
  watch: 1,
  rebuild: 1,
  timing: 1,
  summary: 1,
  'plan-stage': 1,
  target: 1,
  image: 1,
  rule: 1,
  'cache-info': 1,
  'cache-tree': 1,
  'cache-deb': 1,
  'cache-ls': 1,
  'cache-corrupt': 1,
  'cache-removed': 1,
  'cache-would-remove': 1,
  'cache-gc': 1,
  'cache-prune': 1,
  'cache-verify': 1,
  'clean-removed': 1,
  'clean-absent': 1,
  'checkpoint-export': 1,
  log: 1,
} satisfies Record<Event['type'], 1>) as Event['type'][];

export interface Logger {
  log(e: Event): void;
}

/** `imgmake log NODE`: what a `stage` event's `log` says (a command, not a cache path). */
export function logCommandOf(node: NodeId): string {
  return `imgmake log ${node}`;
}
