/**
 * Verifying fetched packages before a stage may use them: each file's sha256 (and size)
 * against the lock, then, for packages of a repository with `gpgcheck`, its OpenPGP signature
 * against that repository's keys, checked by `rpmkeys --checksig` in the buildroot sandbox (no
 * network) with a keyring private to the check, so nothing the host or buildroot trusts counts.
 *
 *     verify([{ file, locked }], { repos, keys, sandbox, buildroot, workDir, logFile })
 *       → Result<void, RpmVerifyError>     (the first package refused, by name)
 *
 * `rpmkeys --checksig` alone passes an unsigned package ("digests OK"); `_pkgverify_level
 * signature` makes a missing signature a failure, as `gpgcheck=1` means in dnf.
 * The checksum comes first: it covers every byte of the file, while an RPM signature leaves
 * the signature header's reserved space uncovered.
 *
 * This module does not download (the fetch layer does) and does not read gpgkey URLs: `keys`
 * holds each repository's armored keys, fetched by the caller.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox } from '../../sandbox/run.js';
import { SANDBOX_TREE, type SandboxSpec, type TreeMount } from '../../sandbox/spec.js';
import { fail, ok, type Result } from '../../result.js';
import { nevra, type LockedRpm, type RpmRepo, type RpmVerifyError } from './types.js';

export interface VerifyOptions {
  /** The request's repositories: `gpgcheck` is read from the locked package's repo. */
  repos: Pick<RpmRepo, 'id' | 'gpgcheck'>[];
  /** Armored public keys by repository id (the contents of its gpgkey URLs). */
  keys: Record<string, string[]>;
  sandbox: Sandbox;
  buildroot: TreeMount;
  /** Scratch directory (created); the check uses its `verify/` subdirectory, emptied first. */
  workDir: string;
  logFile: string;
  signal?: AbortSignal;
}

export interface FetchedRpm {
  file: string;
  locked: LockedRpm;
}

/** Verifies every package; the first failure, naming the package, is the result. */
export async function verify(pkgs: FetchedRpm[], opts: VerifyOptions): Promise<Result<void, RpmVerifyError>> {
  for (const p of pkgs) {
    const r = await checksum(p);
    if (!r.ok) return r;
  }
  const gpg = new Map(opts.repos.map((r) => [r.id, r.gpgcheck ?? true]));
  const signed = pkgs.filter((p) => gpg.get(p.locked.repo) ?? true);
  if (signed.length === 0) return ok(undefined);
  for (const p of signed) {
    if (!(opts.keys[p.locked.repo] ?? []).length) {
      return fail({ reason: 'rpm-no-key', package: nevra(p.locked), repo: p.locked.repo, message: `${nevra(p.locked)}: repository ${p.locked.repo} has gpgcheck on but no key to check it with (set its gpgkey)` });
    }
  }
  return signatures(signed, opts);
}

/** The file's sha256 and size against the lock. */
export async function checksum(p: FetchedRpm): Promise<Result<void, RpmVerifyError>> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p.file)) h.update(chunk as Buffer);
  const actual = h.digest('hex');
  if (actual === p.locked.sha256) return ok(undefined);
  const name = nevra(p.locked);
  return fail({
    reason: 'rpm-checksum-mismatch',
    package: name,
    file: p.file,
    expected: p.locked.sha256,
    actual,
    message: `${name}: ${p.file} has sha256 ${actual}, the lock says ${p.locked.sha256}: the file is corrupt or was replaced (fetch it again; if the repository changed, update the lock)`,
  });
}

/**
 * One sandbox for all: each repository's keys imported into its own keyring (a package is
 * checked only against its repository's keys), then `rpmkeys --checksig` per package.
 */
async function signatures(pkgs: FetchedRpm[], opts: VerifyOptions): Promise<Result<void, RpmVerifyError>> {
  const w = join(opts.workDir, 'verify');
  await rm(w, { recursive: true, force: true });
  await mkdir(join(w, 'pkgs'), { recursive: true });
  const repos = [...new Set(pkgs.map((p) => p.locked.repo))];
  const lines = ['set -u', `W=${SANDBOX_TREE}`, 'fail=0'];
  for (const [i, repo] of repos.entries()) {
    const keys = opts.keys[repo]!;
    for (const [k, key] of keys.entries()) await writeFile(join(w, `key-${i}-${k}.asc`), key);
    lines.push(`mkdir -p $W/keyring-${i}`);
    for (const k of keys.keys()) lines.push(`rpmkeys --dbpath $W/keyring-${i} --import $W/key-${i}-${k}.asc || { echo "IMPORT-FAILED ${i}"; exit 3; }`);
  }
  for (const [j, p] of pkgs.entries()) {
    const at = join(w, 'pkgs', `${j}.rpm`);
    // A hard link where the cache is on the same filesystem, a copy otherwise.
    await link(p.file, at).catch(() => copyFile(p.file, at));
    const i = repos.indexOf(p.locked.repo);
    lines.push(
      `out=$(rpmkeys --dbpath $W/keyring-${i} --define '_pkgverify_level signature' --checksig $W/pkgs/${j}.rpm 2>&1) || { echo "BAD ${j} $out"; fail=1; }`,
    );
  }
  lines.push('exit $fail');
  await writeFile(join(w, 'check.sh'), lines.join('\n') + '\n');
  const spec: SandboxSpec = {
    buildroot: { kind: 'tree', mount: opts.buildroot },
    tree: { mount: { kind: 'dir', path: w }, writable: true },
    inputs: [],
    argv: ['/bin/sh', `${SANDBOX_TREE}/check.sh`],
    env: { LC_ALL: 'C.UTF-8', HOME: SANDBOX_TREE },
  };
  const before = (await readFile(opts.logFile, 'utf8').catch(() => '')).length;
  const r = await opts.sandbox.run(spec, { logFile: opts.logFile, ...(opts.signal ? { signal: opts.signal } : {}) });
  const log = (await readFile(opts.logFile, 'utf8').catch(() => '')).slice(before);
  await rm(join(w, 'pkgs'), { recursive: true, force: true });
  if (r.exitCode === 0) return ok(undefined);
  const bad = /^BAD (\d+) (.*)$/m.exec(log);
  if (r.exitCode === 1 && bad) {
    const p = pkgs[Number(bad[1])]!;
    const name = nevra(p.locked);
    const detail = bad[2]!.replace(/\S*\/pkgs\/\d+\.rpm:\s*/, '').trim();
    return fail({
      reason: 'rpm-bad-signature',
      package: name,
      file: p.file,
      detail,
      message: `${name}: its signature does not verify against the keys of repository ${p.locked.repo} (${detail}); an unsigned package is refused while gpgcheck is on`,
    });
  }
  const tail = log.split('\n').filter((l) => l.trim()).slice(-6).join('\n  ');
  return fail({ reason: 'rpm-verifier-failed', message: `checking signatures failed (exit ${r.exitCode ?? r.signal}):\n  ${tail}\n(full log: ${opts.logFile})`, logFile: opts.logFile });
}
