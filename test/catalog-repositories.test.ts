/**
 * A blueprint's repository marked `install_from = true`, end to end, against a real signed apt
 * repository (test/helpers/apt-repo.ts: a tiny .deb made with dpkg-deb, Packages and Release
 * by apt-ftparchive, signed with a throw-away key, served by a private nginx on loopback):
 *
 * 1. `imgmake build tar --blueprint B` locks (implicitly) a package set naming the extra
 *    package from that repository (`source: "extra"`, its path and sha256), the lock request
 *    keeping the repository's id, suite, components and key digest, never its URL;
 * 2. the tar holds it installed: dpkg's status and the package's file, and the repository's
 *    source file (which every repository gets);
 * 3. the same repository with a key that did not sign its Release fails `imgmake lock`: exit 1
 *    (a runtime failure: the input is well-formed, and whether the key or the repository is
 *    wrong is not for imgmake to tell), the cause named, no lock written, the store untouched;
 * 4. without `install_from` the repository only writes its source file: the lock is the plain
 *    catalog image's, and so is the package stage's key.
 *
 * The cache is the catalog tests' ($IMGMAKE_CATALOG_TEST_CACHE, else
 * /var/tmp/imgmake-catalog-test), and the blueprint lives at a fixed path beside it: its package
 * set is the plain catalog image's plus the one extra package, so this test adds exactly one
 * package stage, built once (the .deb is byte-reproducible; the key, new each run, only makes
 * the lock resolve again, to the same set and so the same stage key).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { imgmake, ran } from './helpers/cli.js';
import { aptRepo, EXTRA_CONTENT, EXTRA_FILE, EXTRA_PACKAGE, EXTRA_VERSION, SUITE } from './helpers/apt-repo.js';

const CACHE = process.env['IMGMAKE_CATALOG_TEST_CACHE'] ?? '/var/tmp/imgmake-catalog-test';
const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** Where a catalog build keeps the lock of blueprint FILE (docs/catalog.md). */
const lockOf = (file: string | undefined): string =>
  join(CACHE, 'catalog', `debian-12-x86_64-${file ? sha(file).slice(0, 12) : 'plain'}`, 'imgmake.lock');

function blueprint(o: { uri: string; key: string; installFrom: boolean; extraPackage: boolean }): string {
  return [
    'name = "repos"',
    'distro = "debian-12"',
    ...(o.extraPackage ? ['', '[[packages]]', `name = "${EXTRA_PACKAGE}"`] : []),
    '',
    '[[customizations.repositories]]',
    'id = "extra"',
    'name = "imgmake test repository"',
    `baseurls = ["${o.uri} ${SUITE} main"]`,
    `gpgkeys = ["""\n${o.key.trim()}\n"""]`,
    ...(o.installFrom ? ['install_from = true'] : []),
    '',
  ].join('\n');
}

/** The store's trees and .debs, as `cache ls --json` lists them (keys and digests, no times). */
async function storeState(cwd: string): Promise<string> {
  const r = await imgmake(['--json', 'cache', 'ls', '--debs'], { cwd, env: { IMGMAKE_CACHE: CACHE } });
  assert.equal(r.code, 0, r.stderr);
  const rows = r.events.flatMap((e) => (e.type === 'cache-tree' ? [`tree ${e.node} ${e.key} ${e.bytes}`] : e.type === 'cache-deb' ? [`deb ${e.sha256}`] : []));
  return rows.sort().join('\n');
}

