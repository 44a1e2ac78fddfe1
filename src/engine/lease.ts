/**
 * A run's hold on the cache: every tree key and package artifact the goals need is leased
 * (store/gc.ts, takeLease), so a `cache gc` meanwhile leaves them alone. Taken by a build and
 * by a buildroot built while locking; released when the run ends.
 */
import { ancestors } from '../graph.js';
import type { NodeId } from '../ids.js';
import { packagesOf } from '../packages/index.js';
import type { Logger } from '../event.js';
import { takeLease, type Lease } from '../store/gc.js';
import type { Engine, KeyedProject } from './types.js';

/**
 * Everything a run of `goals` may read or commit: every needed node's key, their packages.
 * Waiting for a cache command that holds the collection lock (`cache verify`, …) is said to
 * `logger` as a `wait` event.
 */
export async function leaseGoals(e: Pick<Engine, 'cacheDir'>, p: Pick<KeyedProject, 'graph' | 'keys'>, goals: NodeId[], logger?: Logger): Promise<Lease> {
  const needed = [...ancestors(p.graph, goals)];
  return takeLease(
    e.cacheDir,
    {
      keys: needed.map((id) => p.keys.get(id)!.key),
      debs: packagesOf(needed.map((id) => p.graph.stage(id).stage)).map((a) => a.sha256),
    },
    { onWait: ({ op, pid }) => logger?.log({ type: 'wait', for: op, pid }) },
  );
}
