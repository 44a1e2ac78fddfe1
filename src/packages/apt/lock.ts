/**
 * Lock: Debian package names resolved to exact versions, archive paths and sha256, by apt
 * itself, and the `imgmake.lock` file that holds them.
 *
 *     resolvePackages(req, { sandbox, workDir, logFile })  → LockedPackage[] (sorted by name)
 *     lockFileText(packages, lockRequestOf(req))           → the file's text (stable, diffable)
 *     parseLockFile(text)                                  → Result<LockFile, LockFileError>
 *
 * How a lock is solved (docs/research/debian-rootfs.md §1): one sandbox with a host buildroot
 * and the network, whose tree is WORKDIR holding a private apt state (its own apt.conf,
 * sources.list, lists and an EMPTY dpkg status; the host's /etc/apt and /var/lib/apt are never
 * read). Inside, `apt-get update` checks the InRelease signatures against the Debian archive
 * keyring (this is where trust is established), then from the empty status:
 *
 *     apt-get -s install SELECTOR [apt] PACKAGES…        → Inst NAME (VERSION … [ARCH])
 *     apt-get --print-uris -o Acquire::ForceHash=SHA256 → 'URL' FILE SIZE SHA256:HEX
 *     apt-cache show NAME=VERSION…                        → the mirror's Priority and Section
 *
 * SELECTOR is what mmdebstrap's variant installs: `?narrow(SUITE ∧ ARCH, ?essential)` for
 * `essential`, plus `?priority(required)` (and `important`, `standard`) for the larger variants,
 * which also get `apt`; `custom` is the packages alone. Traps this keeps (each was met once):
 * - `--print-uris` prints MD5Sum by default; `Acquire::ForceHash=SHA256` makes it SHA256.
 * - apt treats itself as Essential; `pkgCacheGen::ForceEssential ","` makes `?essential` mean
 *   the Packages files' `Essential: yes`, as mmdebstrap does (else 118 packages instead of 106).
 * - the mirror's Priority is not the .deb's (archive overrides differ for ~14 of 191), and the
 *   install selects by Priority: so the lock records the mirror's, from `apt-cache show`.
 * - an `Inst` line may end in `[amd64]) []`: the arch is the bracket right after the version.
 *
 * Sources: the archive gives SUITE and SUITE-updates, the security archive (when the mirror has
 * one) SUITE-security, all with `signed-by` the Debian archive keyring. A lock records, per
 * package, which of the two (`source`) and the Filename below it (`path`) — never a mirror URL,
 * so one lock fetches from any mirror or snapshot.
 *
 * Extra repositories (the stage's `repositories` option; a blueprint's `install_from`) join the
 * same solve: one line each, `signed-by` their own armoured keys (written into WORKDIR, so apt
 * checks their Release signature at update as it checks Debian's) or `trusted=yes` when the
 * stage says so. A package apt picks from one records that repository's id as its `source` and
 * its Filename below the repository's URI as `path`; the lock request keeps each repository's
 * id, suite, components and the sha256 of each key (a new key locks again), never its URI. A
 * signature apt refuses is a SignatureFailed, naming the repository.
 *
 * WORKDIR may be reused between locks: apt's lists stay and are only revalidated.
 * This module does not download .debs (fetch.ts does) and does not decide when a lock is stale.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox } from '../../sandbox/run.js';
import { SANDBOX_TREE, type Bind, type SandboxSpec } from '../../sandbox/spec.js';
import { fail, ok, type Result } from '../../result.js';
import type { DebianMirror } from './sources.js';

export type DebianVariant = 'essential' | 'required' | 'important' | 'standard' | 'custom';
export type DebianArchitecture = 'amd64';
/**
 * Which base URI a package's `path` is relative to: the mirror's archive or security archive,
 * or an extra repository's, by its id.
 */
export type PackageSource = string;
/** The mirror's own sources. */
export type MirrorSource = 'archive' | 'security';

/**
 * An extra repository the solve reads besides the mirror (the stage's `repositories` option).
 * Example: `{ id: 'extra', uri: 'http://127.0.0.1:8080/repo', suite: 'stable', components:
 * ['main'], keys: ['-----BEGIN PGP PUBLIC KEY BLOCK-----…'] }`; a flat repository has suite
 * `./` and no components.
 */
export interface ExtraRepository {
  /** Names it in the lock (each package's `source`); never `archive` or `security`. */
  id: string;
  /** The base URI `dists/` (or a flat repository's suite directory) and the Filenames are below. */
  uri: string;
  suite: string;
  components?: string[];
  /** ASCII-armoured public keys; its Release file must be signed by one of them. */
  keys?: string[];
  /** No signature check (the blueprint's `gpgcheck = false`); only without keys. */
  trusted?: boolean;
}

