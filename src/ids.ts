/**
 * Branded identifiers. A plain string cannot be passed where a CacheKey is expected, so a
 * NodeId never ends up where a key belongs (wireit's ScriptReferenceString habit).
 */

/** sha256 hex of a node's canonical key object. Example: `3f2a…` (64 hex digits). */
export type CacheKey = string & { readonly __brand: 'CacheKey' };
/** `sha256:<hex>` of some content: a project file, a rule folder, a tree manifest. */
export type Digest = string & { readonly __brand: 'Digest' };
/** A rule's name, `area.verb`: `files.mkdir`. */
export type RuleName = string & { readonly __brand: 'RuleName' };
/** A pipeline's name as written under `pipelines:`. */
export type PipelineName = string & { readonly __brand: 'PipelineName' };
/**
 * A node of the graph. Stages are `PIPELINE.STAGE` (stage name, or its index when it has
 * none): `rootfs.hostname`, `rootfs.0`. Project-file sources are `file:RELATIVE/PATH`.
 */
export type NodeId = string & { readonly __brand: 'NodeId' };

const HEX64 = /^[0-9a-f]{64}$/;

export function parseCacheKey(s: string): CacheKey | undefined {
  return HEX64.test(s) ? (s as CacheKey) : undefined;
}

export function asCacheKey(s: string): CacheKey {
  const k = parseCacheKey(s);
  if (!k) throw new Error(`Internal error: not a cache key: ${JSON.stringify(s)}`);
  return k;
}

export function formatDigest(hex: string): Digest {
  return `sha256:${hex}` as Digest;
}

export function stageNodeId(pipeline: PipelineName, stage: string): NodeId {
  return `${pipeline}.${stage}` as NodeId;
}

export function fileNodeId(relPath: string): NodeId {
  return `file:${relPath}` as NodeId;
}

/** Splits `PIPELINE.STAGE` at the last dot (pipeline names may not contain dots). */
export function parseStageNodeId(s: string): { pipeline: PipelineName; stage: string } | undefined {
  const dot = s.indexOf('.');
  if (dot <= 0 || dot === s.length - 1) return undefined;
  return { pipeline: s.slice(0, dot) as PipelineName, stage: s.slice(dot + 1) };
}
