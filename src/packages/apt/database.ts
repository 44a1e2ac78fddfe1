/**
 * The apt format's package-database reader (packages/input.ts, `PackageDatabase`): what an
 * SBOM says of a Debian tree, read from the tree's own files, never by running dpkg.
 *
 * - `var/lib/dpkg/status`: every package whose status is `install ok installed` (what
 *   `dpkg-query -W -f '${db:Status-Status}'` calls `installed`), with its version,
 *   architecture and `Maintainer` (the SPDX supplier, as an Organization: Debian maintainers
 *   are often teams).
 * - `usr/share/doc/NAME/copyright`, only where it is machine-readable (DEP-5, a `Format:` line
 *   naming copyright-format): the `License:` short names of its paragraphs, mapped to SPDX
 *   identifiers where Debian's name has one (`GPL-2+` → `GPL-2.0-or-later`, `Expat` → `MIT`),
 *   else a `LicenseRef-` of Debian's name; the package's declared license is their conjunction.
 *   A copyright file in free form declares nothing (NOASSERTION): guessing from prose is not
 *   "where the package says".
 * - `etc/os-release` (else `usr/lib/os-release`): the purl's namespace and `distro` (`ID`,
 *   `VERSION_ID`).
 * - The lock: each package's `.deb` sha256 and file name, matched by name, version and
 *   architecture (a package that the lock does not name gets no checksum).
 */
import { basename } from 'node:path';
import type { InstalledPackage, PackageDatabase } from '../input.js';
import type { LockedPackage } from './lock.js';

const STATUS = 'var/lib/dpkg/status';
const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];
/** Debian policy's package names: what may become a path under usr/share/doc. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/** One deb822 paragraph: field name (as written) → value (continuation lines joined with \n). */
export type Paragraph = Map<string, string>;

