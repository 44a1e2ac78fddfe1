/**
 * YAML nodes → plain JSON-like values with `${…}` substituted, remembering which node each
 * JSON-pointer path came from, so that a schema error on `/items/0/from` can underline the
 * very bytes the user wrote.
 */
import { isMap, isScalar, isSeq, type Node, type Scalar } from 'yaml';
import type { Vars, Substituted } from './vars.js';
import { deref, describeNode, keyName, nodeLoc, type Diagnostics, type SourceFile } from './yaml.js';

export interface Written {
  node: Node;
  /** The key when the value is a mapping entry's value. */
  key?: Scalar;
}

/** JSON pointer (`''`, `/items/0/from`) → where it was written. */
export type Paths = Map<string, Written>;

export function pointerSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function toValue(
  f: SourceFile,
  node: Node | null,
  vars: Vars,
  d: Diagnostics,
  paths: Paths,
  path = '',
  key?: Scalar,
): Substituted {
  if (node === null) {
    // An empty value (`name:`): point at its key.
    if (key) paths.set(path, { node: key, key });
    return { ok: true, value: null };
  }
  paths.set(path, { node, ...(key ? { key } : {}) });
  if (isScalar(node)) {
    if (typeof node.value === 'bigint') return { ok: true, value: Number(node.value) };
    return vars.substitute(f, node);
  }
  if (isSeq(node)) {
    const out: unknown[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const r = toValue(f, deref(f, item), vars, d, paths, `${path}/${i}`);
      if (r.ok) out.push(r.value);
      else ok = false;
    });
    return ok ? { ok: true, value: out } : { ok: false };
  }
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    let ok = true;
    for (const pair of node.items) {
      const name = keyName(pair);
      if (name === undefined) {
        const k = deref(f, pair.key);
        d.add('wrong-type', `keys must be names, not ${describeNode(k)}`, nodeLoc(f, k, nodeLoc(f, node)), 'write a plain name before the colon');
        ok = false;
        continue;
      }
      const r = toValue(f, deref(f, pair.value), vars, d, paths, `${path}/${pointerSegment(name)}`, pair.key as Scalar);
      if (!r.ok) {
        ok = false;
        continue;
      }
      // defineProperty: a key named "__proto__" is data, not the object's prototype.
      Object.defineProperty(out, name, { value: r.value, enumerable: true, writable: true, configurable: true });
    }
    return ok ? { ok: true, value: out } : { ok: false };
  }
  return { ok: true, value: null };
}
