/**
 * `imgmake build` of a definition with an rpm.install stage, through the real CLI, against the
 * RPM test world's signed repository: with no imgmake.lock entry for the stage, imgmake builds
 * the stage's buildroot pipeline first (src/engine/lock.ts), resolves in it, writes the lock,
 * fetches and verifies (in the same buildroot), and builds. Then a no-op rebuild runs nothing,
 * a package added re-runs only the rpm stage and the stage after it, `imgmake lock` makes the same
 * lock, `--locked` on a cold buildroot builds it for verify, and a buildroot that fails to
 * build fails the build (exit 1).
 *
 * The buildroot pipeline is test/fixtures/rpm/buildroot.yaml's, built in the RPM tests' shared
 * cache (test/helpers/rpm-buildroot.ts): this test uses that cache and that project's lock of
 * the Debian stage, so the Debian part is found cached, not rebuilt.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake } from './helpers/cli.js';
import { rpmWorld, RPM_FIXTURES } from './helpers/rpm-repo.js';
import { rpmBuildroot } from './helpers/rpm-buildroot.js';

after(async () => (await rpmWorld()).nginx.stop());

/**
 * The fixture's buildroot pipeline, word for word (so its stages have the shared cache's keys),
 * plus one stage whose content is STAMP: a buildroot the cache lacks, built by imgmake before
 * it can lock; then an os pipeline built in it.
 */
function definition(baseurl: string, keyUrl: string, packages: string[], stamp: string, extra = ''): string {
  const buildroot = readFileSync(join(RPM_FIXTURES, 'buildroot.yaml'), 'utf8').replace(/\ntargets:[\s\S]*$/, '\n');
  return `${buildroot.trimEnd()}
      - name: stamp
        rule: files.write
        options:
          files:
            - { path: /etc/imgmake-buildroot-stamp, content: "${stamp}" }
${extra}
  os:
    build: rpm-buildroot
    stages:
      - name: packages
        rule: rpm.install
        options:
          repos:
            - { id: test, baseurl: "${baseurl}", gpgkey: ["${keyUrl}"] }
          packages: [${packages.join(', ')}]
      - name: marker
        rule: files.write
        options:
          files:
            - { path: /etc/imgmake-marker, content: "built" }

targets:
  os: { pipeline: os }
`;
}

const ran = (events: Record<string, any>[]): string[] =>
  events
    .filter((e) => e.type === 'stage' && e.status !== 'cached')
    .map((e) => `${e.node}:${e.status}`)
    .sort();

