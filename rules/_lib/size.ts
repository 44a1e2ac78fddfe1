/**
 * The one grammar for sizes, wherever a user writes one: a rule's option (`disk.partition`'s
 * `size: 4G`), the definition's `cache: { max_size: 10G }`, `--max-size 500M`. It lives with the
 * rules so that it is part of every rule's code digest (src/rule.ts): the disk rules parse with
 * it, and src/size.ts re-exports it for the engine.
 *
 *     512   4G   2048M   1.5T   10GiB   0        K, M, G, T: powers of 1024 (IEC)
 *
 * A unit letter may be lower case and followed by `iB` (`10G` and `10GiB` are one size); a bare
 * `B` means bytes. `GB`, `MB`… are refused: they mean powers of 1000 to many, 1024 to others.
 */

/** The grammar as a JSON-Schema `pattern` (rule.json files use this exact string; a test checks). */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?([KkMmGgTt](iB)?|B)?$';

const RE = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:([KkMmGgTt])(?:iB)?|B)?\s*$/;
const POWER: Record<string, number> = { k: 1, m: 2, g: 3, t: 4 };

/** Bytes of a size (rounded down to a whole byte), or undefined when `text` is not one. */
export function parseSize(text: string): number | undefined {
  const m = RE.exec(text);
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * 1024 ** (m[2] ? POWER[m[2].toLowerCase()]! : 0));
}

/** A size as imgmake prints it, in IEC units: `512 B`, `8.0 MiB`, `3.2 GiB`. */
export function formatSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 ** (i + 1) && i < units.length - 1) i++;
  return i === 0 ? `${n} B` : `${(n / 1024 ** i).toFixed(1)} ${units[i]}`;
}
