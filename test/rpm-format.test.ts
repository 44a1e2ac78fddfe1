/**
 * The rpm format end to end, the way the package layer will drive it, against the RPM test
 * world: rpmFormat.resolve in the buildroot, each artifact downloaded from the URL
 * rpmFormat.locate gives, rpmFormat.verify (sha256 and signatures, keys read from gpgkey), then
 * rules/rpm.install from exactly those files. Then a repository that starts serving a changed
 * package under the locked name: refused at verify, naming it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { requestOf, rpmFormat, type LockedRpm } from '../src/packages/rpm/index.js';
import { bwrapSandbox } from '../src/sandbox/run.js';
import { rpmWorld } from './helpers/rpm-repo.js';
import { rpmBuildroot } from './helpers/rpm-buildroot.js';
import { runRule } from './helpers/rule-harness.js';
import { freePort } from './helpers/nginx.js';
import { assertOk } from './helpers/rule-harness.js';

after(async () => (await rpmWorld()).nginx.stop());

test('rpm format: resolve → locate and download → verify → rpm.install', { timeout: 900_000 }, async (t) => {
  const [w, br] = await Promise.all([rpmWorld(), rpmBuildroot()]);
  const work = mkdtempSync(join(tmpdir(), 'imgmake-rpm-format-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const options = { repos: [{ id: 'test', baseurl: w.baseurl, gpgkey: [w.keyUrl], repo_gpgcheck: true }], packages: ['imgtest-svc', 'imgtest-app'] };
  const request = rpmFormat.request(options);
  assert.deepEqual(request, requestOf(options));
  const logFile = join(work, 'log');
  writeFileSync(logFile, '');
  const ctx = { sandbox: bwrapSandbox, workDir: join(work, 'scratch'), logFile, buildroot: { kind: 'tree' as const, mount: { kind: 'dir' as const, path: br.dir } } };

  const locked = await rpmFormat.resolve(request, ctx);
  assert.ok(locked.ok, !locked.ok ? JSON.stringify(locked.error) : '');
  // The lock entry as imgmake.lock would hold it, and back.
  const json = JSON.parse(JSON.stringify(rpmFormat.lock.json(rpmFormat.lockRequest(request), locked.value)));
  const parsed = rpmFormat.lock.parse(json.request, json.packages);
  assert.ok(parsed.ok);
  const entries: LockedRpm[] = parsed.value.packages;

  const dir = join(work, 'rpms');
  execFileSync('mkdir', [dir]);
  const located = rpmFormat.locate({}, request);
  assert.ok(located.ok);
  const url = (e: LockedRpm) => located.value(rpmFormat.artifact(e), e);
  const fetched: { artifact: ReturnType<typeof rpmFormat.artifact>; entry: LockedRpm; path: string }[] = [];
  for (const e of entries) {
    const res = await fetch(url(e));
    assert.equal(res.status, 200, url(e));
    const path = join(dir, rpmFormat.artifact(e).file);
    writeFileSync(path, Buffer.from(await res.arrayBuffer()));
    fetched.push({ artifact: rpmFormat.artifact(e), entry: e, path });
  }
  const v = await rpmFormat.verify(fetched, { ...ctx, request, vars: {}, workDir: join(work, 'verify') });
  assert.ok(v.ok, !v.ok ? v.error.join('\n') : '');

  const r = await runRule('rpm.install', options, { buildroot: br.dir, inputs: { rpms: { kind: 'dir', path: dir } } });
  t.after(r.cleanup);
  assertOk(r);
  const qa = execFileSync('rpm', ['--root', r.tree, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n'], { encoding: 'utf8' });
  assert.deepEqual(qa.trim().split('\n').sort(), entries.map((e) => `${e.name}-${e.epoch}:${e.version}-${e.release}.${e.arch}`).sort());

  // The repository now serves another build under the locked file name (the unsigned one's
  // bytes): the lock's sha256 refuses it, naming the package.
  const lib = fetched.find((f) => f.entry.name === 'imgtest-lib')!;
  copyFileSync(w.file('imgtest-unsigned'), lib.path);
  const bad = await rpmFormat.verify(fetched, { ...ctx, request, vars: {}, workDir: join(work, 'verify') });
  assert.ok(!bad.ok);
  assert.match(bad.error[0]!, /^imgtest-lib-1\.2-1\.noarch: .* the lock says [0-9a-f]{64}/);
  assert.equal(readFileSync(logFile, 'utf8').includes('Traceback'), false);
});

test('rpm format: a repository that cannot be reached while locking is a network diagnostic (exit 1), not a bad request', { timeout: 600_000 }, async (t) => {
  const br = await rpmBuildroot();
  const work = mkdtempSync(join(tmpdir(), 'imgmake-rpm-unreachable-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const port = await freePort();
  const request = rpmFormat.request({ repos: [{ id: 'gone', baseurl: `http://127.0.0.1:${port}/os/`, gpgcheck: false }], packages: ['imgtest-app'] });
  const logFile = join(work, 'log');
  writeFileSync(logFile, '');
  const r = await rpmFormat.resolve(request, { sandbox: bwrapSandbox, workDir: join(work, 'scratch'), logFile, buildroot: { kind: 'tree' as const, mount: { kind: 'dir' as const, path: br.dir } } });
  assert.ok(!r.ok);
  assert.equal(typeof r.error, 'object', `a diagnostic, not a message: ${String(r.error)}`);
  const d = r.error as Exclude<typeof r.error, string>;
  assert.equal(d.reason, 'network');
  assert.match(d.message, new RegExp(`could not be reached while locking: .*127\\.0\\.0\\.1`));
});
