/**
 * Project confinement: a path a definition names (an `include:`, a `file:` input) must lead to
 * something inside the project folder (the root definition's folder) or inside a folder the
 * user allowed with `--allow-path`. A definition is someone else's change as often as not; it
 * must not read `/root/.ssh/id_ed25519` or bind the host's `/run` into a stage.
 *
 * The path is walked one component at a time from a folder already known to be inside:
 * `..` and every symlink (its target read with readlink, never followed by the kernel) are
 * applied by hand, and the walk stops at the first step that would leave every allowed folder.
 * So nothing outside is ever looked at, not even whether it exists: an error cannot tell the
 * definition's author anything about the host. A symlink inside the project pointing inside it
 * is fine. What comes out is the real path (no symlink in it): the path the caller reads, or
 * binds into a sandbox, is the one that was checked.
 *
 * This module resolves paths; it does not read files or decide what the error says.
 */
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, sep } from 'node:path';

/** The folders a definition may read from: real paths (no symlinks), the project's first. */
export type Roots = readonly string[];

/** How a path left the allowed folders. */
export type Escape =
  | { how: 'absolute' }
  | { how: 'dotdot' }
  /** Through a symlink: `link` (a real path, inside) points to `target` (as written in the link). */
  | { how: 'symlink'; link: string; target: string };

export type Confined =
  /** `path`: the real path; `root`: the allowed folder it is in. */
  | { ok: true; path: string; root: string }
  | { ok: false; error: 'outside'; escape: Escape }
  /** `dir` (real, inside) has no entry `name` (or `name` is not a folder and more follows). */
  | { ok: false; error: 'missing'; dir: string; name: string; last: boolean }
  | { ok: false; error: 'loop'; link: string };

/** Symlinks followed before giving up, as the kernel's ELOOP (40). */
const MAX_LINKS = 40;

/** The real path of each folder, or the first that cannot be resolved. */
export function realRoots(dirs: readonly string[]): { ok: true; roots: string[] } | { ok: false; dir: string; why: string } {
  const roots: string[] = [];
  for (const d of dirs) {
    try {
      roots.push(realpathSync(d));
    } catch (e) {
      return { ok: false, dir: d, why: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : String((e as Error).message) };
    }
  }
  return { ok: true, roots };
}

/** The allowed folder `p` (a normalised absolute path) is in, if any. */
export function rootOf(roots: Roots, p: string): string | undefined {
  return roots.find((r) => p === r || p.startsWith(r.endsWith(sep) ? r : r + sep));
}

function parts(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * An absolute path that starts, component by component, with an allowed folder: that folder and
 * the components after it (which may still hold `..` or symlinks: the walk applies them).
 */
function enter(roots: Roots, abs: string): { root: string; rest: string[] } | undefined {
  const given = abs.split('/').filter((c) => c !== '' && c !== '.');
  let best: { root: string; rest: string[] } | undefined;
  for (const r of roots) {
    const rp = parts(r);
    if (rp.length > given.length || !rp.every((c, i) => given[i] === c)) continue;
    if (!best || rp.length > parts(best.root).length) best = { root: r, rest: given.slice(rp.length) };
  }
  return best;
}

/**
 * Resolves `written` (relative to `from`, a real folder inside `roots`, or absolute) without
 * leaving `roots`. Symlinks are followed by hand, so the answer is true of the file system as
 * it is now; a caller that uses the path later checks it again (`recheck`).
 */
export function resolveConfined(roots: Roots, from: string, written: string): Confined {
  type Part = { c: string; link?: { link: string; target: string } };
  let cur: string;
  let rest: Part[];
  if (isAbsolute(written)) {
    const e = enter(roots, written);
    if (!e) return { ok: false, error: 'outside', escape: { how: 'absolute' } };
    cur = e.root;
    rest = e.rest.map((c) => ({ c }));
  } else {
    if (!rootOf(roots, from)) throw new Error(`Internal error: ${from} is not inside ${roots.join(', ')}`);
    cur = from;
    rest = parts(written).map((c) => ({ c }));
  }
  let links = 0;
  while (rest.length > 0) {
    const { c, link } = rest.shift()!;
    if (c === '..') {
      const up = dirname(cur);
      if (!rootOf(roots, up)) return { ok: false, error: 'outside', escape: link ? { how: 'symlink', ...link } : { how: 'dotdot' } };
      cur = up;
      continue;
    }
    const next = join(cur, c);
    let st;
    try {
      st = lstatSync(next);
    } catch {
      return { ok: false, error: 'missing', dir: cur, name: c, last: rest.length === 0 };
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return { ok: false, error: 'loop', link: next };
      const target = readlinkSync(next);
      const via = { link: next, target };
      if (isAbsolute(target)) {
        const e = enter(roots, target);
        if (!e) return { ok: false, error: 'outside', escape: { how: 'symlink', ...via } };
        cur = e.root;
        rest = [...e.rest.map((x) => ({ c: x, link: via })), ...rest];
      } else {
        rest = [...parts(target).map((x) => ({ c: x, link: via })), ...rest];
      }
      continue;
    }
    if (rest.length > 0 && !st.isDirectory()) return { ok: false, error: 'missing', dir: cur, name: c, last: false };
    cur = next;
  }
  return { ok: true, path: cur, root: rootOf(roots, cur)! };
}

/**
 * Checks again, just before use, that `path` (a real path `resolveConfined` returned) still is
 * one: every component a plain folder or file, none swapped for a symlink since, inside `root`.
 * `undefined` when it is; else what changed.
 */
export function recheck(root: string, path: string): string | undefined {
  if (!rootOf([root], path)) return `${path} is not inside ${root}`;
  const r = resolveConfined([root], root, path === root ? '.' : path.slice(root.length + 1));
  if (!r.ok) {
    return r.error === 'outside'
      ? `${path} now leads out of ${root}${r.escape.how === 'symlink' ? ` (${r.escape.link} became a symlink to ${r.escape.target})` : ''}`
      : `${path} ${r.error === 'loop' ? 'is a symlink loop' : 'no longer exists'}`;
  }
  if (r.path !== path) return `${path} now leads to ${r.path}`;
  try {
    if (realpathSync(root) !== root) return `${root} is no longer a real path`;
  } catch {
    return `${root} no longer exists`;
  }
  return undefined;
}
