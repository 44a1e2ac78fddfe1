/**
 * composer's path policies (osbuild/images `pkg/customizations/policies`, re-stated here): which
 * paths a blueprint may create files and directories at, and where it may mount a filesystem.
 * A policy maps path prefixes to "allowed", "denied" or "exact only"; the longest prefix that
 * matches decides. Paths must be absolute and canonical (no `//`, `.`, `..`, trailing `/`).
 */

export type Rule = 'allow' | 'deny' | 'exact';
export type Policy = Readonly<Record<string, Rule>>;

/** Custom files: nothing under /usr but /usr/local, nothing that the build itself writes. */
export const FILES_POLICY: Policy = {
  '/': 'allow',
  '/bin': 'deny',
  '/boot': 'deny',
  '/dev': 'deny',
  '/efi': 'deny',
  '/etc/fstab': 'deny',
  '/etc/group': 'deny',
  '/etc/passwd': 'deny',
  '/etc/shadow': 'deny',
  '/lib': 'deny',
  '/lib64': 'deny',
  '/lost+found': 'deny',
  '/proc': 'deny',
  '/run': 'deny',
  '/sbin': 'deny',
  '/sys': 'deny',
  '/sysroot': 'deny',
  '/tmp': 'deny',
  '/usr': 'deny',
  '/usr/local': 'allow',
  '/var/run': 'deny',
  '/var/tmp': 'deny',
};

/** The files FILES_POLICY denies that a directory cannot be. */
const ACCOUNT_FILES = ['/etc/fstab', '/etc/group', '/etc/passwd', '/etc/shadow'];

/** Custom directories: as files, except the account files (a directory cannot be one). */
export const DIRECTORIES_POLICY: Policy = Object.fromEntries(
  Object.entries(FILES_POLICY).filter(([path]) => !ACCOUNT_FILES.includes(path)),
);

/**
 * Mountpoints of `filesystem`: /etc must be on the root filesystem, /usr only as a whole (the
 * initramfs mounts nothing below it), API filesystems and merged-/usr links are refused, and
 * /boot/efi is the image definition's, not the blueprint's.
 */
export const MOUNTPOINT_POLICY: Policy = {
  '/': 'allow',
  '/etc': 'deny',
  '/usr': 'exact',
  '/sys': 'deny',
  '/proc': 'deny',
  '/dev': 'deny',
  '/run': 'deny',
  '/bin': 'deny',
  '/sbin': 'deny',
  '/lib': 'deny',
  '/lib64': 'deny',
  '/lost+found': 'deny',
  '/sysroot': 'deny',
  '/var/run': 'deny',
  '/var/lock': 'deny',
  '/boot/efi': 'deny',
};

export type PathCheck =
  | { ok: true }
  | { ok: false; why: 'relative' }
  | { ok: false; why: 'not-canonical'; canonical: string }
  | { ok: false; why: 'denied'; by: string; rule: Rule };

/** `/a//b/./c/` → `/a/b/c`; `..` resolved (never above `/`). */
export function canonicalPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/** Check `path` against `policy`. */
export function checkPath(policy: Policy, path: string): PathCheck {
  if (!path.startsWith('/')) return { ok: false, why: 'relative' };
  const canonical = canonicalPath(path);
  if (canonical !== path) return { ok: false, why: 'not-canonical', canonical };
  let best = '/';
  for (const prefix of Object.keys(policy)) {
    if ((path === prefix || path.startsWith(prefix === '/' ? '/' : `${prefix}/`)) && prefix.length > best.length) best = prefix;
  }
  const rule = policy[best] ?? 'allow';
  if (rule === 'deny' || (rule === 'exact' && path !== best)) return { ok: false, why: 'denied', by: best, rule };
  return { ok: true };
}

/** The prefixes a policy allows under a denied one (`/usr` → `/usr/local`), for hints. */
export function allowedUnder(policy: Policy, prefix: string): string[] {
  return Object.entries(policy)
    .filter(([p, r]) => r === 'allow' && p !== prefix && p.startsWith(`${prefix}/`))
    .map(([p]) => p);
}