/** What a lock keeps of an extra repository: not its URI, the sha256 of each key. */
export interface LockedRepository {
  id: string;
  suite: string;
  components: string[];
  /** sha256 (hex) of each armoured key as written, trimmed, with LF line ends. */
  keys: string[];
  trusted?: true;
}

/** What to solve. `variant` defaults to `important` (mmdebstrap's default set). */
export interface LockRequest {
  mirror: DebianMirror;
  /** A codename: `bookworm`. */
  suite: string;
  /** `['main']`, `['main', 'contrib']`… */
  components: string[];
  architecture: DebianArchitecture;
  variant?: DebianVariant;
  /** Names, or `name=version`, installed on top of the variant's set. */
  packages: string[];
  /** Extra repositories to resolve from besides the mirror. */
  repositories?: ExtraRepository[];
}

/**
 * One resolved package. Example: `{ name: 'hello', version: '2.10-3', architecture: 'amd64',
 * priority: 'optional', section: 'devel', source: 'archive',
 * path: 'pool/main/h/hello/hello_2.10-3_amd64.deb', size: 52000, sha256: '…' }`.
 */
export interface LockedPackage {
  name: string;
  version: string;
  /** `amd64` or `all`. */
  architecture: string;
  /** The mirror's Priority (archive override), not the .deb's control field. */
  priority: string;
  section: string;
  source: PackageSource;
  /** The Packages `Filename`, relative to the source's base URI: `pool/main/…/x.deb`. */
  path: string;
  size: number;
  sha256: string;
}

export interface LockOptions {
  sandbox: Sandbox;
  /** Scratch directory for the private apt state (created if missing; may be reused). */
  workDir: string;
  /** apt's output is appended here. */
  logFile: string;
  signal?: AbortSignal;
  /** The keyring the mirror's InRelease must be signed with. */
  keyring?: string;
}

