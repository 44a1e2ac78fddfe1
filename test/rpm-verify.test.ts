/**
 * src/packages/rpm/verify.ts against packages of the RPM test world: the sha256 check (a
 * one-byte change is refused, naming the package), and the signature check by rpmkeys in the
 * buildroot sandbox with a keyring private to the check (an unsigned package is refused while
 * gpgcheck is on and accepted when it is off; a package signed by another key is refused).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { verify, type FetchedRpm } from '../src/packages/rpm/verify.js';
import type { LockedRpm } from '../src/packages/rpm/types.js';
import { bwrapSandbox } from '../src/sandbox/run.js';
import { rpmWorld, UNSIGNED } from './helpers/rpm-repo.js';
import { rpmBuildroot } from './helpers/rpm-buildroot.js';

after(async () => (await rpmWorld()).nginx.stop());

/** A lock entry for the world's package NAME, made from the file itself (as dnf would lock it). */
function lockedOf(file: string, name: string): LockedRpm {
  const bytes = readFileSync(file);
  const m = /^(.+)-([^-]+)-([^-]+)\.([^.]+)\.rpm$/.exec(basename(file))!;
  return { name, epoch: 0, version: m[2]!, release: m[3]!, arch: m[4]!, repo: 'test', location: basename(file), size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

test('verify: sha256 against the lock, signatures against the repository key in the buildroot', { timeout: 600_000 }, async (t) => {
  const [w, br] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const work = mkdtempSync(join(tmpdir(), 'imgmake-rpm-verify-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const logFile = join(work, 'log');
  writeFileSync(logFile, '');
  const key = readFileSync(w.keyFile, 'utf8');
  const opts = (gpgcheck: boolean, keys: string[] = [key]) => ({
    repos: [{ id: 'test', gpgcheck }],
    keys: { test: keys },
    sandbox: bwrapSandbox,
    buildroot: { kind: 'dir' as const, path: br.dir },
    workDir: join(work, 'w'),
    logFile,
  });
  const pkg = (name: string): FetchedRpm => ({ file: w.file(name), locked: lockedOf(w.file(name), name) });

  const good = await verify([pkg('imgtest-app'), pkg('imgtest-logger-a'), pkg('imgtest-shell')], opts(true));
  assert.ok(good.ok, JSON.stringify(!good.ok && good.error) + readFileSync(logFile, 'utf8'));

  // One byte changed near the end (the payload): refused by its sha256, named.
  const tampered = join(work, 'imgtest-lib.rpm');
  copyFileSync(w.file('imgtest-lib'), tampered);
  const bytes = readFileSync(tampered);
  bytes[bytes.length - 10] ^= 0x01;
  writeFileSync(tampered, bytes);
  const t1 = await verify([pkg('imgtest-app'), { file: tampered, locked: lockedOf(w.file('imgtest-lib'), 'imgtest-lib') }], opts(false));
  assert.ok(!t1.ok && t1.error.reason === 'rpm-checksum-mismatch', JSON.stringify(t1));
  assert.equal(t1.error.package, 'imgtest-lib-1.2-1.noarch');
  assert.match(t1.error.message, /^imgtest-lib-1\.2-1\.noarch: .* has sha256 [0-9a-f]{64}, the lock says/);

  // Unsigned: refused with gpgcheck on (named), accepted with it off.
  const u1 = await verify([pkg('imgtest-app'), pkg(UNSIGNED)], opts(true));
  assert.ok(!u1.ok && u1.error.reason === 'rpm-bad-signature', JSON.stringify(u1) + readFileSync(logFile, 'utf8'));
  assert.equal(u1.error.package, `${UNSIGNED}-1.0-1.noarch`);
  assert.match(u1.error.message, /imgtest-unsigned-1\.0-1\.noarch: its signature does not verify/);
  const u2 = await verify([pkg('imgtest-app'), pkg(UNSIGNED)], opts(false));
  assert.ok(u2.ok, JSON.stringify(u2));

  // Signed, but not by the repository's key: the private keyring has only that key.
  const other = join(work, 'gnupg');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkdir', ['-m', '700', other]);
  execFileSync('gpg', ['--batch', '--homedir', other, '--passphrase', '', '--quick-gen-key', 'another <other@invalid>', 'rsa2048', 'sign', 'never'], { stdio: 'ignore' });
  const otherKey = execFileSync('gpg', ['--batch', '--homedir', other, '--armor', '--export'], { encoding: 'utf8' });
  execFileSync('gpgconf', ['--homedir', other, '--kill', 'gpg-agent']);
  const k1 = await verify([pkg('imgtest-app')], opts(true, [otherKey]));
  assert.ok(!k1.ok && k1.error.reason === 'rpm-bad-signature' && k1.error.package === 'imgtest-app-3.1-2.noarch', JSON.stringify(k1));

  const nokey = await verify([pkg('imgtest-app')], opts(true, []));
  assert.ok(!nokey.ok && nokey.error.reason === 'rpm-no-key');
});