test('catalog: a repository marked install_from is locked from and installed; a wrong key fails the lock; unmarked it only writes its source file', { timeout: 3_600_000 }, async (t) => {
  const work = `${CACHE}-repos`;
  mkdirSync(work, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'imgmake-apt-repo-'));
  const repo = await aptRepo(scratch);
  t.after(async () => {
    await repo.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  const env = { IMGMAKE_CACHE: CACHE };

  // 1. The implicit lock of a catalog build resolves the extra package from the repository.
  const bp = join(work, 'install-from.toml');
  writeFileSync(bp, blueprint({ uri: repo.uri, key: repo.key, installFrom: true, extraPackage: true }));
  // Whether the cache (kept between runs of the suite) already holds the repository's .deb: a
  // package stage re-keyed by a rule change runs again with the .debs it had.
  const hadDeb = existsSync(CACHE) && (await storeState(work)).includes(`deb ${repo.sha256}`);
  const started = Date.now();
  const built = await imgmake(['--json', 'build', 'tar', '--blueprint', bp], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr + built.stdout.slice(-3000));
  t.diagnostic(`build tar: ${Date.now() - started} ms, ran ${ran(built).join(' ')}`);
  const lock = JSON.parse(readFileSync(lockOf(bp), 'utf8')) as { locks: { format: string; request: Record<string, any>; packages: Record<string, any>[] }[] };
  const distro = lock.locks.find((l) => l.request['packages'].includes(EXTRA_PACKAGE));
  assert.ok(distro, JSON.stringify(lock.locks.map((l) => l.request)));
  assert.deepEqual(distro.request['repositories'], [{ id: 'extra', suite: SUITE, components: ['main'], keys: [sha(`${repo.key.trim()}\n`)] }]);
  assert.ok(!JSON.stringify(lock).includes('127.0.0.1'), 'the lock names no URL');
  const entry = distro.packages.find((p) => p['name'] === EXTRA_PACKAGE);
  assert.deepEqual(entry, {
    name: EXTRA_PACKAGE,
    version: EXTRA_VERSION,
    architecture: 'all',
    priority: 'optional',
    section: 'misc',
    source: 'extra',
    path: repo.path,
    size: readFileSync(repo.deb).length,
    sha256: repo.sha256,
  });
  assert.ok(distro.packages.every((p) => p['name'] === EXTRA_PACKAGE || p['source'] === 'archive' || p['source'] === 'security'), 'the rest comes from the mirror');
  if (ran(built).includes('distro.packages') && !hadDeb) {
    // The package stage ran and the cache did not have this .deb: fetched from the repository, by the lock's path.
    assert.ok(repo.nginx.log().some((l) => l.includes(`GET /repo/${repo.path} `) && / 200 /.test(l)), repo.nginx.log().join('\n'));
  }

  // 2. The tree holds it, installed by dpkg, and the repository's source file.
  const tarball = join(work, 'out', 'tar', 'rootfs.tar.zst');
  const member = (name: string): string => execFileSync('tar', ['--zstd', '-xOf', tarball, '--wildcards', `*${name}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const status = member('var/lib/dpkg/status');
  assert.match(status, new RegExp(`^Package: ${EXTRA_PACKAGE}\\nStatus: install ok installed\\n(?:.+\\n)*?Version: ${EXTRA_VERSION.replace('.', '\\.')}\\n`, 'm'));
  assert.equal(member(EXTRA_FILE), EXTRA_CONTENT);
  assert.match(member('etc/apt/sources.list.d/extra.sources'), new RegExp(`URIs: ${repo.uri}\\nSuites: ${SUITE}\\nComponents: main\\nSigned-By: /etc/apt/keyrings/imgmake-extra-1.asc`));

  // 3. A key that did not sign the Release file: the lock fails, nothing is written.
  const wrong = join(work, 'wrong-key.toml');
  writeFileSync(wrong, blueprint({ uri: repo.uri, key: repo.otherKey, installFrom: true, extraPackage: true }));
  rmSync(lockOf(wrong), { force: true });
  const before = await storeState(work);
  const refused = await imgmake(['lock', '--blueprint', wrong], { cwd: work, env });
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /the signature of repository "extra" \(http:\/\/127\.0\.0\.1:\d+\/repo stable\) did not verify with the keys given/);
  assert.match(refused.stderr, /NO_PUBKEY|is not signed/);
  assert.match(refused.stderr, /hint: check that the repository's gpgkeys .* nothing was written/);
  assert.equal(existsSync(lockOf(wrong)), false, 'no lock written');
  assert.equal(await storeState(work), before, 'the store is untouched');

  // 4. Not marked: only its source file; the lock and the package stage are the plain image's.
  const sourceOnly = join(work, 'source-only.toml');
  writeFileSync(sourceOnly, blueprint({ uri: repo.uri, key: repo.key, installFrom: false, extraPackage: false }));
  // The plain catalog image: --distro picks the catalog where no blueprint does.
  for (const args of [['--blueprint', sourceOnly], ['--distro', 'debian-12']]) {
    const r = await imgmake(['lock', ...args], { cwd: work, env });
    assert.equal(r.code, 0, r.stderr);
  }
  const locks = (f: string | undefined) => (JSON.parse(readFileSync(lockOf(f), 'utf8')) as { locks: unknown[] }).locks;
  assert.ok(!readFileSync(lockOf(sourceOnly), 'utf8').includes('"repositories"'));
  assert.deepEqual(locks(sourceOnly), locks(undefined), 'the same lock as the plain image');
  const planOf = async (args: string[]) => {
    const r = await imgmake(['--json', 'plan', 'tar', ...args], { cwd: work, env });
    assert.equal(r.code, 0, r.stderr);
    return r.events.filter((e) => e.type === 'plan-stage');
  };
  const withRepo = await planOf(['--blueprint', sourceOnly]);
  const plain = await planOf(['--distro', 'debian-12']);
  const keyOf = (p: Record<string, any>[], node: string) => p.find((e) => e.node === node)?.key as string | undefined;
  assert.ok(keyOf(withRepo, 'blueprint.repositories'), 'the source file is written by its own stage');
  assert.equal(keyOf(withRepo, 'distro.packages'), keyOf(plain, 'distro.packages'), 'the package stage is the plain image\'s');
  assert.notEqual(keyOf(withRepo, 'distro.packages'), undefined);
  const composed = readFileSync(join(lockOf(sourceOnly), '..', 'imgmake.yaml'), 'utf8');
  assert.ok(!existsSync(join(lockOf(sourceOnly), '..', 'distro.yaml')) || !readFileSync(join(lockOf(sourceOnly), '..', 'distro.yaml'), 'utf8').includes('repositories'), composed);
});