/** Paragraphs of a deb822 text (dpkg status, Packages, DEP-5 copyright); field names are case-insensitive, kept lowercased. */
export function paragraphs(text: string): Paragraph[] {
  const out: Paragraph[] = [];
  let cur: Paragraph | undefined;
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur) out.push(cur);
      cur = undefined;
      last = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && cur && last !== undefined) {
      cur.set(last, `${cur.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    cur ??= new Map();
    last = line.slice(0, i).trim().toLowerCase();
    cur.set(last, line.slice(i + 1).trim());
  }
  if (cur) out.push(cur);
  return out;
}

interface StatusEntry {
  name: string;
  version: string;
  architecture: string;
  maintainer?: string;
}

/** The installed packages of a dpkg status file, sorted by name then architecture. */
export function installedOf(status: string): StatusEntry[] {
  const out: StatusEntry[] = [];
  for (const p of paragraphs(status)) {
    const name = p.get('package');
    const words = (p.get('status') ?? '').split(/\s+/);
    if (!name || words[2] !== 'installed') continue;
    const maintainer = p.get('maintainer');
    out.push({ name, version: p.get('version') ?? '', architecture: p.get('architecture') ?? '', ...(maintainer ? { maintainer } : {}) });
  }
  return out.sort((a, b) => cmp(a.name, b.name) || cmp(a.architecture, b.architecture));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `Name <email>` → `Organization: Name (email)`: SPDX's supplier form. */
export function supplierOf(maintainer: string): string {
  const m = /^(.*?)\s*<([^>]*)>\s*$/.exec(maintainer.replace(/\s+/g, ' ').trim());
  return m ? `Organization: ${m[1] || m[2]} (${m[2]})` : `Organization: ${maintainer.replace(/\s+/g, ' ').trim()}`;
}

/**
 * Debian's short license names (DEP-5 §7.1 and common use) that have an SPDX identifier. Keys
 * are lowercased; a trailing `+` means "or later" and is handled by `spdxOf`.
 */
const SPDX_IDS: Record<string, string> = {
  'apache-2.0': 'Apache-2.0',
  'apache-1.1': 'Apache-1.1',
  artistic: 'Artistic-1.0',
  'artistic-1.0': 'Artistic-1.0',
  'artistic-2.0': 'Artistic-2.0',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  'bsl-1.0': 'BSL-1.0',
  'cc0-1.0': 'CC0-1.0',
  'cc-by-3.0': 'CC-BY-3.0',
  'cc-by-4.0': 'CC-BY-4.0',
  'cc-by-sa-3.0': 'CC-BY-SA-3.0',
  'cc-by-sa-4.0': 'CC-BY-SA-4.0',
  curl: 'curl',
  expat: 'MIT',
  mit: 'MIT',
  fsfap: 'FSFAP',
  fsful: 'FSFUL',
  fsfullr: 'FSFULLR',
  ftl: 'FTL',
  isc: 'ISC',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  'ofl-1.1': 'OFL-1.1',
  'openldap-2.8': 'OLDAP-2.8',
  openssl: 'OpenSSL',
  'psf-2': 'PSF-2.0',
  'python-2.0': 'Python-2.0',
  sgi: 'SGI-B-2.0',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
  x11: 'X11',
  zlib: 'Zlib',
  'zpl-2.1': 'ZPL-2.1',
  'wtfpl': 'WTFPL',
  'lppl-1.3c': 'LPPL-1.3c',
  'oldap-2.8': 'OLDAP-2.8',
  'bsd-4-clause-uc': 'BSD-4-Clause-UC',
  'mit-cmu': 'MIT-CMU',
  beerware: 'Beerware',
  'ijg': 'IJG',
  'libpng': 'Libpng',
  'ncsa': 'NCSA',
  'unicode-3.0': 'Unicode-3.0',
  'w3c': 'W3C',
};

/** Debian's `NAME with X exception` → SPDX's exception identifier for X (by the license's major version where it matters). */
const EXCEPTIONS: Record<string, (base: string) => string | undefined> = {
  autoconf: (b) => (b.startsWith('GPL-3') ? 'Autoconf-exception-3.0' : b.startsWith('GPL-2') ? 'Autoconf-exception-2.0' : undefined),
  bison: (b) => (b.startsWith('GPL-') ? 'Bison-exception-2.2' : undefined),
  libtool: (b) => (b.startsWith('GPL-') ? 'Libtool-exception' : undefined),
  classpath: (b) => (b.startsWith('GPL-2') ? 'Classpath-exception-2.0' : undefined),
  gcc: (b) => (b.startsWith('GPL-3') ? 'GCC-exception-3.1' : undefined),
  'linux-syscall-note': (b) => (b.startsWith('GPL-2') ? 'Linux-syscall-note' : undefined),
  font: (b) => (b.startsWith('GPL-') ? 'Font-exception-2.0' : undefined),
};

/** The GNU families, whose `-only`/`-or-later` forms SPDX spells out. */
const GNU = /^(a?gpl|lgpl|gfdl)-?v?(\d(?:\.\d)?)(?:\.0)?(\+)?$/;
const GNU_VERSIONS: Record<string, string[]> = {
  gpl: ['1', '2', '3'],
  agpl: ['3'],
  lgpl: ['2', '2.1', '3'],
  gfdl: ['1.1', '1.2', '1.3'],
};

/** An SPDX identifier for one Debian short name, or undefined when SPDX lists none. */
export function spdxOf(name: string): string | undefined {
  const n = name.toLowerCase();
  const w = /^(\S+)\s+with\s+(\S+)\s+exception$/.exec(n);
  if (w) {
    const base = spdxOf(w[1]!);
    const exception = base && EXCEPTIONS[w[2]!]?.(base);
    return base && exception ? `${base} WITH ${exception}` : undefined;
  }
  const g = GNU.exec(n);
  if (g) {
    const [, family, v, plus] = g as unknown as [string, string, string, string | undefined];
    if (!GNU_VERSIONS[family]!.includes(v)) return undefined;
    const id = `${family.toUpperCase()}-${v.includes('.') ? v : `${v}.0`}`;
    return `${id}-${plus ? 'or-later' : 'only'}`;
  }
  if (n.endsWith('+')) return undefined;
  return SPDX_IDS[n];
}

/** `LicenseRef-` + Debian's name, in SPDX's idstring alphabet. */
export function licenseRefOf(name: string): string {
  return `LicenseRef-${name.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'unnamed'}`;
}

/**
 * One DEP-5 `License:` short-name line as an SPDX expression: names joined by `or`/`and`, a
 * comma closing a group (`A or B, and C` is `(A OR B) AND C`), `NAME with X exception` one
 * name. Each name an SPDX id or a LicenseRef (collected in REFS: id → Debian's name).
 */
export function expressionOf(line: string, refs: Map<string, string>): string | undefined {
  const groups = line.split(',').map((g) => g.trim()).filter(Boolean);
  const parts: string[] = [];
  for (const [gi, group] of groups.entries()) {
    const words = group.split(/\s+/);
    let joiner = '';
    if (gi > 0 && /^(and|or)$/i.test(words[0]!)) joiner = words.shift()!.toUpperCase();
    const terms: string[] = [];
    let name: string[] = [];
    const flush = (): void => {
      if (!name.length) return;
      const debian = name.join(' ');
      const id = spdxOf(debian);
      if (id) terms.push(id);
      else {
        const ref = licenseRefOf(debian);
        refs.set(ref, debian);
        terms.push(ref);
      }
      name = [];
    };
    let inWith = false;
    for (const w of words) {
      if (inWith) {
        name.push(w);
        if (/exception$/i.test(w)) inWith = false;
      } else if (/^with$/i.test(w) && name.length) {
        name.push(w);
        inWith = true;
      } else if (/^(and|or)$/i.test(w) && name.length) {
        flush();
        terms.push(w.toUpperCase());
      } else name.push(w);
      // Prose where a short name belongs (a malformed file): no declaration from it.
      if (name.length > 6) return undefined;
    }
    flush();
    if (!terms.length || /^(AND|OR)$/.test(terms.at(-1)!)) return undefined;
    const expr = terms.join(' ');
    const wrapped = groups.length > 1 && terms.length > 1 ? `(${expr})` : expr;
    parts.push(...(joiner && parts.length ? [joiner, wrapped] : [wrapped]));
  }
  return parts.length ? parts.join(' ') : undefined;
}

/**
 * The declared license of a copyright file, when it is machine-readable: the distinct
 * `License:` expressions of its paragraphs (header and `Files:` ones, in order), joined by AND.
 */
export function licenseOf(copyright: string, refs: Map<string, string>): string | undefined {
  const ps = paragraphs(copyright);
  if (!/copyright-format/i.test(ps[0]?.get('format') ?? '')) return undefined;
  const exprs: string[] = [];
  for (const [i, p] of ps.entries()) {
    if (i > 0 && !p.has('files')) continue; // a stand-alone License paragraph: a text, not a declaration
    const first = (p.get('license') ?? '').split('\n')[0]!.trim();
    if (!first) continue;
    const local = new Map<string, string>();
    const e = expressionOf(first, local);
    if (!e) continue;
    for (const [k, v] of local) refs.set(k, v);
    if (!exprs.includes(e)) exprs.push(e);
  }
  if (!exprs.length) return undefined;
  return exprs.length === 1 ? exprs[0] : exprs.map((e) => (/ (OR|AND) /.test(e) ? `(${e})` : e)).join(' AND ');
}

/** `ID` and `VERSION_ID` of an os-release text. */
export function osRelease(text: string | undefined): { id: string; versionId?: string } {
  const get = (k: string) => {
    const m = new RegExp(`^${k}=(.*)$`, 'm').exec(text ?? '');
    return m ? m[1]!.trim().replace(/^(["'])(.*)\1$/, '$2') : undefined;
  };
  const id = get('ID');
  const versionId = get('VERSION_ID');
  return { id: id && /^[a-z0-9._-]+$/.test(id) ? id : 'debian', ...(versionId && /^[A-Za-z0-9._-]+$/.test(versionId) ? { versionId } : {}) };
}

/** The purl of a Debian package (purl's deb type: the version percent-encoded, `:` of an epoch included). */
export function purlOf(name: string, version: string, arch: string, os: { id: string; versionId?: string }): string {
  const q = [`arch=${encodeURIComponent(arch)}`];
  if (os.versionId) q.push(`distro=${os.id}-${os.versionId}`);
  return `pkg:deb/${os.id}/${encodeURIComponent(name)}@${encodeURIComponent(version)}?${q.join('&')}`;
}

const copyrightOf = (name: string) => `usr/share/doc/${name}/copyright`;

export const database: PackageDatabase = {
  marker: STATUS,

  want(files) {
    const first = [STATUS, ...OS_RELEASE];
    const status = files.get(STATUS);
    if (status === undefined) return first;
    const names = [...new Set(installedOf(status).map((p) => p.name))].filter((n) => PACKAGE_NAME.test(n));
    return [...first, ...names.map(copyrightOf)];
  },

  read(files, entries) {
    const status = files.get(STATUS);
    if (status === undefined) return { ok: false, error: `${STATUS} is not in the tree` };
    const os = osRelease(OS_RELEASE.map((p) => files.get(p)).find((t) => t !== undefined));
    const locked = new Map<string, LockedPackage>();
    for (const e of entries as LockedPackage[]) locked.set(`${e.name} ${e.version} ${e.architecture}`, e);
    const out: InstalledPackage[] = [];
    for (const p of installedOf(status)) {
      const refs = new Map<string, string>();
      const copyright = PACKAGE_NAME.test(p.name) ? files.get(copyrightOf(p.name)) : undefined;
      const license = copyright === undefined ? undefined : licenseOf(copyright, refs);
      const deb = locked.get(`${p.name} ${p.version} ${p.architecture}`);
      out.push({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        ...(p.maintainer ? { supplier: supplierOf(p.maintainer) } : {}),
        ...(license ? { license } : {}),
        ...(refs.size ? { licenseRefs: [...refs].map(([id, name]) => ({ id, name, text: refText(name) })) } : {}),
        ...(deb ? { sha256: deb.sha256, fileName: basename(deb.path) } : {}),
        purl: purlOf(p.name, p.version, p.architecture, os),
      });
    }
    return { ok: true, value: out };
  },
};

/** The extracted text of a LicenseRef: Debian names a license SPDX has no identifier for. */
function refText(name: string): string {
  return `The license Debian's machine-readable copyright files call "${name}" (SPDX lists no identifier for it); its text is in the copyright file of each package that declares it.`;
}
