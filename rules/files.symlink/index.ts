import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  links: { path: string; target: string }[];
}

const symlink: RuleInvoke<Options> = (options, ctx) => shell(ctx, options.links.map((l) => `link ${q(l.target)} ${q(l.path)}`));

export default symlink;
