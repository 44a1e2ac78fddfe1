/**
 * What load says about a path that leaves the project (confine.ts decides that) or does not
 * exist inside it. Never anything read from outside the project: not a line of a file, not
 * the names in a folder.
 */
import { join } from 'node:path';
import type { Confined, Escape } from '../confine.js';
import { missingPathHint } from './suggest.js';
import type { SourceFile } from './yaml.js';

/** `included file "../x" leads out of the project folder through ".."`. */
export function outsideMessage(what: string, escape: Escape, show: (p: string) => string): string {
  switch (escape.how) {
    case 'absolute':
      return `${what} is outside the project folder`;
    case 'dotdot':
      return `${what} leads out of the project folder through ".."`;
    case 'symlink':
      return `${what} leads out of the project folder: ${show(escape.link)} is a symlink to ${escape.target}`;
  }
}

/**
 * The hint for an include or file input that is outside the project, or (given the failed
 * resolution) missing inside it: a near name in the folder where the walk stopped, which is
 * always inside.
 */
export function confinedHint(
  show: (p: string) => string,
  what: 'include' | 'file',
  r?: Extract<Confined, { ok: false }>,
  written?: string,
  f?: SourceFile,
): string {
  if (!r || r.error === 'outside') {
    const it = what === 'include' ? 'the file' : 'it';
    return `a definition reads only files inside its project folder (the top-level definition's folder): copy ${it} there, or allow a folder of this host with --allow-path DIR`;
  }
  const base = `${show(f!.dir)}/`;
  const by = show(f!.path);
  if (r.error === 'loop') return `check the symlinks on the way: the path is relative to ${base}, the folder of ${by}`;
  const missing = join(r.dir, r.name);
  if (r.last) return missingPathHint(written!, missing, base, by);
  return `there is no folder ${show(missing)} in the project: check the path (relative to ${base}, the folder of ${by})`;
}
