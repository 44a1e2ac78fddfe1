/**
 * A small signed apt repository for tests: one tiny package made with `dpkg-deb`, indexed with
 * `apt-ftparchive` (Packages, Release), the Release signed (InRelease and Release.gpg) with a
 * throw-away GPG key made here, served by a private nginx on loopback. A second key that signs
 * nothing stands for "the wrong key".
 *
 *     const r = await aptRepo(dir);        // ~2 s
 *     r.uri                                // http://127.0.0.1:PORT/repo
 *     r.key, r.otherKey                    // armoured public keys
 *     r.deb, r.sha256                      // the .deb in the pool and its digest
 *
 * The .deb is byte-reproducible (fixed mtimes, SOURCE_DATE_EPOCH, root ownership, one
 * compressor): the same package every run, so a lock that names it names the same sha256, and
 * a package stage installing it keeps its key from run to run (the shared test cache builds it
 * once). The keys and signatures are new each run; only the lock's key digests change with them.
 *
 * The host tools come from scripts/setup.sh (dpkg, apt-utils, gnupg, nginx); they run on the
 * host to make fixtures, never to install anything.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNginx, type Nginx } from './nginx.js';

/** The package the repository holds, and the file it installs (with its content). */
export const EXTRA_PACKAGE = 'imgmake-extra-hello';
export const EXTRA_VERSION = '1.0';
export const EXTRA_FILE = 'usr/share/imgmake-extra-hello/hello.txt';
export const EXTRA_CONTENT = 'hello from an extra repository\n';
export const SUITE = 'stable';

export interface AptRepo {
  /** The base URI (no final slash): `dists/` and `pool/` are below it. */
  uri: string;
  /** The signing key's public half, armoured. */
  key: string;
  /** Another key, which signs nothing here. */
  otherKey: string;
  /** The .deb as served, and its sha256. */
  deb: string;
  path: string;
  sha256: string;
  nginx: Nginx;
  stop(): Promise<void>;
}

const EPOCH = 1_700_000_000;

export async function aptRepo(dir: string): Promise<AptRepo> {
  const sh = (cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
    execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...o });
  mkdirSync(dir, { recursive: true });
  const gnupg = join(dir, 'gnupg');
  mkdirSync(gnupg, { recursive: true, mode: 0o700 });
  chmodSync(gnupg, 0o700);
  const gpg = (...args: string[]) => sh('gpg', ['--batch', '--homedir', gnupg, ...args]);
  gpg('--passphrase', '', '--quick-gen-key', 'imgmake apt test repository <apt-test@invalid>', 'ed25519', 'sign', 'never');
  gpg('--passphrase', '', '--quick-gen-key', 'imgmake wrong key <wrong@invalid>', 'ed25519', 'sign', 'never');
  const fprs = [...gpg('--with-colons', '--list-keys').matchAll(/^fpr:+([0-9A-F]{40}):/gm)].map((m) => m[1]!);
  const [signer, other] = fprs as [string, string];

  // The package: one file, every mtime fixed, so dpkg-deb makes the same bytes every time.
  const root = join(dir, 'pkg');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, EXTRA_FILE, '..'), { recursive: true });
  writeFileSync(join(root, EXTRA_FILE), EXTRA_CONTENT);
  writeFileSync(
    join(root, 'DEBIAN', 'control'),
    `Package: ${EXTRA_PACKAGE}\nVersion: ${EXTRA_VERSION}\nArchitecture: all\nMaintainer: imgmake tests <tests@invalid>\nPriority: optional\nSection: misc\nDescription: a package from an extra repository (imgmake's tests)\n`,
  );
  for (const p of [join(root, EXTRA_FILE), join(root, 'usr/share/imgmake-extra-hello'), join(root, 'usr/share'), join(root, 'usr'), join(root, 'DEBIAN/control'), join(root, 'DEBIAN'), root]) {
    chmodSync(p, p.endsWith('.txt') || p.endsWith('control') ? 0o644 : 0o755);
    utimesSync(p, EPOCH, EPOCH);
  }
  const www = join(dir, 'www');
  const pool = join(www, 'repo', 'pool', 'main', 'i', EXTRA_PACKAGE);
  mkdirSync(pool, { recursive: true });
  const path = `pool/main/i/${EXTRA_PACKAGE}/${EXTRA_PACKAGE}_${EXTRA_VERSION}_all.deb`;
  const deb = join(www, 'repo', path);
  sh('dpkg-deb', ['--root-owner-group', '-Zxz', '-z6', '--build', root, deb], { env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) } });
  const sha256 = createHash('sha256').update(readFileSync(deb)).digest('hex');

  // The index and the signed Release.
  const repo = join(www, 'repo');
  const bin = join(repo, 'dists', SUITE, 'main', 'binary-amd64');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'Packages'), sh('apt-ftparchive', ['packages', 'pool'], { cwd: repo }));
  const release = sh(
    'apt-ftparchive',
    ['-o', `APT::FTPArchive::Release::Suite=${SUITE}`, '-o', `APT::FTPArchive::Release::Codename=${SUITE}`, '-o', 'APT::FTPArchive::Release::Architectures=amd64 all', '-o', 'APT::FTPArchive::Release::Components=main', 'release', '.'],
    { cwd: join(repo, 'dists', SUITE) },
  );
  writeFileSync(join(repo, 'dists', SUITE, 'Release'), release);
  gpg('--local-user', signer, '--clearsign', '--output', join(repo, 'dists', SUITE, 'InRelease'), join(repo, 'dists', SUITE, 'Release'));
  gpg('--local-user', signer, '--armor', '--detach-sign', '--output', join(repo, 'dists', SUITE, 'Release.gpg'), join(repo, 'dists', SUITE, 'Release'));
  const key = gpg('--armor', '--export', signer);
  const otherKey = gpg('--armor', '--export', other);
  try {
    execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  } catch {
    /* no agent */
  }
  chmodSync(dir, 0o755);
  const nginx = await startNginx(dir);
  return { uri: `http://127.0.0.1:${nginx.port}/repo`, key, otherKey, deb, path, sha256, nginx, stop: () => nginx.stop() };
}
