/**
 * key: node → CacheKey, from the definition alone (a no-op build reads no tree).
 *
 * A stage's key is sha256 over the canonical JSON of its key object (docs/cache-key.md):
 *
 *     { schema: "imgmake.key.v2", rule, ruleCode, options, parent, inputs, buildroot }
 *
 * Beside each key we keep a per-field digest map ("options.hostname" → sha256 …) so `plan` can
 * say which field changed since the node was last built. A project file's key is the digest
 * of its content (and, for a directory, of its names, types, modes and link targets): its
 * mtime never matters.
 *
 * Keys must be computed in dependency order, because a stage's key contains its parent's,
 * its inputs' and its buildroot's keys.
 */
import { sha256, sha256File } from './hash.js';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildGraph } from './graph.js';
import type { CacheKey, Digest, NodeId } from './ids.js';
import { formatDigest } from './ids.js';

/** Bump when the meaning of a key's fields, the sandbox or the store's tree format changes. */
export const KEY_SCHEMA = 'imgmake.key.v2';

/**
 * The value every stage's SOURCE_DATE_EPOCH gets: a constant of the key schema. 1980-01-01
 * 00:00 UTC, not 0: the FAT epoch (mtools writes earlier dates as 2098), and e2fsprogs reads 0
 * as "unset" and falls back to the clock.
 */
export const SOURCE_DATE_EPOCH = '315532800';

export interface KeyObject {
  schema: string;
  rule: string;
  ruleCode: Digest;
  options: unknown;
  parent: CacheKey | null;
  inputs: Record<string, { tree: CacheKey } | { file: Digest } | { packages: Digest }>;
  buildroot: CacheKey | 'host';
}

export interface NodeKey {
  key: CacheKey;
  object: KeyObject;
  /** Digest of each field (options and inputs one entry per name): what plan compares. */
  fields: Record<string, string>;
}

export type Keys = Map<NodeId, NodeKey>;

/** JSON with object keys sorted at every level and no whitespace: one text per value. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (v === undefined) throw new Error('Internal error: undefined in a key object');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export { sha256 } from './hash.js';

/** Computes every stage's key. File digests come from `digestPath` (memoized per run). */
export async function computeKeys(g: BuildGraph, digest = memoDigest()): Promise<Keys> {
  const keys: Keys = new Map();
  for (const id of g.order) {
    const { stage, rule } = g.stage(id);
    const inputs: KeyObject['inputs'] = {};
    let parent: CacheKey | null = null;
    let buildroot: CacheKey | 'host' = 'host';
    for (const e of g.graph.inEdges(id)) {
      const attrs = g.graph.getEdgeAttributes(e);
      const src = g.graph.source(e) as NodeId;
      const srcNode = g.graph.getNodeAttributes(src);
      const srcKey = (): CacheKey => {
        const k = keys.get(src);
        if (!k) throw new Error(`Internal error: ${src} has no key before ${id}`);
        return k.key;
      };
      switch (attrs.kind) {
        case 'parent':
          parent = srcKey();
          break;
        case 'buildroot':
          buildroot = srcKey();
          break;
        case 'input':
          inputs[attrs.name!] = srcNode.kind === 'file' ? { file: await digest(srcNode.input.path) } : { tree: srcKey() };
          break;
      }
    }
    // A package stage's options less what its format says only locates packages (an RPM
    // repository's URLs): the lock's digest, below, pins what is installed.
    let options: Record<string, unknown> = stage.options;
    for (const input of stage.inputs) {
      if (input.kind !== 'packages') continue;
      inputs[input.name] = { packages: input.digest };
      if (input.keyOptions) options = input.keyOptions;
    }
    const object: KeyObject = {
      schema: KEY_SCHEMA,
      rule: rule.name,
      ruleCode: rule.digest,
      options,
      parent,
      inputs,
      buildroot,
    };
    const fields: Record<string, string> = {
      schema: KEY_SCHEMA,
      rule: rule.name,
      ruleCode: rule.digest,
      parent: parent ?? 'none',
      buildroot,
    };
    for (const [k, v] of Object.entries(options)) fields[`options.${k}`] = sha256(canonicalJson(v));
    for (const [k, v] of Object.entries(inputs)) fields[`inputs.${k}`] = sha256(canonicalJson(v));
    keys.set(id, { key: sha256(canonicalJson(object)) as CacheKey, object, fields });
  }
  return keys;
}

/** The fields that differ between two field maps, in a stable order. */
export function changedFields(now: Record<string, string>, before: Record<string, string>): string[] {
  const names = new Set([...Object.keys(now), ...Object.keys(before)]);
  return [...names].filter((n) => now[n] !== before[n]).sort(fieldOrder);
}

const ORDER = ['schema', 'rule', 'ruleCode', 'options', 'inputs', 'buildroot', 'parent'];
function fieldOrder(a: string, b: string): number {
  const ra = ORDER.indexOf(a.split('.')[0]!);
  const rb = ORDER.indexOf(b.split('.')[0]!);
  return ra !== rb ? ra - rb : a < b ? -1 : a > b ? 1 : 0;
}

export function memoDigest(): (path: string) => Promise<Digest> {
  const memo = new Map<string, Promise<Digest>>();
  return (path) => {
    let d = memo.get(path);
    if (!d) memo.set(path, (d = digestPath(path)));
    return d;
  };
}

/**
 * Content digest of a project file or directory. A file: its bytes and whether it is
 * executable (files.copy keeps modes). A directory: every entry's relative name, type, mode
 * and content digest or link target, sorted. Never mtimes, owners or inode numbers.
 */
export async function digestPath(path: string): Promise<Digest> {
  const s = await lstat(path);
  if (s.isDirectory()) {
    const entries: unknown[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        const p = join(dir, name);
        const r = rel ? `${rel}/${name}` : name;
        const st = await lstat(p);
        const mode = st.mode & 0o7777;
        if (st.isDirectory()) {
          entries.push([r, 'dir', mode]);
          await walk(p, r);
        } else if (st.isSymbolicLink()) entries.push([r, 'link', await readlink(p)]);
        else if (st.isFile()) entries.push([r, 'file', mode, await sha256File(p)]);
        else entries.push([r, 'other', mode]);
      }
    };
    await walk(path, '');
    return formatDigest(sha256(canonicalJson(['dir', s.mode & 0o7777, entries])));
  }
  if (s.isSymbolicLink()) return formatDigest(sha256(canonicalJson(['link', await readlink(path)])));
  return formatDigest(sha256(canonicalJson(['file', s.mode & 0o7777, await sha256File(path)])));
}


