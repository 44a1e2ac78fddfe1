/**
 * The store a read-only command (`plan`, `cache ls`) gets when the cache folder it was pointed at
 * does not exist: it holds nothing and makes nothing, so looking never creates a cache (a typo in
 * `--cache` would otherwise leave a new empty cache behind, owned by whoever looked).
 *
 * Anything that would write is a broken invariant: read-only commands never call it.
 */
import type { Store } from '../store/types.js';

export function absentStore(root: string): Store {
  const writes = (what: string) => (): never => {
    throw new Error(`Internal error: ${what} on the absent cache ${root} (a read-only command wrote)`);
  };
  return {
    root,
    get: async () => undefined,
    digested: async () => undefined,
    getHistory: async () => undefined,
    logPath: async () => undefined,
    layerDigest: async () => undefined,
    info: async () => ({ root, trees: 0, bytes: 0, logs: 0 }),
    flush: async () => {},
    readMount: writes('readMount'),
    layerPath: writes('layerPath'),
    scratch: writes('scratch'),
    begin: writes('begin'),
    commit: writes('commit'),
    discard: writes('discard'),
    claim: writes('claim'),
    importTree: writes('importTree'),
    putLog: writes('putLog'),
    putHistory: writes('putHistory'),
  };
}
