/**
 * users.add's plan (what users.awk applies), shared by users.add (which applies it to the tree)
 * and users.firstboot (which ships it for the running system to apply).
 */

export interface User {
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

export interface Group {
  name: string;
  gid?: number;
  system: boolean;
}

export interface UsersOptions {
  users: User[];
  groups: Group[];
}

/** An optional plan field: empty when not given, `=VALUE` when given (users.awk reads both). */
const opt = (v: string | number | undefined): string => (v === undefined ? '' : `=${v}`);

/**
 * users.awk's plan: groups first (so users can join them), then users, in the order given. The
 * schema keeps tabs and newlines out of every value.
 */
export function plan(o: UsersOptions): string {
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

/**
 * What users.add and users.firstboot both hand their script beside the plan: after refusing a
 * user or group listed twice (`rule` names the rule in the error), each user's SSH keys as a
 * file `keys-INDEX` (the plan names it), one key per line.
 */
export function keyFiles(rule: string, o: UsersOptions): Record<string, string> {
  for (const [names, what] of [[o.users.map((u) => u.name), 'user'], [o.groups.map((g) => g.name), 'group']] as const) {
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new Error(`${rule}: ${what} ${dup} is listed twice`);
  }
  return Object.fromEntries(o.users.flatMap((u, i) => (u.ssh_keys.length > 0 ? [[`keys-${i}`, u.ssh_keys.map((k) => `${k}\n`).join('')]] : [])));
}
