/**
 * The real implementations, picked in one place for every front end: the rules folder and the
 * host's package-format defaults (loadProject), bubblewrap, the local store, the package
 * formats, a remote (openEngine). Anything may be handed in instead. The rest of the engine
 * takes these as arguments; this module and the CLI's composition are the only ones that import
 * the package formats themselves (test/layering.test.ts).
 *
 * Nothing here touches the network: resolving a lock is lockPackages's, and only when asked.
 */
import type { Diagnostic } from '../diagnostic.js';
import { load } from '../load/index.js';
import type { HostDefault } from '../load/vars.js';
import type { ValidatedOptions } from '../load/validated.js';
import { lockTable, packageFormats } from '../packages/formats.js';
import type { Formats } from '../packages/format.js';
import { historyScope } from '../plan.js';
import type { RemoteConfig } from '../remote/config.js';
import { fail, ok, type Result } from '../result.js';
import { loadRules } from '../rule.js';
import { bwrapSandbox, type Sandbox } from '../sandbox/run.js';
import { openLocalStore } from '../store/local.js';
import type { Store } from '../store/types.js';
import type { Engine, Project } from './types.js';

export interface LoadProjectOptions {
  /** The root definition (an imgmake.yaml), an absolute path. */
  file: string;
  /** Values given for variables, and how each was given (for messages: `--var x=1`). */
  vars?: Record<string, string>;
  varSources?: Record<string, string>;
  /** Folders outside the project the definition may read (`--allow-path`). */
  allow?: string[];
  /** Variables the host provides; default: what every format reads from this host (hostDefaults). */
  hostDefaults?: Record<string, HostDefault>;
  /** Options validated by earlier builds (load/validated.ts): those skip ajv. */
  validated?: ValidatedOptions;
}

/** The rules and the definition, checked; every problem with the input as a diagnostic. */
export async function loadProject(o: LoadProjectOptions): Promise<Result<Project, Diagnostic[]>> {
  const rules = await loadRules();
  const loaded = await load({
    file: o.file,
    rules,
    ...(o.vars ? { vars: o.vars } : {}),
    ...(o.varSources ? { varSources: o.varSources } : {}),
    hostDefaults: o.hostDefaults ?? (await hostDefaults()),
    allow: o.allow ?? [],
    ...(o.validated ? { validated: o.validated } : {}),
  });
  if (!loaded.ok) return fail(loaded.error);
  return ok({ rules, def: loaded.value, scope: historyScope(o.file) });
}

/**
 * Variables the host provides: each package format's (the mirror the host's own package manager
 * already uses), so a definition need not name a mirror and works wherever the host's does.
 * ROOT: whose configuration to read.
 */
export async function hostDefaults(root = '/', formats?: Formats): Promise<Record<string, HostDefault>> {
  const out: Record<string, HostDefault> = {};
  for (const f of (formats ?? (await packageFormats())).values()) Object.assign(out, await f.hostVariables?.(root));
  return out;
}

export interface OpenEngineOptions {
  cacheDir: string;
  /** Default: the local store in cacheDir (made if missing). */
  store?: Store;
  /** Default: bubblewrap. */
  sandbox?: Sandbox;
  remote?: RemoteConfig | undefined;
}

/** An engine on a cache folder with the real implementations unless others are handed in. */
export async function openEngine(o: OpenEngineOptions): Promise<Engine> {
  const store = o.store ?? (await openLocalStore(o.cacheDir));
  return {
    store,
    sandbox: o.sandbox ?? bwrapSandbox,
    formats: lockTable(await packageFormats()),
    cacheDir: o.cacheDir,
    // The remote's modules (transports, blobs) are loaded only when there is one.
    ...(o.remote ? { remote: (await import('../remote/index.js')).openRemote(o.remote, store) } : {}),
  };
}