export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * Resolves REQ with apt inside the sandbox (network on) and returns the packages sorted by
 * name. Throws an Error naming the cause (apt's `E:` lines and the log path) when apt fails,
 * e.g. an unknown package or an unreachable mirror; throws on bad input before running.
 */
export async function resolvePackages(req: LockRequest, opts: LockOptions): Promise<LockedPackage[]> {
  const problems = checkRequest(req);
  if (problems.length) throw new Error(`cannot lock: ${problems.join('; ')}`);
  const w = opts.workDir;
  await mkdir(join(w, 'out'), { recursive: true });
  await writeFile(join(w, 'apt.conf'), aptConfig(SANDBOX_TREE, req.architecture));
  await mkdir(join(w, 'etc'), { recursive: true });
  await writeFile(join(w, 'etc', 'sources.list'), sourcesList(req, opts.keyring ?? DEBIAN_ARCHIVE_KEYRING));
  // The extra repositories' keys, written afresh: a key removed from the request is gone.
  await rm(join(w, 'etc', 'keys'), { recursive: true, force: true });
  await mkdir(join(w, 'etc', 'keys'), { recursive: true });
  for (const [path, text] of Object.entries(keyFiles(req.repositories ?? [], join(w, 'etc', 'keys')))) await writeFile(path, text, { mode: 0o644 });
  await writeFile(join(w, 'lock.sh'), LOCK_SCRIPT);

  const binds: Bind[] = [];
  // Name resolution and https trust for the downloader; keyrings for signed-by (already under
  // the host /usr, but named so a tree buildroot gets them too).
  for (const p of ['/etc/resolv.conf', '/etc/hosts', '/etc/ssl/certs', '/usr/share/keyrings']) {
    if (existsSync(p)) binds.push({ src: p, dest: p, writable: false });
  }
  const spec: SandboxSpec = {
    buildroot: { kind: 'host' },
    tree: { mount: { kind: 'dir', path: w }, writable: true },
    inputs: [],
    binds,
    network: true,
    argv: ['/bin/sh', `${SANDBOX_TREE}/lock.sh`, ...installArgs(req)],
    env: { APT_CONFIG: `${SANDBOX_TREE}/apt.conf`, LC_ALL: 'C.UTF-8' },
  };
  const r = await opts.sandbox.run(spec, { logFile: opts.logFile, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (r.cancelled) throw new Error('lock cancelled');
  if (r.exitCode !== 0) {
    const log = await readFile(opts.logFile, 'utf8').catch(() => '');
    const lines = log.split('\n').filter((l) => l.trim());
    // apt's update only warns when a mirror cannot be reached; what then fails is the install
    // ("unable to locate package"), which would read as the user's mistake. It is not.
    const unreachable = lines.filter((l) => UNREACHABLE.test(l));
    if (unreachable.length) {
      throw new MirrorUnreachable(`the mirror could not be reached while locking ${req.suite}:\n  ${[...new Set(unreachable.map((l) => l.trim()))].slice(-4).join('\n  ')}\n(full log: ${opts.logFile})`);
    }
    // A Release file its keys do not verify: which repository, and apt's words for why.
    const unsigned = lines.filter((l) => UNSIGNED.test(l));
    if (unsigned.length) {
      const names = [...(req.repositories ?? []).filter((x) => unsigned.some((l) => l.includes(`${x.uri.replace(/\/+$/, '')} ${x.suite}`))).map((x) => `repository "${x.id}" (${x.uri} ${x.suite})`)];
      const which = names.length ? names.join(', ') : `the Debian mirror (${req.mirror.archive})`;
      throw new SignatureFailed(`the signature of ${which} did not verify with the keys given:\n  ${[...new Set(unsigned.map((l) => l.trim()))].slice(-4).join('\n  ')}\n(full log: ${opts.logFile})`, names.length > 0);
    }
    const errors = lines.filter((l) => /^(E|Err):/.test(l));
    const shown = (errors.length ? errors : lines).slice(-8).join('\n  ');
    throw new Error(
      `apt could not resolve ${req.suite} (${req.variant ?? 'important'} + ${req.packages.join(' ') || 'nothing'}): exit ${r.exitCode ?? r.signal}\n  ${shown}\n(full log: ${opts.logFile})`,
    );
  }
  const [sim, uris, show] = await Promise.all(['simulate.txt', 'uris.txt', 'show.txt'].map((f) => readFile(join(w, 'out', f), 'utf8')));
  return joinAptOutput({ simulate: sim!, uris: uris!, show: show! }, req.mirror, req.repositories);
}

/** The request fields a lock keeps: everything but the mirror, canonical (packages sorted). */
export interface LockRequestMeta {
  suite: string;
  components: string[];
  architecture: DebianArchitecture;
  variant: DebianVariant;
  packages: string[];
  /** The mirror's sources the solver saw: `['archive']` or `['archive', 'security']`. */
  sources: MirrorSource[];
  /** The extra repositories it saw, in the stage's order; absent when none (locks before them stay equal). */
  repositories?: LockedRepository[];
}

export function lockRequestOf(req: LockRequest): LockRequestMeta {
  const repos = req.repositories ?? [];
  return {
    suite: req.suite,
    components: [...req.components],
    architecture: req.architecture,
    variant: req.variant ?? 'important',
    packages: [...new Set(req.packages)].sort(),
    sources: req.mirror.security ? ['archive', 'security'] : ['archive'],
    ...(repos.length ? { repositories: repos.map(lockedRepository) } : {}),
  };
}

/** What the lock keeps of an extra repository (pure). */
export function lockedRepository(r: ExtraRepository): LockedRepository {
  return {
    id: r.id,
    suite: r.suite,
    components: [...(r.components ?? [])],
    keys: (r.keys ?? []).map((k) => createHash('sha256').update(normalKey(k)).digest('hex')),
    ...(r.trusted ? { trusted: true as const } : {}),
  };
}

/** An armoured key as written into the keyring file: trimmed, LF line ends, one final newline. */
export const normalKey = (k: string): string => `${k.replace(/\r\n?/g, '\n').trim()}\n`;

/** The keyring files of the extra repositories under DIR (path → text): DIR/ID-N.asc. Pure. */
export function keyFiles(repos: readonly ExtraRepository[], dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of repos) (r.keys ?? []).forEach((k, i) => (out[keyPath(dir, r.id, i)] = normalKey(k)));
  return out;
}

const keyPath = (dir: string, id: string, i: number): string => `${dir}/${id.replace(/[^A-Za-z0-9_.-]/g, '_')}-${i + 1}.asc`;

export const LOCK_FILE_VERSION = 1;

export interface LockFile {
  version: typeof LOCK_FILE_VERSION;
  request: LockRequestMeta;
  packages: LockedPackage[];
}

export interface LockFileError {
  reason: 'lock-syntax' | 'lock-version' | 'lock-invalid';
  /** Says where: `packages[3] (hello): sha256: expected 64 lowercase hex digits, got "x"`. */
  message: string;
}

/**
 * The text of `imgmake.lock`: JSON with a fixed key order, one package per line (a version bump
 * is a one-line diff), packages sorted by name, a final newline. Pure.
 *
 *     {
 *       "version": 1,
 *       "request": {"suite":"bookworm","components":["main"],"architecture":"amd64","variant":"essential","packages":["hello"],"sources":["archive","security"]},
 *       "packages": [
 *         {"name":"base-files","version":"12.4+deb12u11","architecture":"amd64","priority":"required","section":"admin","source":"archive","path":"pool/main/b/base-files/base-files_12.4+deb12u11_amd64.deb","size":70000,"sha256":"…"},
 *         …
 *       ]
 *     }
 */
export function lockFileText(packages: LockedPackage[], meta: LockRequestMeta): string {
  const j = lockJson(packages, meta);
  const lines = j.packages.map((p) => JSON.stringify(p));
  const body = lines.length ? `[\n    ${lines.join(',\n    ')}\n  ]` : '[]';
  return `{\n  "version": ${LOCK_FILE_VERSION},\n  "request": ${JSON.stringify(j.request)},\n  "packages": ${body}\n}\n`;
}

/** A lock's request and packages as JSON objects, in the file's key order, packages sorted. Pure. */
export function lockJson(packages: readonly LockedPackage[], meta: LockRequestMeta): { request: object; packages: object[] } {
  const request = {
    suite: meta.suite,
    components: meta.components,
    architecture: meta.architecture,
    variant: meta.variant,
    packages: meta.packages,
    sources: meta.sources,
    ...(meta.repositories ? { repositories: meta.repositories.map((r) => ({ id: r.id, suite: r.suite, components: r.components, keys: r.keys, ...(r.trusted ? { trusted: true } : {}) })) } : {}),
  };
  const rows = sortPackages([...packages]).map((p) => ({
    name: p.name,
    version: p.version,
    architecture: p.architecture,
    priority: p.priority,
    section: p.section,
    source: p.source,
    path: p.path,
    size: p.size,
    sha256: p.sha256,
  }));
  return { request, packages: rows };
}

/** Reads `imgmake.lock` text; every problem is reported with where it is. Pure. */
export function parseLockFile(text: string): Result<LockFile, LockFileError> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return fail({ reason: 'lock-syntax', message: `imgmake.lock is not valid JSON: ${(e as Error).message}` });
  }
  const bad = (message: string) => fail<LockFileError>({ reason: 'lock-invalid', message: `imgmake.lock: ${message}` });
  if (!isObject(v)) return bad('expected a JSON object at the top');
  if (v.version !== LOCK_FILE_VERSION) {
    if (typeof v.version === 'number' && v.version > LOCK_FILE_VERSION) {
      return fail({ reason: 'lock-version', message: `imgmake.lock has version ${v.version}; this imgmake reads version ${LOCK_FILE_VERSION}: upgrade imgmake or lock again` });
    }
    return fail({ reason: 'lock-version', message: `imgmake.lock: "version" must be ${LOCK_FILE_VERSION}, got ${JSON.stringify(v.version)}` });
  }
  const extra = unknownKeys(v, ['version', 'request', 'packages']);
  if (extra) return bad(`unknown field ${extra}`);
  const entry = parseLockEntry(v.request, v.packages);
  if (!entry.ok) return bad(entry.error);
  return ok({ version: LOCK_FILE_VERSION, ...entry.value });
}

