import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  files: { path: string; content: string; mode: string; owner: string }[];
}

const write: RuleInvoke<Options> = (options, ctx) =>
  shell(
    ctx,
    options.files.map((f, i) => `put ${q(`${ctx.run}/content-${i}`)} ${q(f.path)} ${f.mode} ${f.owner}`),
    Object.fromEntries(options.files.map((f, i) => [`content-${i}`, f.content])),
  );

export default write;
