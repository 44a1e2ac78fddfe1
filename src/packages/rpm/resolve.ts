/**
 * Resolving: RPM package specs turned into exact locked packages by dnf's own depsolver, run
 * in a sandbox whose root is a buildroot tree (a Debian tree with python3-dnf; the host's dnf,
 * if any, is never used) with the network on.
 *
 *     requestOf(options)                                        → RpmRequest (canonical)
 *     resolve(request, { sandbox, buildroot, workDir, logFile }) → Result<LockedRpm[], RpmResolveError>
 *
 * Inside, RESOLVER_SCRIPT (python, dnf's API, the way osbuild's dnf-json works) builds a
 * `dnf.Base` from nothing: no config file, no reposdir, an empty private installroot, cache and
 * state under WORKDIR, weak dependencies off (the install does not take them either). It adds
 * the request's repositories, loads their metadata (`repo_gpgcheck` checks repomd.xml's
 * signature here), marks every spec for install, resolves, and prints the transaction's install
 * set as JSON: NEVRA, checksum, repo id, location. A failure comes back as JSON too: the
 * solver's problem rules, plus the providers of each capability they name, from which
 * `problemOf` (pure) builds the package chain or the conflicting pair.
 *
 * WORKDIR may be reused between resolutions: dnf's metadata cache stays, revalidated against
 * each repository's repomd.xml every time (metadata_expire 0). This module does not
 * download packages or check signatures of packages (verify.ts does).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../sandbox/run.js';
import { SANDBOX_TREE, type Bind, type SandboxSpec, type TreeMount } from '../../sandbox/spec.js';
import { fail, ok, type Result } from '../../result.js';
import type { LockedRpm, RpmRepo, RpmRequest, RpmResolveError } from './types.js';

/** The options of an rpm.install stage (rules/rpm.install/rule.json), after schema defaults. */
export interface RpmStageOptions {
  repos: RpmRepo[];
  packages: string[];
  arch?: string;
  releasever?: string;
  [other: string]: unknown;
}

/**
 * The request a stage's options make: repositories with their defaults spelled out (gpgcheck
 * on, repo_gpgcheck off), packages sorted and unique. Two stages that ask for the same thing
 * make equal requests. Pure.
 */
export function requestOf(options: RpmStageOptions): RpmRequest {
  return {
    repos: options.repos.map((r) => ({
      id: r.id,
      ...(r.baseurl !== undefined ? { baseurl: r.baseurl } : {}),
      ...(r.metalink !== undefined ? { metalink: r.metalink } : {}),
      ...(r.mirrorlist !== undefined ? { mirrorlist: r.mirrorlist } : {}),
      gpgkey: [...(r.gpgkey ?? [])],
      gpgcheck: r.gpgcheck ?? true,
      repo_gpgcheck: r.repo_gpgcheck ?? false,
    })),
    packages: [...new Set(options.packages)].sort(),
    arch: options.arch ?? 'x86_64',
    releasever: options.releasever ?? '',
  };
}

export interface ResolveOptions {
  sandbox: Sandbox;
  /** The buildroot's tree (python3-dnf in it), mounted as the sandbox's root. */
  buildroot: TreeMount;
  /** Scratch directory for dnf's private state (created if missing; may be reused). */
  workDir: string;
  /** dnf's output is appended here. */
  logFile: string;
  signal?: AbortSignal;
}

