/**
 * The Debian mirror this machine already uses, read from its apt sources: what a lock resolves
 * against when the definition names no mirror, and what tests use instead of a host name
 * written into the repository.
 *
 *     hostDebianMirror()          → { archive: 'http://…/debian', security: 'http://…/debian-security' }
 *     hostDebianMirror('/mnt')    → the same, for another root's /etc/apt
 *     parseSourceFile(text, fmt)  → every entry of one file, disabled ones included (pure)
 *
 * Files are read in apt's order: `etc/apt/sources.list`, then `etc/apt/sources.list.d/*.list`
 * and `*.sources` sorted by name (other names, such as `foo.list.disabled`, are ignored, as apt
 * does). Both formats are understood:
 *
 * - deb822 (`*.sources`): paragraphs of `Types`, `URIs`, `Suites`, `Components`, `Signed-By`,
 *   `Enabled`, separated by blank lines; `#` lines are comments; field names are
 *   case-insensitive; values continue on indented lines (an inline `Signed-By` key block is kept
 *   as "inline", not as a path).
 * - one-line (`sources.list`, `*.list`): `deb [opt=value …] URI SUITE [COMPONENT…]`, `#` to the
 *   end of a line is a comment.
 *
 * Which entry is which: an entry is Debian's when its URI path ends in `/debian` or
 * `/debian-security`, or its Signed-By names a `debian-archive` keyring (snapshot URIs end in a
 * timestamp); of those, the first enabled `deb` entry with an http(s) URI whose suites end in
 * `-security` (or the old `SUITE/updates`) is the security archive, and the first other one the
 * main archive. Third-party sources (nodesource, a cloud SDK) are never picked.
 *
 * This module only reads files; it does not contact the mirror or check keys.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where Debian's packages come from: the base URIs, without a trailing slash, that `dists/` and
 * `pool/` are relative to: `{ archive: MIRROR + '/debian', security: MIRROR + '/debian-security' }`
 * for a mirror that serves both (as read from the host's apt sources).
 */
export interface DebianMirror {
  archive: string;
  security?: string;
}

/** One source entry, in either format (a deb822 paragraph may hold several types and URIs). */
export interface SourceEntry {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** A keyring path, `inline` for an embedded key block, or absent. */
  signedBy?: string;
  enabled: boolean;
  /** `FILE:LINE` of the entry's first line, for messages. */
  origin: string;
}

export type SourceFormat = 'deb822' | 'one-line';

/**
 * The host's Debian mirror, or undefined when no enabled http(s) Debian `deb` source is
 * configured (a missing /etc/apt is not an error).
 */
export async function hostDebianMirror(root = '/'): Promise<DebianMirror | undefined> {
  return pickDebianMirror(await readSourceEntries(root));
}

/** Every entry of every apt source file under ROOT, in apt's reading order. */
export async function readSourceEntries(root = '/'): Promise<SourceEntry[]> {
  const etc = join(root, 'etc/apt');
  const files: { path: string; format: SourceFormat }[] = [{ path: join(etc, 'sources.list'), format: 'one-line' }];
  let names: string[] = [];
  try {
    names = await readdir(join(etc, 'sources.list.d'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const n of names.sort()) {
    if (n.endsWith('.list')) files.push({ path: join(etc, 'sources.list.d', n), format: 'one-line' });
    else if (n.endsWith('.sources')) files.push({ path: join(etc, 'sources.list.d', n), format: 'deb822' });
  }
  const out: SourceEntry[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    out.push(...parseSourceFile(text, f.format, f.path));
  }
  return out;
}

/** The entries of one file. Pure; lines it cannot read are skipped, as apt would warn and go on. */
export function parseSourceFile(text: string, format: SourceFormat, name = '<sources>'): SourceEntry[] {
  return format === 'deb822' ? parseDeb822(text, name) : parseOneLine(text, name);
}

/** Picks the main and security archives out of entries in reading order (see the header). Pure. */
export function pickDebianMirror(entries: SourceEntry[]): DebianMirror | undefined {
  let archive: string | undefined;
  let security: string | undefined;
  for (const e of entries) {
    if (!e.enabled || !e.types.includes('deb')) continue;
    for (const raw of e.uris) {
      const uri = raw.replace(/\/+$/, '');
      if (!/^https?:\/\//i.test(uri)) continue;
      if (!isDebian(uri, e.signedBy)) continue;
      const isSecurity = e.suites.some((s) => /-security$|\/updates$/.test(s)) || /\/debian-security$/.test(uri);
      if (isSecurity) security ??= uri;
      else archive ??= uri;
    }
  }
  if (archive === undefined) return undefined;
  return security === undefined ? { archive } : { archive, security };
}

function isDebian(uri: string, signedBy: string | undefined): boolean {
  let path: string;
  try {
    path = new URL(uri).pathname.replace(/\/+$/, '');
  } catch {
    return false;
  }
  return /\/debian(-security)?$/.test(path) || (signedBy !== undefined && /debian-archive/.test(signedBy));
}

function parseDeb822(text: string, name: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  let fields = new Map<string, string>();
  let start = 0;
  let last: string | undefined;
  const flush = () => {
    if (fields.size > 0) {
      const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
      const signed = fields.get('signed-by')?.trim();
      const entry: SourceEntry = {
        types: words('types'),
        uris: words('uris'),
        suites: words('suites'),
        components: words('components'),
        enabled: !/^(no|false|0)$/i.test((fields.get('enabled') ?? 'yes').trim()),
        origin: `${name}:${start}`,
      };
      // A multi-line value is an embedded ASCII-armoured key, not a keyring path.
      if (signed) entry.signedBy = signed.includes('\n') ? 'inline' : signed;
      out.push(entry);
    }
    fields = new Map();
    last = undefined;
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*#/.test(line)) continue;
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (/^\s/.test(line)) {
      if (last !== undefined) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9-]+)\s*:(.*)$/.exec(line);
    if (!m) continue;
    if (fields.size === 0) start = i + 1;
    last = m[1]!.toLowerCase();
    fields.set(last, m[2]!.trim());
  }
  flush();
  return out;
}

function parseOneLine(text: string, name: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/#.*/, '').trim();
    if (!line) continue;
    const tm = /^(\S+)\s+(.*)$/.exec(line);
    if (!tm) continue;
    const type = tm[1]!;
    line = tm[2]!;
    const options = new Map<string, string>();
    if (line.startsWith('[')) {
      const close = line.indexOf(']');
      if (close < 0) continue;
      for (const opt of line.slice(1, close).trim().split(/\s+/).filter(Boolean)) {
        const eq = opt.indexOf('=');
        if (eq > 0) options.set(opt.slice(0, eq).replace(/[+-]$/, '').toLowerCase(), opt.slice(eq + 1));
      }
      line = line.slice(close + 1).trim();
    }
    const [uri, suite, ...components] = line.split(/\s+/);
    if (!uri || !suite) continue;
    const entry: SourceEntry = { types: [type], uris: [uri], suites: [suite], components, enabled: true, origin: `${name}:${i + 1}` };
    const signed = options.get('signed-by');
    if (signed) entry.signedBy = signed;
    out.push(entry);
  }
  return out;
}
