/**
 * "Did you mean …?" for names the user mistyped: keys, rules, pipelines, inputs, variables.
 * Optimal-string-alignment distance, so a swapped pair of letters (`mkdri`) costs one edit.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate nearest to `word`, if it is near enough to be a likely typo: at most a third
 * of the longer name's letters differ (at least one edit is always allowed), or it is the only
 * candidate that starts with `word`; case is ignored.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  candidates = [...candidates];
  let best: string | undefined;
  let bestDistance = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    if (c === word) continue;
    const dist = editDistance(w, c.toLowerCase());
    const limit = Math.max(1, Math.floor(Math.max(w.length, c.length) / 3));
    if (dist <= limit && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  if (best === undefined && w.length >= 2) {
    // `gz` for `gzip`: a unique candidate that starts with what was written.
    const starts = [...candidates].filter((c) => c !== word && c.toLowerCase().startsWith(w));
    if (starts.length === 1) best = starts[0];
  }
  return best;
}

/** `did you mean "paths"? ` (with a trailing space) or the empty string. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `did you mean "${c}"? `;
}

/** `a, b and c`; `none` for an empty list. */
export function listOf(items: readonly string[]): string {
  if (items.length === 0) return 'none';
  if (items.length === 1) return items[0]!;
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * The hint for a name that is not one of `allowed`:
 * `did you mean "paths"? Options of files.mkdir: paths and mode.` or
 * `remove it, or use one of the options of files.mkdir: paths and mode`.
 * `what` names the list ("keys allowed here"); `none` says why nothing fits ("files.mkdir takes no options").
 */
export function unknownNameHint(word: string, allowed: readonly string[], what: string, none: string): string {
  if (allowed.length === 0) return `remove it: ${none}`;
  const guess = closest(word, allowed);
  if (guess) return `did you mean "${guess}"? ${capitalize(what)}: ${listOf(allowed)}.`;
  return `remove it, or use one of the ${what}: ${listOf(allowed)}`;
}

export function capitalize(s: string): string {
  return s.length > 0 ? `${s[0]!.toUpperCase()}${s.slice(1)}` : s;
}

export function lowerFirst(s: string): string {
  return s.length > 0 ? `${s[0]!.toLowerCase()}${s.slice(1)}` : s;
}

/**
 * The hint for a path that does not exist: a near name in its folder if there is one, and
 * where relative paths start. `base` is the folder as shown (`./`, `sub/`), `by` the file
 * that wrote the path.
 */
export function missingPathHint(written: string, abs: string, base: string, by: string): string {
  const rel = `the path is relative to ${base}, the folder of ${by}`;
  let names: string[];
  try {
    names = readdirSync(dirname(abs));
  } catch {
    return `check the path: ${rel}`;
  }
  const guess = closest(basename(abs), names);
  if (!guess) return `check the name: ${rel}`;
  const slash = written.lastIndexOf('/');
  return `did you mean "${slash >= 0 ? written.slice(0, slash + 1) : ''}${guess}"? ${capitalize(rel)}.`;
}
