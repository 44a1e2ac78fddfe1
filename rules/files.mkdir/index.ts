import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  paths: { path: string; mode: string; owner: string; parents: boolean; exist_ok: boolean }[];
}

const mkdir: RuleInvoke<Options> = (options, ctx) =>
  shell(
    ctx,
    options.paths.map((p) =>
      [
        `d=$(in_tree ${q(p.path)} follow)`,
        `if [ -e "$d" ] || [ -L "$d" ]; then`,
        `  [ -d "$d" ] || die ${q(`${p.path}: exists and is not a directory`)}`,
        p.exist_ok ? '' : `  die ${q(`${p.path}: already exists (exist_ok is false)`)}`,
        `else`,
        p.parents ? `  mkdir -p "$d"` : `  [ -d "$(dirname "$d")" ] || die ${q(`${p.path}: its parent does not exist (parents is false)`)}; mkdir "$d"`,
        `fi`,
        `chmod ${p.mode} "$d"; chown ${p.owner} "$d"`,
      ]
        .filter(Boolean)
        .join('\n'),
    ),
  );

export default mkdir;
