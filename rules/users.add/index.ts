import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';
import { keyFiles, plan, type UsersOptions } from '../_lib/users.js';

// Read from the source folder (the compiled module lives in dist/), as sh.ts reads the prelude.
const source = (file: string): string => readFileSync(fileURLToPath(new URL(`../../../rules/users.add/${file}`, import.meta.url)), 'utf8');
const USERS_AWK = source('users.awk');
const USERS_SH = source('users.sh');

type Options = UsersOptions;

const usersAdd: RuleInvoke<Options> = (options, ctx) => {
  const keys = keyFiles('users.add', options);
  return shell(ctx, [`RUN=${q(ctx.run)}`, `. "$RUN/users.sh"`, 'users_db', 'users_homes'], {
    'users.awk': USERS_AWK,
    'users.sh': USERS_SH,
    plan: plan(options),
    ...keys,
  });
};

export default usersAdd;