/**
 * One lock's `request` and `packages` as read from JSON (imgmake.lock holds several): the
 * message says where (`packages[3] (hello): sha256: …`). Pure.
 */
export function parseLockEntry(r: unknown, list: unknown): Result<{ request: LockRequestMeta; packages: LockedPackage[] }, string> {
  const bad = (message: string) => fail(message);
  if (!isObject(r)) return bad('"request" must be an object');
  const rExtra = unknownKeys(r, ['suite', 'components', 'architecture', 'variant', 'packages', 'sources', 'repositories']);
  if (rExtra) return bad(`request: unknown field ${rExtra}`);
  if (typeof r.suite !== 'string' || !SUITE.test(r.suite)) return bad(`request.suite: expected a suite name, got ${JSON.stringify(r.suite)}`);
  if (!isStrings(r.components) || r.components.length === 0 || !r.components.every((c) => COMPONENT.test(c))) {
    return bad(`request.components: expected a non-empty list of component names, got ${JSON.stringify(r.components)}`);
  }
  if (r.architecture !== 'amd64') return bad(`request.architecture: expected "amd64", got ${JSON.stringify(r.architecture)}`);
  if (typeof r.variant !== 'string' || !VARIANTS.includes(r.variant as DebianVariant)) {
    return bad(`request.variant: expected one of ${VARIANTS.join(', ')}, got ${JSON.stringify(r.variant)}`);
  }
  if (!isStrings(r.packages) || !r.packages.every((p) => PACKAGE_ARG.test(p))) {
    return bad(`request.packages: expected a list of package names, got ${JSON.stringify(r.packages)}`);
  }
  if (!isStrings(r.sources) || !r.sources.every((s) => s === 'archive' || s === 'security') || !r.sources.includes('archive')) {
    return bad(`request.sources: expected ["archive"] or ["archive", "security"], got ${JSON.stringify(r.sources)}`);
  }
  const repos = parseRepositories(r.repositories);
  if (!repos.ok) return bad(repos.error);
  const request: LockRequestMeta = {
    suite: r.suite,
    components: r.components,
    architecture: 'amd64',
    variant: r.variant as DebianVariant,
    packages: r.packages,
    sources: r.sources as MirrorSource[],
    ...(repos.value ? { repositories: repos.value } : {}),
  };

  if (!Array.isArray(list)) return bad('"packages" must be a list');
  const packages: LockedPackage[] = [];
  for (const [i, p] of list.entries()) {
    const where = `packages[${i}]${isObject(p) && typeof p.name === 'string' ? ` (${p.name})` : ''}`;
    if (!isObject(p)) return bad(`${where}: expected an object`);
    const e = checkPackage(p, [...request.sources, ...(request.repositories ?? []).map((x) => x.id)]);
    if (e) return bad(`${where}: ${e}`);
    const prev = packages[packages.length - 1];
    if (prev && prev.name >= (p.name as string)) {
      return bad(`${where}: packages must be sorted by name without duplicates (after ${prev.name})`);
    }
    packages.push(p as unknown as LockedPackage);
  }
  return ok({ request, packages });
}

