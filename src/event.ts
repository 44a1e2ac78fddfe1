/**
 * One catalogue of everything a build can report. Core code emits these to an injected Logger
 * and never prints; renderers in `logging/` switch over `type` exhaustively.
 */
import type { Diagnostic } from './diagnostic.js';
import type { CacheKey, NodeId } from './ids.js';

export type StageStatus = 'cached' | 'ran' | 'failed';

export type Event =
  /** The plan for this build: how many stages will run and how many are cached. */
  | { type: 'plan'; targets: string[]; toRun: number; cached: number }
  | { type: 'stage-start'; node: NodeId; pipeline: string; stage: string; key: CacheKey; rule: string }
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
      /** Path of the stored full log (ran or failed). */
      log?: string;
      /**
       * Failed: why, and the last lines of its log. `no-space`: the rule exited non-zero (or was
       * killed) and a filesystem it wrote to was full; `commit-failed`: it succeeded, but its
       * tree could not be stored (a write error in the cache).
       */
      reason?: 'rule-exit-non-zero' | 'rule-killed' | 'rule-error' | 'commit-failed' | 'no-space';
      exitCode?: number | null;
      tail?: string[];
      /** Failed: what imgmake found out beyond the exit code, one line naming the path (`no-space`, `commit-failed`). */
      cause?: string;
    }
  | { type: 'stage-cancelled'; node: NodeId; pipeline: string; stage: string; key: CacheKey }
  | { type: 'export'; target: string; path: string; ms: number }
  /** A node's tree came from the remote cache: `layers` blobs downloaded (`bytes`, compressed). */
  | { type: 'download'; node: NodeId; key: CacheKey; layers: number; bytes: number; ms: number }
  /** A node's tree went to the remote cache: `blobs` layer blobs sent (`bytes`), then its entry. */
  | { type: 'upload'; node: NodeId; key: CacheKey; blobs: number; bytes: number; ms: number }
  /** Something that costs time but not the build (the remote cache is down, a blob was corrupt). */
  | { type: 'warning'; reason: 'remote-unusable' | 'remote-failed'; message: string; node?: NodeId }
  | { type: 'diagnostic'; diagnostic: Diagnostic }
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
  | { type: 'summary'; ran: number; cached: number; failed: number; cancelled: number; wallMs: number; ok: boolean };

export interface Logger {
  log(e: Event): void;
}
