/**
 * A lock file that a killed holder cannot leave stuck: a symlink whose target names the holder
 * (`<pid>-<boot>.<pidns>-<rand>`, like work directories and leases). Taking it is creating the
 * symlink (atomic); a holder that is gone (ownerGone) is broken away; otherwise the taker polls,
 * up to `giveUpMs` if given.
 * Used for gc.lock (one collection at a time) and claims/<key> (one build of a node at a time).
 */
import { mkdir, readlink, symlink, unlink } from 'node:fs/promises';
import { ownedName } from './orphans.js';
import { dirname } from 'node:path';
import { ownerGone, pidScope } from './local.js';

export interface Held {
  /** Whether another live process held it first (and this one waited). */
  waited: boolean;
  release(): Promise<void>;
}

/**
 * Takes the lock at `path`, waiting while a live process holds it; `onWait` is told once who
 * holds it. Resolves undefined if `signal` aborts while waiting.
 */
export async function takeLock(
  path: string,
  o: { signal?: AbortSignal | undefined; onWait?: (holder: string) => void; pollMs?: number; giveUpMs?: number } = {},
): Promise<Held | undefined> {
  const here = await pidScope();
  const me = ownedName();
  await mkdir(dirname(path), { recursive: true });
  let waited = false;
  const started = Date.now();
  for (;;) {
    if (o.signal?.aborted) return undefined;
    // A holder in another pid namespace (another container on this cache) cannot be judged
    // alive or dead from here: after giveUpMs, go on without the lock rather than wait forever.
    if (o.giveUpMs !== undefined && Date.now() - started > o.giveUpMs) return { waited, release: async () => {} };
    try {
      await symlink(me, path);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = await readlink(path).catch(() => undefined);
      if (owner !== undefined && ownerGone(owner, here)) {
        // Its holder was killed: break the lock (another taker may race us to it; symlink decides).
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (!waited && owner !== undefined) o.onWait?.(owner);
      waited = true;
      await new Promise((done) => setTimeout(done, o.pollMs ?? 100));
    }
  }
  return {
    waited,
    async release() {
      if ((await readlink(path).catch(() => undefined)) === me) await unlink(path).catch(() => undefined);
    },
  };
}
