/**
 * Sizes as people write them (`--max-size 10G`, `cache: { max_size: 500M }`) and as imgmake
 * prints them (IEC: KiB, MiB, GiB). The grammar is rules/_lib/size.ts's, the same one rule
 * options use, so a size means the same everywhere.
 */
export { formatSize, parseSize, SIZE_PATTERN } from '../rules/_lib/size.js';
