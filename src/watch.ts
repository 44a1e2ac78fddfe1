/**
 * watch: rebuild when a file the build depends on changes. This module is the state machine
 * only; what a build is, and which files to watch, come from the caller (src/cli/watch.ts).
 *
 *                 change                      settled (no change for settleMs)
 *     ┌──────┐ ───────────► ┌──────────┐ ─────────────────────────────► ┌──────────┐
 *     │ idle │              │ settling │ ◄─┐ change: wait again         │ building │
 *     └──────┘ ◄─────────── └──────────┘ ──┘                            └──────────┘
 *         ▲   build finished, nothing pending   ▲                          │     │
 *         └─────────────────────────────────────┼──────────────────────────┘     │ change
 *                                               │                                ▼
 *                                               │  build stopped   ┌────────────────┐
 *                                               └──────────────────│   cancelling   │
 *                                                                  └────────────────┘
 *
 * - A change while idle or settling (re)starts the settle timer: a burst of saves is one build.
 * - A change while building aborts that build at once (its result is stale): the build's signal
 *   fires, its sandboxes are killed, what it already committed stays (trees are keyed, so they
 *   are still right). Once it has stopped, the watcher settles and builds again.
 * - Changes while cancelling are collected for the next build.
 * - `stop()` aborts a running build, waits for it, and ends in `stopped`.
 *
 * A build function never throws: it reports its own failures (a bad definition, a failed
 * stage) and resolves. Every build gets the paths that changed since the previous one.
 */

export type WatchState = 'idle' | 'settling' | 'building' | 'cancelling' | 'stopped';

export interface RebuilderOptions {
  /** Runs one build; must stop soon after `signal` aborts, and must not throw. */
  build(changed: string[], signal: AbortSignal): Promise<void>;
  /** Quiet time after the last change before a build starts (default 200 ms). */
  settleMs?: number;
  onState?(state: WatchState): void;
}

export class Rebuilder {
  #state: WatchState = 'idle';
  #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;
  #running: Promise<void> | undefined;
  readonly #o: RebuilderOptions;

  constructor(o: RebuilderOptions) {
    this.#o = o;
  }

  get state(): WatchState {
    return this.#state;
  }

  /** Builds now, with `changed` as the reason (the first build of a watch). */
  start(changed: string[] = []): void {
    for (const p of changed) this.#pending.add(p);
    if (this.#state === 'idle' || this.#state === 'settling') this.#build();
  }

  /** A watched file changed (or appeared, or was removed). */
  changed(path: string): void {
    if (this.#state === 'stopped') return;
    this.#pending.add(path);
    switch (this.#state) {
      case 'idle':
      case 'settling':
        this.#settle();
        break;
      case 'building':
        this.#set('cancelling');
        this.#abort?.abort();
        break;
      case 'cancelling':
        break;
    }
  }

  /** Stops watching: aborts a running build and waits for it. */
  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    this.#set('stopped');
    await this.#running;
  }

  /** Resolves once no build is running or due (for tests and for a clean exit). */
  async idle(): Promise<void> {
    while (this.#running || this.#timer) {
      if (this.#running) await this.#running;
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  #settle(): void {
    this.#set('settling');
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#build();
    }, this.#o.settleMs ?? 200);
  }

  #build(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const changed = [...this.#pending].sort();
    this.#pending.clear();
    const abort = new AbortController();
    this.#abort = abort;
    this.#set('building');
    this.#running = this.#o.build(changed, abort.signal).then(() => {
      this.#running = undefined;
      this.#abort = undefined;
      if (this.#state === 'stopped') return;
      if (this.#state === 'cancelling' || this.#pending.size > 0) this.#settle();
      else this.#set('idle');
    });
  }

  #set(s: WatchState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.#o.onState?.(s);
  }
}
