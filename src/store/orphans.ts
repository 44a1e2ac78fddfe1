/**
 * Crash leftovers: every temporary a build makes outside the store's work dirs carries the
 * name of the process that made it, `<pid>-<boot>.<pidns>-<rand>` (as work dirs, leases and
 * locks already do, local.ts), so that a later build can tell a dead build's leftovers from a
 * running build's work and remove them.
 *
 *     out/.TARGET.new-OWNER/           an export being assembled (export.ts)
 *     out/.TARGET.old-OWNER/           the previous output, between the two renames of a swap
 *     out/.imgmake/TARGET.json.OWNER   a stamp being written
 *     DIR/../.DIR.new-OWNER/           `imgmake export NODE DIR` being assembled
 *     CACHE/tmp/OWNER                  cacache's temporary files (`tmpPrefix`: CACACHE_TMP)
 *     CACHE/trash/OWNER/               a layer on its way out (gc.ts)
 *     CACHE/leases/OWNER, .OWNER       a build's lease, and the lease being written
 *     CACHE/claims/<key> -> OWNER      the claim on a key (lock.ts)
 *     imgmake.lock.OWNER.tmp           the lock file being written (packages.ts)
 *
 * `sweepCache` runs whenever the store is opened (every build, `cache gc`, `cache verify`),
 * `sweepOut` before every export; each removes what a dead process left and nothing else: an
 * owner of another pid namespace of this boot counts as alive (ownerGone), and a name that does
 * not carry an owner is never touched (an older imgmake's leftovers included: `rm` them once).
 *
 * This module only removes; it does not decide names' prefixes (the callers do).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { readdir, readlink, rm, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ownerGone, type PidScope } from './local.js';

/** This process, as temporaries name it: `<pid>-<boot>.<pidns>` (see local.ts, PidScope). */
export const OWNER: string = ((): string => {
  const boot = ((): string => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '').slice(0, 8);
    } catch {
      return '0';
    }
  })();
  const ns = ((): string => {
    try {
      return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
    } catch {
      return '0';
    }
  })();
  return `${process.pid}-${boot}.${ns}`;
})();

const HERE: PidScope = { boot: OWNER.split('-')[1]!.split('.')[0]!, ns: OWNER.split('.')[1]! };

/** This process's boot and pid namespace, as its owner name carries them. */
export function ownerScope(): PidScope {
  return HERE;
}

/** A fresh name for a temporary of this process: `PREFIX<pid>-<boot>.<pidns>-<rand>SUFFIX`. */
export function ownedName(prefix = '', suffix = ''): string {
  return `${prefix}${OWNER}-${randomBytes(4).toString('hex')}${suffix}`;
}

/**
 * Options for every cacache write: its temporary files in CACHE/tmp/ are named after us.
 * (`tmpPrefix` is cacache's, missing from its types; `metadata` only makes them accept it.)
 */
export const CACACHE_TMP: { tmpPrefix: string; metadata?: never } = { tmpPrefix: OWNER };

/** What an owner looks like in a name (a regexp source, for `sweep`'s patterns). */
export const OWNER_RE = String.raw`\d+-[0-9a-f]+\.\d+-[0-9a-f-]+`;

/** Escapes `text` for a regexp. */
export function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Removes the entries of `dir` whose whole name matches `pattern` (its first group: the owner)
 * and whose owner is gone (recursively, never following a symlink out). Returns the names
 * removed. By default, a name that is an owner and nothing else.
 */
export async function sweep(dir: string, pattern = new RegExp(`^(${OWNER_RE})$`)): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const owner = pattern.exec(name)?.[1];
    if (!owner || !ownerGone(owner, HERE)) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * A dead build's leftovers in the cache: cacache's temporary files, trash, leases (and leases
 * half-written), claims. Work dirs are the store's own (removeOrphans, at open).
 *
 * A claim is a lock: one whose holder is dead is what `takeLock` breaks anyway. Removing one
 * races only with a build breaking the same dead claim at the same moment, and the worst that
 * race can do is let two builds make one key at once, which the commit protocol already allows
 * (same key, same tree: one is kept).
 */
export async function sweepCache(root: string): Promise<void> {
  await sweep(join(root, 'tmp'));
  await sweep(join(root, 'trash'));
  await sweep(join(root, 'leases'));
  await sweep(join(root, 'leases'), new RegExp(`^\\.(${OWNER_RE})$`));
  const claims = join(root, 'claims');
  for (const name of await readdir(claims).catch(() => [] as string[])) {
    const owner = await readlink(join(claims, name)).catch(() => undefined);
    if (owner === undefined || !new RegExp(`^${OWNER_RE}$`).test(owner) || !ownerGone(owner, HERE)) continue;
    if ((await readlink(join(claims, name)).catch(() => undefined)) === owner) await unlink(join(claims, name)).catch(() => undefined);
  }
}

/** A dead build's leftovers in an output directory: exports half-assembled, swaps, stamps. */
export async function sweepOut(outDir: string): Promise<void> {
  await sweep(outDir, new RegExp(`^\\..+\\.(?:new|old)-(${OWNER_RE})$`));
  await sweep(join(outDir, '.imgmake'), new RegExp(`^.+\\.json\\.(${OWNER_RE})$`));
}
