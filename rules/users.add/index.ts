import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface User {
  name: string;
  uid?: number;
  gid?: number | string;
  groups: string[];
  home?: string;
  shell?: string;
  password_hash?: string;
  ssh_keys: string[];
  gecos?: string;
  system: boolean;
}

interface Group {
  name: string;
  gid?: number;
  system: boolean;
}

interface Options {
  users: User[];
  groups: Group[];
}

// Read from the source folder (the compiled module lives in dist/), as sh.ts reads the prelude.
const source = (file: string): string => readFileSync(fileURLToPath(new URL(`../../../rules/users.add/${file}`, import.meta.url)), 'utf8');
const USERS_AWK = source('users.awk');
const USERS_SH = source('users.sh');

/** An optional plan field: empty when not given, `=VALUE` when given (users.awk reads both). */
const opt = (v: string | number | undefined): string => (v === undefined ? '' : `=${v}`);

/**
 * users.awk's plan: groups first (so users can join them), then users, in the order given. The
 * schema keeps tabs and newlines out of every value.
 */
export function plan(o: Options): string {
  const lines = o.groups.map((g) => ['group', g.name, opt(g.gid), g.system ? '1' : '0'].join('\t'));
  o.users.forEach((u, i) => {
    lines.push(
      [
        'user',
        u.name,
        opt(u.uid),
        opt(typeof u.gid === 'number' ? u.gid : undefined),
        opt(typeof u.gid === 'string' ? u.gid : undefined),
        u.groups.join(','),
        opt(u.home),
        opt(u.shell),
        opt(u.password_hash),
        opt(u.gecos),
        u.system ? '1' : '0',
        u.ssh_keys.length > 0 ? String(i) : '-',
      ].join('\t'),
    );
  });
  return lines.map((l) => `${l}\n`).join('');
}

const usersAdd: RuleInvoke<Options> = (options, ctx) => {
  const twice = (names: string[], what: string) => {
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new Error(`users.add: ${what} ${dup} is listed twice`);
  };
  twice(options.users.map((u) => u.name), 'user');
  twice(options.groups.map((g) => g.name), 'group');
  const keys = Object.fromEntries(
    options.users.flatMap((u, i) => (u.ssh_keys.length > 0 ? [[`keys-${i}`, u.ssh_keys.map((k) => `${k}\n`).join('')]] : [])),
  );
  return shell(ctx, [`RUN=${q(ctx.run)}`, `. "$RUN/users.sh"`, 'users_db', 'users_homes'], {
    'users.awk': USERS_AWK,
    'users.sh': USERS_SH,
    plan: plan(options),
    ...keys,
  });
};

export default usersAdd;
