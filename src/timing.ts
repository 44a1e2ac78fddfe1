/**
 * Where a build's time goes, phase by phase (issue 18): the next person who asks "why is a late
 * edit slower than the tools themselves" reads the `timing` event instead of instrumenting.
 *
 * A `PhaseClock` is a lap timer: each `lap(name)` charges the time since the previous lap (or
 * since the clock's origin) to `name`, adding up when a phase comes back (one export per
 * target). Nothing is measured twice and nothing is lost: the phases add up to the time from
 * the origin to the last lap. The CLI's clock starts at the process's own origin
 * (`performance.now()` counts from it), so its first phase, `start`, is Node's start-up and
 * the loading of imgmake's modules.
 *
 * The phases, in the order a build meets them (a build skips those it has nothing for):
 *
 *     node    Node's own start-up, until bin/imgmake.js's first line (the CLI only)
 *     start   the CLI's script loaded and its modules' top-level code run (the CLI only; with
 *             `node` when the CLI runs without bin/imgmake.js)
 *     load    reading the definition, its includes and rules
 *     lock    the package lock checked (or resolved)
 *     keys    every node's key
 *     plan    what is cached, what runs (and the remote's trees, downloaded)
 *     fetch   the packages of the stages that will run, fetched and verified
 *     stages  the stages run (each `stage` event also says its set-up, run and commit)
 *     patch   --patch: out/'s records read, the previous images updated (src/patch/)
 *     export  the targets written to the output folder
 *     record  --patch: the record of each image written (its digest)
 *     extras  what is written beside them (SBOM, manifest)
 *     flush   the layer digests commits left running, the remote's uploads
 */
/** What became of the CLI's code cache (bin/imgmake.js): absent, used, or refused by V8 (compiled anew). */
export type CodeCache = 'absent' | 'accepted' | 'rejected';

/** What bin/imgmake.js leaves for the CLI: when its first line ran, and its code cache's fate. */
export interface Boot {
  entered: number;
  codeCache: CodeCache;
}

/** bin/imgmake.js's record, when the CLI runs through it. */
export function boot(): Boot | undefined {
  return (globalThis as Record<symbol, Boot | undefined>)[Symbol.for('imgmake.boot')];
}

export class PhaseClock {
  private readonly spent = new Map<string, number>();
  /** Reported with the phases: the CLI's code cache, when the clock is the CLI's. */
  codeCache?: CodeCache;
  private last: number;

  /** `origin`: when the first phase began (performance.now() time; 0 = the process's start). */
  constructor(origin: number = performance.now()) {
    this.last = origin;
  }

  /** Charges the time since the previous lap (until `now`, a performance.now() time) to `phase`. */
  lap(phase: string, now: number = performance.now()): void {
    this.spent.set(phase, (this.spent.get(phase) ?? 0) + (now - this.last));
    this.last = now;
  }

  /** The phases so far, in the order they first ended, in whole milliseconds. */
  phases(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.spent) out[k] = Math.round(v);
    return out;
  }
}