/** Resolves REQ with dnf in the buildroot; the packages come back sorted by name, then arch. */
export async function resolve(req: RpmRequest, opts: ResolveOptions): Promise<Result<LockedRpm[], RpmResolveError>> {
  const problems = checkRequest(req);
  if (problems.length) return fail({ reason: 'rpm-bad-request', message: `cannot resolve: ${problems.join('; ')}` });
  const w = opts.workDir;
  await mkdir(w, { recursive: true });
  await writeFile(join(w, 'resolve.py'), RESOLVER_SCRIPT);
  await writeFile(join(w, 'request.json'), JSON.stringify(req));
  await writeFile(join(w, 'result.json'), '');
  const binds: Bind[] = [];
  // Name resolution: the host's files, bound over the buildroot's (bwrap cannot make a mount
  // point in a read-only root, so the buildroot must hold them, empty: see docs/rpm.md). https
  // trust is the buildroot's own (ca-certificates).
  for (const p of ['/etc/resolv.conf', '/etc/hosts']) if (existsSync(p) && treeHas(opts.buildroot, p)) binds.push({ src: p, dest: p, writable: false });
  const spec: SandboxSpec = {
    buildroot: { kind: 'tree', mount: opts.buildroot },
    tree: { mount: { kind: 'dir', path: w }, writable: true },
    inputs: [],
    binds,
    network: true,
    argv: ['python3', `${SANDBOX_TREE}/resolve.py`, `${SANDBOX_TREE}/request.json`, SANDBOX_TREE],
    env: { LC_ALL: 'C.UTF-8', HOME: SANDBOX_TREE },
  };
  const r = await opts.sandbox.run(spec, { logFile: opts.logFile, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (r.cancelled) return fail({ reason: 'rpm-resolver-failed', message: 'resolving was cancelled', logFile: opts.logFile });
  const text = await readFile(join(w, 'result.json'), 'utf8').catch(() => '');
  if (r.exitCode !== 0 || !text.trim()) {
    const log = await readFile(opts.logFile, 'utf8').catch(() => '');
    const tail = log.split('\n').filter((l) => l.trim()).slice(-8).join('\n  ');
    return fail({ reason: 'rpm-resolver-failed', message: `dnf failed (exit ${r.exitCode ?? r.signal}):\n  ${tail}\n(full log: ${opts.logFile})`, logFile: opts.logFile });
  }
  return readResult(JSON.parse(text) as ResolverOutput);
}

/** Whether the tree MOUNT holds PATH (in one of its layers; whiteouts are not looked at). */
export function treeHas(mount: TreeMount, path: string): boolean {
  const rel = path.replace(/^\/+/, '');
  switch (mount.kind) {
    case 'dir':
      return existsSync(join(mount.path, rel));
    case 'file':
      return false;
    case 'overlay':
      return [...(mount.upper ? [mount.upper] : []), ...mount.lowers.map((l) => join(mount.layersDir, l))].some((d) => existsSync(join(d, rel)));
  }
}

/** What RESOLVER_SCRIPT prints (exported for tests). */
export type ResolverOutput =
  | { packages: { name: string; epoch: number; version: string; release: string; arch: string; checksum: [string, string]; repo: string; location: string; size: number }[] }
  | { error: 'no-match'; spec: string; message: string }
  | { error: 'repo'; message: string }
  | { error: 'depsolve'; message: string; rules: string[]; providers: Record<string, string[]>; requested: string[] };

/** The resolver's JSON as a Result. Pure. */
export function readResult(out: ResolverOutput): Result<LockedRpm[], RpmResolveError> {
  if ('packages' in out) {
    const locked: LockedRpm[] = [];
    for (const p of out.packages) {
      if (p.checksum[0] !== 'sha256') {
        // createrepo_c writes sha256 unless told otherwise; a lock holds only sha256.
        return fail({ reason: 'rpm-repo-failed', message: `repository ${p.repo} lists ${p.name} with a ${p.checksum[0]} checksum; imgmake locks sha256 only (the repository must be indexed with sha256)` });
      }
      locked.push({ name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch, repo: p.repo, location: p.location, size: p.size, sha256: p.checksum[1] });
    }
    return ok(sortRpms(locked));
  }
  switch (out.error) {
    case 'no-match':
      return fail({ reason: 'rpm-no-such-package', spec: out.spec, message: `no package matches ${JSON.stringify(out.spec)} in the configured repositories` });
    case 'repo':
      return fail({ reason: 'rpm-repo-failed', message: out.message.trim() });
    case 'depsolve':
      return problemOf(out.rules, out.providers, out.requested);
  }
}

/**
 * Turns libsolv's problem rules into one typed failure. A `conflicts with` rule makes an
 * `rpm-conflict`; otherwise the chain is walked back from `nothing provides CAP needed by NEVRA`
 * through `package NEVRA requires CAP, …` rules (a capability belongs to the packages
 * `providers` names for it) up to a requested package. Pure.
 *
 *     problemOf(['package a-1-1.noarch requires b, but none of the providers can be installed',
 *                'nothing provides c needed by b-1-1.noarch'], { b: ['b'] }, ['a'])
 *       → { reason: 'rpm-unresolvable', chain: ['a', 'b', 'c'], … }
 */
export function problemOf(rules: string[], providers: Record<string, string[]>, requested: string[]): Result<never, RpmResolveError> {
  const listed = rules.map((r) => `  - ${r}`).join('\n');
  for (const r of rules) {
    const m = /^package (\S+) conflicts with (\S+)(?: [<>=]+ \S+)? provided by (\S+)$/.exec(r) ?? /^package (\S+) conflicts with (\S+)/.exec(r);
    if (m) {
      const a = nameOf(m[1]!);
      const b = m[3] ? nameOf(m[3]) : m[2]!;
      return fail({ reason: 'rpm-conflict', package: a, with: b, problems: rules, message: `${a} conflicts with ${b}: they cannot be installed together\n${listed}` });
    }
  }
  const requires: { pkg: string; cap: string }[] = [];
  for (const r of rules) {
    const m = /^package (\S+) requires (.+?), but none of the providers can be installed$/.exec(r);
    if (m) requires.push({ pkg: nameOf(m[1]!), cap: m[2]!.split(' ')[0]! });
  }
  const missing = rules.map((r) => /^nothing provides (.+?) needed by (\S+)/.exec(r)).find((m) => m);
  if (!missing) {
    return fail({ reason: 'rpm-unresolvable', chain: [], problems: rules, message: `the packages cannot be resolved:\n${listed}` });
  }
  const chain = [nameOf(missing[2]!), missing[1]!];
  const seen = new Set(chain);
  for (;;) {
    const head = chain[0]!;
    if (requested.includes(head)) break;
    const up = requires.find((q) => !seen.has(q.pkg) && (q.cap === head || (providers[q.cap] ?? []).includes(head)));
    if (!up) break;
    chain.unshift(up.pkg);
    seen.add(up.pkg);
  }
  return fail({ reason: 'rpm-unresolvable', chain, problems: rules, message: `${chain.join(' → ')}: nothing provides ${missing[1]}\n${listed}` });
}

/** The name of a NEVRA as libsolv prints it: `imgtest-logger-a-1:2.0-3.noarch` → `imgtest-logger-a`. */
export function nameOf(nevra: string): string {
  const m = /^(.+)-(?:\d+:)?[^-]+-[^-]+\.[^.]+$/.exec(nevra);
  return m ? m[1]! : nevra;
}

export function sortRpms(ps: LockedRpm[]): LockedRpm[] {
  const k = (p: LockedRpm) => `${p.name}\0${p.arch}`;
  return [...ps].sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
}

const REPO_ID = /^[A-Za-z0-9_.-]+$/;
/** http(s) only: dnf runs in the sandbox, where a file: URL would name the buildroot's files. */
const URL_LIKE = /^https?:\/\/[^\s'"]+$/;

function checkRequest(req: RpmRequest): string[] {
  const p: string[] = [];
  if (req.repos.length === 0) p.push('no repositories');
  const ids = new Set<string>();
  for (const r of req.repos) {
    if (!REPO_ID.test(r.id)) p.push(`repository id ${JSON.stringify(r.id)} is not [A-Za-z0-9_.-]+`);
    if (ids.has(r.id)) p.push(`repository id ${r.id} is used twice`);
    ids.add(r.id);
    if (!r.baseurl && !r.metalink && !r.mirrorlist) p.push(`repository ${r.id} has none of baseurl, metalink, mirrorlist`);
    for (const k of ['baseurl', 'metalink', 'mirrorlist'] as const) {
      const u = r[k];
      if (u !== undefined && !URL_LIKE.test(u)) p.push(`repository ${r.id}: ${k} ${JSON.stringify(u)} is not an http(s) URL`);
    }
    for (const u of r.gpgkey ?? []) if (!URL_LIKE.test(u)) p.push(`repository ${r.id}: gpgkey ${JSON.stringify(u)} is not an http(s) URL`);
    if ((r.gpgcheck ?? true) && !(r.gpgkey ?? []).length) p.push(`repository ${r.id} has gpgcheck on but no gpgkey`);
    if (r.repo_gpgcheck && !(r.gpgkey ?? []).length) p.push(`repository ${r.id} has repo_gpgcheck on but no gpgkey`);
  }
  if (req.packages.length === 0) p.push('no packages');
  if (!/^[a-z0-9_]+$/.test(req.arch)) p.push(`architecture ${JSON.stringify(req.arch)} is not an rpm arch`);
  return p;
}

/**
 * Runs in the buildroot: `python3 resolve.py REQUEST.json WORKDIR`; writes WORKDIR/result.json.
 * Expected failures are results (exit 0); anything else is a traceback in the log (exit 1).
 */
export const RESOLVER_SCRIPT = `import json, os, sys
import dnf, dnf.exceptions, hawkey

req = json.load(open(sys.argv[1]))
w = sys.argv[2]
def done(v):
    with open(os.path.join(w, 'result.json'), 'w') as f:
        json.dump(v, f)
    sys.exit(0)

for d in ('root', 'cache', 'persist', 'dnflog'):
    os.makedirs(os.path.join(w, d), exist_ok=True)
base = dnf.Base()  # no config file is read: every setting is here
c = base.conf
c.installroot = os.path.join(w, 'root')
c.cachedir = os.path.join(w, 'cache')
c.persistdir = os.path.join(w, 'persist')
c.logdir = os.path.join(w, 'dnflog')
c.reposdir = []
c.install_weak_deps = False
c.metadata_expire = 0  # a reused cache is revalidated (repomd.xml) every time: lock --update sees today's repo
c.substitutions['basearch'] = req['arch']
c.substitutions['arch'] = req['arch']
c.substitutions['releasever'] = req['releasever']
for r in req['repos']:
    repo = dnf.repo.Repo(r['id'], c)
    if r.get('baseurl'): repo.baseurl = [r['baseurl']]
    if r.get('metalink'): repo.metalink = r['metalink']
    if r.get('mirrorlist'): repo.mirrorlist = r['mirrorlist']
    repo.gpgkey = r['gpgkey']
    repo.gpgcheck = r['gpgcheck']
    repo.repo_gpgcheck = r['repo_gpgcheck']
    repo.skip_if_unavailable = False
    base.repos.add(repo)
try:
    base.fill_sack(load_system_repo=False)
except dnf.exceptions.Error as e:
    done({'error': 'repo', 'message': str(e)})

for spec in req['packages']:
    try:
        base.install(spec)
    except dnf.exceptions.MarkingError:
        done({'error': 'no-match', 'spec': spec, 'message': 'no match'})
try:
    base.resolve()
except dnf.exceptions.DepsolveError as e:
    rules = [r for p in base._goal.problem_rules() for r in p]
    providers = {}
    for r in rules:
        if r.startswith('package ') and ' requires ' in r:
            cap = r.split(' requires ', 1)[1].split(',')[0].split(' ')[0]
            providers[cap] = sorted({p.name for p in base.sack.query().filter(provides=cap)})
    requested = sorted({p.name for s in req['packages'] for p in dnf.subject.Subject(s).get_best_query(base.sack)})
    done({'error': 'depsolve', 'message': str(e), 'rules': rules, 'providers': providers, 'requested': requested})

out = []
for p in base.transaction.install_set:
    kind, digest = p.chksum
    out.append({'name': p.name, 'epoch': p.epoch, 'version': p.version, 'release': p.release, 'arch': p.arch,
                'checksum': [hawkey.chksum_name(kind), digest.hex()], 'repo': p.repoid, 'location': p.location,
                'size': p.downloadsize})
print('resolved: %d packages' % len(out))
done({'packages': out})
`;