// ---------------------------------------------------------------------------------------------
// apt's input and output (pure, exported for tests)

/**
 * The private apt configuration, with every directory under DIR (the path apt sees). The host's
 * configuration is never read: APT_CONFIG names this file, and Dir::Etc::Parts is private.
 */
export function aptConfig(dir: string, arch: DebianArchitecture): string {
  return `Dir::Etc "${dir}/etc/";
Dir::Etc::SourceList "${dir}/etc/sources.list";
Dir::Etc::SourceParts "${dir}/etc/sources.list.d/";
Dir::Etc::Parts "${dir}/etc/apt.conf.d/";
Dir::Etc::Preferences "${dir}/etc/preferences";
Dir::Etc::PreferencesParts "${dir}/etc/preferences.d/";
Dir::Etc::Trusted "${dir}/etc/trusted.gpg";
Dir::Etc::TrustedParts "${dir}/etc/trusted.gpg.d/";
Dir::State "${dir}/state/";
Dir::State::status "${dir}/state/status";
Dir::Cache "${dir}/cache/";
Dir::Log "${dir}/log/";
APT::Architecture "${arch}";
APT::Architectures { "${arch}"; };
Acquire::Languages "none";
Acquire::Retries "3";
APT::Update::Error-Mode "any";
APT::Install-Recommends "false";
APT::Get::Show-Versions "true";
// apt treats itself as Essential (the default is "apt"); mmdebstrap reads Essential: yes from
// the Packages files instead, so the essential variant must not pull apt in.
pkgCacheGen::ForceEssential ",";
`;
}

/**
 * One-line sources for the request's mirror, signed-by KEYRING, then one line per extra
 * repository, signed-by its own key files (under KEYDIR, as apt in the sandbox sees them:
 * keyFiles) or trusted=yes.
 */
