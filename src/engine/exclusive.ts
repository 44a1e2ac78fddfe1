/**
 * One build at a time in a work folder every build on a cache shares: the lock step's
 * `CACHE/lock` and the package verification's `CACHE/verify` (a format resolves or verifies in
 * them, its log beside). Two builds on one cache at once (two CI jobs, two tests) would write
 * into each other's files there; held as a claim on a fixed key (the store's claims are
 * process-safe and die with their process), the second waits, saying so with a `wait` event.
 *
 * Re-entrant along one chain of calls: verifying an RPM stage's packages builds its buildroot,
 * whose own package stage is verified inside (AsyncLocalStorage knows what this chain holds);
 * another build in the same process is another chain, and waits like another process.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '../event.js';
import { sha256 } from '../hash.js';
import type { CacheKey } from '../ids.js';
import type { Engine } from './types.js';

export type SharedWork = 'locking' | 'verifying';

/** The claim key of a shared work folder: no tree has it (a tree's key hashes canonical JSON). */
const keyOf = (what: SharedWork): CacheKey => sha256(`imgmake shared work folder: ${what}`) as CacheKey;

/** What the current chain of calls holds, by cache folder. */
const holding = new AsyncLocalStorage<ReadonlySet<string>>();

export async function exclusively<T>(e: Engine, what: SharedWork, o: { logger: Logger; signal?: AbortSignal | undefined }, fn: () => Promise<T>): Promise<T> {
  const mine = `${e.cacheDir}\0${what}`;
  const outer = holding.getStore() ?? new Set<string>();
  if (outer.has(mine)) return fn();
  const held = await e.store.claim(keyOf(what), {
    signal: o.signal,
    onWait: (holder) => o.logger.log({ type: 'wait', for: what, pid: Number(holder.split('-')[0]) }),
  });
  // Cancelled while waiting: fn sees the same aborted signal and stops before its sandbox runs.
  if (!held) return fn();
  try {
    return await holding.run(new Set([...outer, mine]), fn);
  } finally {
    await held.release();
  }
}
