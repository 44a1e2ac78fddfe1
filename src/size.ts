/** Sizes as people write them: `--max-size 10G`, `cache: { max_size: 500M }`. */

/** `10G`, `500M`, `1.5T`, `0`: bytes (K, M, G, T are powers of 1024; a `B`/`iB` suffix is allowed). */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = { '': 0, k: 1, m: 2, g: 3, t: 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * 1024 ** unit);
}