export function sourcesList(req: LockRequest, keyring: string, keyDir = `${SANDBOX_TREE}/etc/keys`): string {
  const c = req.components.join(' ');
  const opt = `[signed-by=${keyring}]`;
  const lines = [`deb ${opt} ${req.mirror.archive} ${req.suite} ${c}`, `deb ${opt} ${req.mirror.archive} ${req.suite}-updates ${c}`];
  if (req.mirror.security) lines.push(`deb ${opt} ${req.mirror.security} ${req.suite}-security ${c}`);
  for (const r of req.repositories ?? []) {
    const trust = r.trusted ? 'trusted=yes' : `signed-by=${(r.keys ?? []).map((_, i) => keyPath(keyDir, r.id, i)).join(',')}`;
    lines.push(`deb [${trust}] ${r.uri.replace(/\/+$/, '')} ${r.suite}${r.components?.length ? ` ${r.components.join(' ')}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/** The arguments after `apt-get install`: the variant's selector, `apt` when it belongs, the packages. */
export function installArgs(req: LockRequest): string[] {
  const variant = req.variant ?? 'important';
  const n = `?or(?archive(^${req.suite}$),?codename(^${req.suite}$)),?architecture(${req.architecture})`;
  const prio: Record<Exclude<DebianVariant, 'custom'>, string[]> = {
    essential: [],
    required: ['required'],
    important: ['required', 'important'],
    standard: ['required', 'important', 'standard'],
  };
  if (variant === 'custom') return [...req.packages];
  const terms = ['?essential', ...prio[variant].map((p) => `?priority(${p})`)];
  const sel = `?narrow(${n},${terms.length === 1 ? terms[0] : `?or(${terms.join(',')})`})`;
  return [sel, ...(variant === 'essential' ? [] : ['apt']), ...req.packages];
}

/** apt's words for a mirror it could not reach (its `Err:` lines' second line, and `W:` lines). */
const UNREACHABLE = /Could not connect to|Could not resolve|Temporary failure resolving|Connection failed|Connection timed out|Unable to connect to|Network is unreachable|No route to host/;

/** Locking failed because the mirror could not be reached: the run's failure, not the request's. */
export class MirrorUnreachable extends Error {}

/** apt's words for a Release file whose signature it refused (`W: GPG error`, `E: … is not signed`). */
const UNSIGNED = /NO_PUBKEY|BADSIG|EXPKEYSIG|REVKEYSIG|GPG error|is not signed|signatures were invalid|signatures couldn't be verified/;

/**
 * Locking failed because a Release file's signature did not verify with the keys given: the
 * run's failure (exit 1), since imgmake cannot tell whether the key given or the repository's
 * files are wrong. `extra`: it was an extra repository's (not the Debian mirror's).
 */
export class SignatureFailed extends Error {
  constructor(message: string, readonly extra: boolean) {
    super(message);
  }
}

/**
 * Runs inside the sandbox: update, simulate, print URIs, then `apt-cache show` for exactly what
 * the simulation installs. Output files in $W/out; the parsing happens outside, in TypeScript.
 */
const LOCK_SCRIPT = `set -eu
W=${SANDBOX_TREE}
mkdir -p $W/etc/apt.conf.d $W/etc/preferences.d $W/etc/trusted.gpg.d $W/etc/sources.list.d \\
  $W/state/lists/partial $W/cache/archives/partial $W/log $W/out
: > $W/state/status
rm -f $W/out/*
apt-get -q update
apt-get -qq -s install "$@" > $W/out/simulate.txt
apt-get -qq --print-uris -o Acquire::ForceHash=SHA256 install "$@" > $W/out/uris.txt
sed -n 's/^Inst \\([^ ]*\\) (\\([^ ]*\\) .*/\\1=\\2/p' $W/out/simulate.txt > $W/out/want.txt
if [ -s $W/out/want.txt ]; then xargs apt-cache show < $W/out/want.txt > $W/out/show.txt; else : > $W/out/show.txt; fi
echo "lock: $(wc -l < $W/out/want.txt) packages"
`;

export interface Installed {
  name: string;
  version: string;
  architecture: string;
}

/** `Inst NAME (VERSION SUITES [ARCH])` lines; the arch is the bracket right after the version. */
export function parseSimulate(text: string): Installed[] {
  const out: Installed[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('Inst ')) continue;
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) [^[]*\[([^\]]+)\]\)/.exec(line);
    if (!m) throw new Error(`Internal error: cannot read apt's simulation line ${JSON.stringify(line)}`);
    out.push({ name: m[1]!, version: m[2]!, architecture: m[3]! });
  }
  return out;
}

export interface PrintedUri {
  url: string;
  size: number;
  sha256: string;
}

/** `'URL' FILE SIZE SHA256:HEX` lines of `--print-uris` with ForceHash=SHA256. */
export function parsePrintUris(text: string): PrintedUri[] {
  const out: PrintedUri[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith("'")) continue;
    const m = /^'([^']+)' (\S+) (\d+) (\S+)$/.exec(line);
    if (!m) throw new Error(`Internal error: cannot read apt's URI line ${JSON.stringify(line)}`);
    const hash = /^SHA256:([0-9a-f]{64})$/.exec(m[4]!);
    if (!hash) throw new Error(`apt printed ${m[4]} for ${m[1]}, not a SHA256 (is Acquire::ForceHash=SHA256 honoured?)`);
    out.push({ url: m[1]!, size: Number(m[3]), sha256: hash[1]! });
  }
  return out;
}

/** Paragraphs of `apt-cache show` (RFC 822 style), as field maps with lower-case names. */
export function parseControlParagraphs(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur.size) out.push(cur);
      cur = new Map();
      last = undefined;
    } else if (/^\s/.test(line)) {
      if (last) cur.set(last, `${cur.get(last)}\n${line}`);
    } else {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      last = line.slice(0, i).toLowerCase();
      cur.set(last, line.slice(i + 1).trim());
    }
  }
  if (cur.size) out.push(cur);
  return out;
}