test('imgmake build: an rpm.install stage is locked in its buildroot pipeline, built, then reused', { timeout: 1_800_000 }, async (t) => {
  const [w] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const shared = process.env['IMGMAKE_RPM_TEST_CACHE'] ?? '/var/tmp/imgmake-rpm-test';
  const project = mkdtempSync(join(tmpdir(), 'imgmake-rpm-build-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  const file = join(project, 'imgmake.yaml');
  const stamp = `${process.pid}-${Date.now()}`;
  writeFileSync(file, definition(w.baseurl, w.keyUrl, ['imgtest-svc'], stamp));
  // The Debian stage's lock, as the shared project made it: found, not resolved again.
  copyFileSync(join(shared, 'imgmake.lock'), join(project, 'imgmake.lock'));
  const args = ['-f', file, '--cache', join(shared, 'cache'), '--json'];

  const first = await imgmake([...args, 'build', 'os'], { cwd: project });
  assert.equal(first.code, 0, `${first.stderr}\n${first.stdout}`);
  assert.match(first.stderr, /imgmake: locking os\.packages: test x86_64 \+ imgtest-svc/);
  // The buildroot's new stage ran before the lock could be made (rpm resolves only in it); its
  // Debian stages were found in the shared cache.
  assert.deepEqual(ran(first.events), ['os.marker:ran', 'os.packages:ran', 'rpm-buildroot.stamp:ran'].sort(), JSON.stringify(first.events.filter((e) => e.type === 'stage')));
  assert.ok(
    first.events.findIndex((e) => e.type === 'stage' && e.node === 'rpm-buildroot.stamp') < first.events.findIndex((e) => e.type === 'plan'),
    'the buildroot is built before the build proper is planned',
  );
  const lock = JSON.parse(readFileSync(join(project, 'imgmake.lock'), 'utf8'));
  assert.deepEqual(
    lock.locks.map((l: { format: string }) => l.format),
    ['apt', 'rpm'],
    'the file keeps the definition order',
  );
  const rpms = lock.locks[1].packages as { name: string; epoch: number; version: string; release: string; arch: string }[];
  const nevras = rpms.map((p) => `${p.name}-${p.epoch}:${p.version}-${p.release}.${p.arch}`).sort();

  const tree = join(project, 'tree');
  const exported = await imgmake(['-f', file, '--cache', join(shared, 'cache'), 'export', 'os.marker', tree], { cwd: project });
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(readFileSync(join(tree, 'etc/passwd'), 'utf8'), /^imgsvc:x:990:990:/m, 'the %pre scriptlet ran in the tree');
  const qa = execFileSync('rpm', ['--root', tree, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n'], { encoding: 'utf8' });
  assert.deepEqual(qa.trim().split('\n').sort(), nevras, 'rpm -qa in the tree is the locked set');

  const again = await imgmake([...args, 'build', 'os'], { cwd: project });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(ran(again.events), [], 'a no-op rebuild runs nothing');
  assert.doesNotMatch(again.stderr, /locking/);

  writeFileSync(file, definition(w.baseurl, w.keyUrl, ['imgtest-svc', 'imgtest-app'], stamp));
  const added = await imgmake([...args, 'build', 'os'], { cwd: project });
  assert.equal(added.code, 0, `${added.stderr}\n${added.stdout}`);
  assert.deepEqual(ran(added.events), ['os.marker:ran', 'os.packages:ran'].sort(), 'only the rpm stage and what follows re-run');
  const lockText = readFileSync(join(project, 'imgmake.lock'), 'utf8');
  const after2 = JSON.parse(lockText);
  assert.ok(after2.locks[1].packages.some((p: { name: string }) => p.name === 'imgtest-app'));
  assert.equal(after2.locks.length, 2, 'the old rpm lock is dropped');

  // imgmake lock does the same for a lock that lacks the rpm stage: the same file again.
  copyFileSync(join(shared, 'imgmake.lock'), join(project, 'imgmake.lock'));
  const relocked = await imgmake(['-f', file, '--cache', join(shared, 'cache'), 'lock'], { cwd: project });
  assert.equal(relocked.code, 0, `${relocked.stderr}\n${relocked.stdout}`);
  assert.match(relocked.stdout, /imgmake\.lock covers 2 package stages/);
  assert.equal(readFileSync(join(project, 'imgmake.lock'), 'utf8'), lockText);

  // A lock that exists but a buildroot the cache lacks (a lock from git, a cold cache), with
  // --locked: verifying the fetched .rpms needs the buildroot, so the fetch builds it first.
  writeFileSync(file, definition(w.baseurl, w.keyUrl, ['imgtest-svc', 'imgtest-app'], `${stamp}-2`));
  const locked = await imgmake([...args, 'build', '--locked', 'os'], { cwd: project });
  assert.equal(locked.code, 0, `${locked.stderr}\n${locked.stdout}`);
  assert.doesNotMatch(locked.stderr, /locking/);
  assert.deepEqual(ran(locked.events), ['os.marker:ran', 'os.packages:ran', 'rpm-buildroot.stamp:ran'].sort());
  assert.equal(readFileSync(join(project, 'imgmake.lock'), 'utf8'), lockText, '--locked leaves the lock alone');
});

test('imgmake build: a buildroot that fails to build while locking fails the build (exit 1), naming it; no lock is written', { timeout: 1_800_000 }, async (t) => {
  const [w] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const shared = process.env['IMGMAKE_RPM_TEST_CACHE'] ?? '/var/tmp/imgmake-rpm-test';
  const project = mkdtempSync(join(tmpdir(), 'imgmake-rpm-build-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  const file = join(project, 'imgmake.yaml');
  const broken = `      - name: broken
        rule: shell.run
        options:
          script: "echo the buildroot breaks here; exit 3"
`;
  writeFileSync(file, definition(w.baseurl, w.keyUrl, ['imgtest-svc'], `${process.pid}-${Date.now()}`, broken));
  copyFileSync(join(shared, 'imgmake.lock'), join(project, 'imgmake.lock'));
  const before = readFileSync(join(project, 'imgmake.lock'), 'utf8');
  const r = await imgmake(['-f', file, '--cache', join(shared, 'cache'), '--json', 'build', 'os'], { cwd: project });
  assert.equal(r.code, 1, `${r.stderr}\n${r.stdout}`);
  assert.match(r.stderr, /imgmake\.yaml:\d+:\d+: error: locking os\.packages failed: building the buildroot pipeline rpm-buildroot failed/);
  const failed = r.events.find((e) => e.type === 'stage' && e.status === 'failed');
  assert.equal(failed?.node, 'rpm-buildroot.broken');
  assert.ok(failed.tail.some((l: string) => l.includes('the buildroot breaks here')), JSON.stringify(failed));
  assert.equal(readFileSync(join(project, 'imgmake.lock'), 'utf8'), before, 'no lock written');
});
