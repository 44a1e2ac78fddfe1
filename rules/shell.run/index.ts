import type { RuleInvoke } from '../../src/rule.js';

interface Options {
  script: string;
  shell: string;
  env: Record<string, string>;
}

const run: RuleInvoke<Options> = (options, ctx) => {
  const env = Object.entries(options.env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  return {
    argv: ['/usr/bin/env', ...env, options.shell, '-e', `${ctx.run}/script`],
    files: { script: options.script },
  };
};

export default run;