/**
 * Joins the three outputs into locked packages: versions and arch from the simulation, URL, size
 * and sha256 from --print-uris (matched by the package name in the file name), Priority and
 * Section from the `apt-cache show` record with that name, version and sha256.
 */
export function joinAptOutput(out: { simulate: string; uris: string; show: string }, mirror: DebianMirror, repositories: readonly ExtraRepository[] = []): LockedPackage[] {
  const inst = parseSimulate(out.simulate);
  const byName = new Map<string, PrintedUri>();
  for (const u of parsePrintUris(out.uris)) {
    const file = decodeURIComponent(u.url.slice(u.url.lastIndexOf('/') + 1));
    byName.set(file.split('_')[0]!, u);
  }
  const records = parseControlParagraphs(out.show);
  const bases: [PackageSource, string][] = [];
  if (mirror.security) bases.push(['security', `${mirror.security.replace(/\/+$/, '')}/`]);
  bases.push(['archive', `${mirror.archive.replace(/\/+$/, '')}/`]);
  for (const r of repositories) bases.push([r.id, `${r.uri.replace(/\/+$/, '')}/`]);
  // The longest base first: a repository below the mirror's URI is not the mirror.
  bases.sort((a, b) => b[1].length - a[1].length);

  const result: LockedPackage[] = inst.map((p) => {
    const u = byName.get(p.name);
    if (!u) throw new Error(`Internal error: apt would install ${p.name} ${p.version} but printed no URI for it`);
    const base = bases.find(([, b]) => u.url.startsWith(b));
    if (!base) throw new Error(`Internal error: apt chose ${u.url}, which is under no base URI of the mirror or the repositories`);
    const mine = records.filter((r) => r.get('package') === p.name && r.get('version') === p.version);
    const rec = mine.find((r) => r.get('sha256') === u.sha256) ?? mine[0];
    if (!rec) throw new Error(`Internal error: apt-cache show printed no record for ${p.name}=${p.version}`);
    return {
      name: p.name,
      version: p.version,
      architecture: p.architecture,
      priority: rec.get('priority') ?? 'optional',
      section: rec.get('section') ?? 'misc',
      source: base[0],
      path: decodeURIComponent(u.url.slice(base[1].length)),
      size: u.size,
      sha256: u.sha256,
    };
  });
  return sortPackages(result);
}

// ---------------------------------------------------------------------------------------------
// validation

const VARIANTS: DebianVariant[] = ['essential', 'required', 'important', 'standard', 'custom'];
const SUITE = /^[a-z][a-z0-9.-]*$/;
const COMPONENT = /^[a-z][a-z0-9-]*$/;
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** A package name, or `name=version` (a Debian version: epoch, upstream, revision). */
const PACKAGE_ARG = /^[a-z0-9][a-z0-9+.-]+(=[0-9A-Za-z.+~:-]+)?$/;
const SHA256 = /^[0-9a-f]{64}$/;

const REPO_ID = /^[A-Za-z0-9_.:-]+$/;
const HEX = /^[0-9a-f]{64}$/;

