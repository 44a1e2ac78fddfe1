import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  items: { path: string; mode: string; recursive: boolean }[];
}

const chmod: RuleInvoke<Options> = (options, ctx) =>
  shell(
    ctx,
    options.items.map((item) =>
      [
        `p=$(in_tree ${q(item.path)} follow)`,
        `[ -e "$p" ] || die ${q(`${item.path}: no such file or directory in the tree`)}`,
        `chmod ${item.recursive ? '-R ' : ''}${q(item.mode)} "$p"`,
      ].join('\n'),
    ),
  );

export default chmod;
