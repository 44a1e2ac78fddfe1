/**
 * The RPM test world: the spec files of test/fixtures/rpm built with the host's `rpmbuild`,
 * signed with a throw-away GPG key made here (`gpg --batch`, `rpmsign --addsign`), indexed with
 * `createrepo_c` (repomd.xml detached-signed too, for repo_gpgcheck), and served by a private
 * nginx on loopback. Only Debian's archive is reachable from these machines, so the RPM tests
 * make their own repository.
 *
 *     const w = await rpmWorld();          // built once per test file (memoized), ~5 s
 *     w.baseurl                             // http://127.0.0.1:PORT/repo/
 *     w.keyUrl, w.keyFile                   // the public key, armored
 *     w.file('imgtest-app')                 // the built .rpm on disk
 *
 * What the packages are (each spec says why it exists):
 *   imgtest-filesystem                       directories, /etc/passwd and /etc/group
 *   imgtest-shell (x86_64)                   the host's static busybox as /bin/sh (for scriptlets)
 *   imgtest-app → libimgtest (imgtest-lib) → imgtest-logger (virtual, from imgtest-logger-a, epoch 1)
 *   imgtest-svc                              %pre adds user imgsvc, %post enables imgtest.service
 *   imgtest-conflicting                      Conflicts: imgtest-logger-a
 *   imgtest-broken-app → imgtest-broken → imgtest-missing (provided by nothing)
 *   imgtest-unsigned                         the one package left unsigned
 *
 * The host tools come from scripts/setup.sh (rpm, createrepo-c, gnupg, busybox-static). Running
 * them on the host is fine for fixtures; imgmake itself runs rpm and dnf only in a buildroot.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx, type Nginx } from './nginx.js';

export const RPM_FIXTURES = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'test', 'fixtures', 'rpm');

export interface RpmWorld {
  /** Everything the world made lives under this directory. */
  dir: string;
  /** The repository's base URL, with a final slash: `http://127.0.0.1:PORT/repo/`. */
  baseurl: string;
  /** The repository on disk (nginx's `www/repo`). */
  repoDir: string;
  /** The signing key's public half, armored: on disk and served. */
  keyFile: string;
  keyUrl: string;
  /** The key's fingerprint (40 hex digits, upper case). */
  fingerprint: string;
  nginx: Nginx;
  /** The .rpm file of package `name` (the repository's copy). */
  file(name: string): string;
  /** Every package name in the repository. */
  names: string[];
}

/** The package left unsigned. */
export const UNSIGNED = 'imgtest-unsigned';

let world: Promise<RpmWorld> | undefined;

/** The world, built on first call in this process and torn down when it exits. */
export function rpmWorld(): Promise<RpmWorld> {
  return (world ??= build());
}

async function build(): Promise<RpmWorld> {
  for (const tool of ['rpmbuild', 'rpmsign', 'createrepo_c', 'gpg']) {
    if (!existsSync(`/usr/bin/${tool}`)) throw new Error(`${tool} is not installed: run scripts/setup.sh (it installs rpm, createrepo-c and gnupg)`);
  }
  if (!existsSync('/bin/busybox')) throw new Error('/bin/busybox is missing: run scripts/setup.sh (busybox-static)');
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-rpm-world-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const nginx = await startNginx(dir);
  process.once('exit', () => {
    try {
      process.kill(Number(readFileSync(join(dir, 'nginx.pid'), 'utf8')), 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  const repoDir = join(nginx.www, 'repo');
  mkdirSync(repoDir);
  const sh = (cmd: string, args: string[], env: Record<string, string> = {}) =>
    execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, ...env } });

  const specs = readdirSync(RPM_FIXTURES).filter((f) => f.endsWith('.spec')).map((f) => join(RPM_FIXTURES, f));
  sh('rpmbuild', [
    '-bb',
    '--define', `_topdir ${join(dir, 'rpmbuild')}`,
    '--define', `_rpmdir ${repoDir}`,
    '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
    '--define', 'debug_package %{nil}',
    '--define', '__os_install_post %{nil}',
    '--define', 'busybox /bin/busybox',
    ...specs,
  ]);

  // A throw-away key without a passphrase, in a private GNUPGHOME; its agent is stopped after.
  const gnupg = join(dir, 'gnupg');
  mkdirSync(gnupg, { mode: 0o700 });
  const gpg = (...args: string[]) => sh('gpg', ['--batch', '--homedir', gnupg, ...args]);
  try {
    gpg('--passphrase', '', '--quick-gen-key', 'imgmake RPM test world <rpm-test@invalid>', 'rsa2048', 'sign', 'never');
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg('--with-colons', '--list-keys'))![1]!;
    const keyFile = join(nginx.www, 'RPM-GPG-KEY-imgtest');
    writeFileSync(keyFile, gpg('--armor', '--export', fingerprint));
    const files = readdirSync(repoDir).filter((f) => f.endsWith('.rpm'));
    const signed = files.filter((f) => !f.startsWith(`${UNSIGNED}-`)).map((f) => join(repoDir, f));
    // Debian's rpm names gpg2 as its signer; the key has no passphrase, so nothing asks.
    sh('rpmsign', ['--define', '__gpg /usr/bin/gpg', '--define', `_gpg_path ${gnupg}`, '--define', `_gpg_name ${fingerprint}`, '--addsign', ...signed]);
    sh('createrepo_c', ['--quiet', '--simple-md-filenames', repoDir]);
    gpg('--local-user', fingerprint, '--armor', '--detach-sign', join(repoDir, 'repodata', 'repomd.xml'));
    const byName = new Map(files.map((f) => [/^(.*)-[^-]+-[^-]+\.[^.]+\.rpm$/.exec(f)![1]!, join(repoDir, f)]));
    return {
      dir,
      baseurl: `http://127.0.0.1:${nginx.port}/repo/`,
      repoDir,
      keyFile,
      keyUrl: `http://127.0.0.1:${nginx.port}/RPM-GPG-KEY-imgtest`,
      fingerprint,
      nginx,
      names: [...byName.keys()].sort(),
      file(name) {
        const f = byName.get(name);
        if (!f) throw new Error(`the RPM test world has no package ${name} (it has ${[...byName.keys()].join(', ')})`);
        return f;
      },
    };
  } finally {
    try {
      execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    } catch {
      /* no agent was started */
    }
  }
}