function parseRepositories(v: unknown): Result<LockedRepository[] | undefined, string> {
  if (v === undefined) return ok(undefined);
  if (!Array.isArray(v) || v.length === 0) return fail(`request.repositories: expected a non-empty list, got ${JSON.stringify(v)}`);
  const out: LockedRepository[] = [];
  for (const [i, r] of v.entries()) {
    const at = `request.repositories[${i}]`;
    if (!isObject(r)) return fail(`${at}: expected an object`);
    const extra = unknownKeys(r, ['id', 'suite', 'components', 'keys', 'trusted']);
    if (extra) return fail(`${at}: unknown field ${extra}`);
    if (typeof r.id !== 'string' || !REPO_ID.test(r.id) || r.id === 'archive' || r.id === 'security' || out.some((x) => x.id === r.id)) return fail(`${at}.id: expected a repository id of its own, got ${JSON.stringify(r.id)}`);
    if (typeof r.suite !== 'string' || !/^[^\s'"[\]]+$/.test(r.suite)) return fail(`${at}.suite: expected a suite, got ${JSON.stringify(r.suite)}`);
    if (!isStrings(r.components) || !r.components.every((c) => /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(c))) return fail(`${at}.components: expected a list of component names, got ${JSON.stringify(r.components)}`);
    if (!isStrings(r.keys) || !r.keys.every((k) => HEX.test(k))) return fail(`${at}.keys: expected a list of sha256 digests, got ${JSON.stringify(r.keys)}`);
    if (r.trusted !== undefined && r.trusted !== true) return fail(`${at}.trusted: expected true or nothing, got ${JSON.stringify(r.trusted)}`);
    if ((r.keys.length === 0) !== (r.trusted === true)) return fail(`${at}: expected keys, or trusted without keys`);
    out.push({ id: r.id, suite: r.suite, components: r.components, keys: r.keys, ...(r.trusted ? { trusted: true as const } : {}) });
  }
  return ok(out);
}

function checkRequest(req: LockRequest): string[] {
  const p: string[] = [];
  if (!SUITE.test(req.suite)) p.push(`suite ${JSON.stringify(req.suite)} is not a suite name`);
  if (req.components.length === 0) p.push('no components');
  for (const c of req.components) if (!COMPONENT.test(c)) p.push(`component ${JSON.stringify(c)} is not a component name`);
  if (req.architecture !== 'amd64') p.push(`architecture ${JSON.stringify(req.architecture)}: only amd64 is supported`);
  const variant = req.variant ?? 'important';
  if (!VARIANTS.includes(variant)) p.push(`variant ${JSON.stringify(variant)} is not one of ${VARIANTS.join(', ')}`);
  if (variant === 'custom' && req.packages.length === 0) p.push('the custom variant needs at least one package');
  for (const name of req.packages) if (!PACKAGE_ARG.test(name)) p.push(`${JSON.stringify(name)} is not a package name (or name=version)`);
  for (const [k, u] of Object.entries(req.mirror)) {
    if (u !== undefined && !/^https?:\/\/[^\s\]'"]+$/.test(u)) p.push(`mirror.${k} ${JSON.stringify(u)} is not an http(s) URL`);
  }
  for (const r of req.repositories ?? []) {
    if (!REPO_ID.test(r.id) || r.id === 'archive' || r.id === 'security') p.push(`repository id ${JSON.stringify(r.id)} is not one of its own`);
    if (!/^https?:\/\/[^\s\]'"[]+$/.test(r.uri)) p.push(`repository ${r.id}: ${JSON.stringify(r.uri)} is not an http(s) URL`);
    if (!/^[^\s'"[\]]+$/.test(r.suite)) p.push(`repository ${r.id}: suite ${JSON.stringify(r.suite)} is not a suite`);
    if (!r.trusted && !(r.keys ?? []).length) p.push(`repository ${r.id} has no keys and is not trusted`);
  }
  return p;
}

function checkPackage(p: Record<string, unknown>, sources: PackageSource[]): string | undefined {
  // The mirror's Filenames are under pool/; an extra repository's anywhere below its URI.
  const mirror = p.source === 'archive' || p.source === 'security';
  const extra = unknownKeys(p, ['name', 'version', 'architecture', 'priority', 'section', 'source', 'path', 'size', 'sha256']);
  if (extra) return `unknown field ${extra}`;
  const str = (k: string, re: RegExp, what: string) =>
    typeof p[k] === 'string' && re.test(p[k] as string) ? undefined : `${k}: expected ${what}, got ${JSON.stringify(p[k])}`;
  return (
    str('name', PACKAGE_NAME, 'a package name') ??
    str('version', /^[0-9A-Za-z.+~:-]+$/, 'a Debian version') ??
    str('architecture', /^[a-z0-9-]+$/, 'an architecture') ??
    str('priority', /^[a-z]+$/, 'a priority') ??
    str('section', /^[a-z0-9/+-]+$/, 'a section') ??
    (typeof p.source === 'string' && sources.includes(p.source as PackageSource)
      ? undefined
      : `source: expected one of ${sources.map((s) => JSON.stringify(s)).join(', ')} (request.sources), got ${JSON.stringify(p.source)}`) ??
    (typeof p.path === 'string' && (mirror ? /^pool\/[^\s]*\.deb$/ : /^[^/\s][^\s]*\.deb$/).test(p.path) && !p.path.split('/').includes('..')
      ? undefined
      : `path: expected a relative ${mirror ? 'pool/' : ''}…/.deb path, got ${JSON.stringify(p.path)}`) ??
    (typeof p.size === 'number' && Number.isSafeInteger(p.size) && p.size > 0 ? undefined : `size: expected a positive integer, got ${JSON.stringify(p.size)}`) ??
    str('sha256', SHA256, '64 lowercase hex digits')
  );
}

function sortPackages(ps: LockedPackage[]): LockedPackage[] {
  return [...ps].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function unknownKeys(o: Record<string, unknown>, known: string[]): string | undefined {
  const k = Object.keys(o).find((x) => !known.includes(x));
  return k === undefined ? undefined : JSON.stringify(k);
}
