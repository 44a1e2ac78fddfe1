/**
 * fetch.ts against a REAL nginx on 127.0.0.1 (its own config file, `daemon off`, a free port, a
 * temporary document root; stopped after): fake .debs under made-up pool paths, the access log
 * counts what was really downloaded. Failures nginx cannot produce on demand (a connection cut
 * mid-body, a stalled body) come from a few lines of node:http at the end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import cacache from 'cacache';
import { artifactKey as debKey, fetchArtifacts, missingArtifacts, type FetchEvent, type FetchOptions } from '../src/packages/fetch.js';
import { apt, packageUrl } from '../src/packages/apt/index.js';
import type { LockedPackage } from '../src/packages/apt/lock.js';
import type { DebianMirror } from '../src/packages/apt/sources.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const T = { timeout: 60_000 };

// The apt format's face to the fetcher: its artifacts, located on MIRROR through its variables.
function locateIn(m: DebianMirror): (a: ReturnType<typeof apt.artifact>) => string {
  const l = apt.locate({ debian_mirror: m.archive, ...(m.security ? { debian_security_mirror: m.security } : {}) }, undefined as never);
  assert.ok(l.ok);
  return (a) => l.value(a, undefined as never);
}
function fetchPackages(pkgs: LockedPackage[], o: Omit<FetchOptions, 'locate'> & { mirror: DebianMirror }): Promise<Map<string, string>> {
  const { mirror: m, ...rest } = o;
  return fetchArtifacts(pkgs.map(apt.artifact), { ...rest, locate: locateIn(m) });
}
async function missingPackages(pkgs: LockedPackage[], o: { cacheDir: string }): Promise<LockedPackage[]> {
  const missing = new Set((await missingArtifacts(pkgs.map(apt.artifact), o)).map((a) => a.sha256));
  return pkgs.filter((p) => missing.has(p.sha256));
}
const hasAll = async (pkgs: LockedPackage[], o: { cacheDir: string }) => (await missingPackages(pkgs, o)).length === 0;
const root = mkdtempSync(join(tmpdir(), 'imgmake-fetch-test-'));
const www = join(root, 'www');
let nginx: Nginx | undefined;
let port = 0;

const accessLog = join(root, 'access.log');
/** GET lines of nginx's access log for PATH (a substring of the request line). */
function requests(path: string): number {
  if (!existsSync(accessLog)) return 0;
  return readFileSync(accessLog, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"GET ${path}`)).length;
}
function allRequests(): number {
  return existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').filter(Boolean).length : 0;
}
/** nginx writes the log line after the response; give it a moment before counting. */
const settle = () => new Promise((ok) => setTimeout(ok, 150));

before(async () => {
  nginx = await startNginx(root, '    location /slow/ { limit_rate 128k; }');
  port = nginx.port;
});

after(async () => {
  await nginx?.stop();
  rmSync(root, { recursive: true, force: true });
});

const mirror = () => ({ archive: `http://127.0.0.1:${port}/debian`, security: `http://127.0.0.1:${port}/debian-security` });

/** A fake .deb of SIZE random bytes on the server at DIR/PATH, and its lock entry. */
function serve(name: string, opts: { size?: number; source?: 'archive' | 'security'; dir?: string; version?: string } = {}): { pkg: LockedPackage; data: Buffer; file: string } {
  const data = randomBytes(opts.size ?? 20_000 + Math.floor(Math.random() * 50_000));
  const source = opts.source ?? 'archive';
  const version = opts.version ?? '1.0-1';
  const path = `pool/${source === 'security' ? 'updates/' : ''}main/${name[0]}/${name}/${name}_${version}_amd64.deb`;
  const base = opts.dir ?? (source === 'security' ? 'debian-security' : 'debian');
  const file = join(www, base, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  const pkg: LockedPackage = {
    name,
    version,
    architecture: 'amd64',
    priority: 'optional',
    section: 'misc',
    source,
    path,
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
  return { pkg, data, file };
}

let seq = 0;
const uniq = (s: string) => `${s}${seq++}-${process.pid}`;
const newCache = () => mkdtempSync(join(root, 'cache-'));

test('downloads into cacache, verified; paths are the content files; the second call downloads nothing', T, async () => {
  const cacheDir = newCache();
  const files = [serve(uniq('alpha')), serve(uniq('beta'), { version: '2:1.2+dfsg-3~bpo12+1' }), serve(uniq('gamma'), { source: 'security' }), serve(uniq('delta'), { size: 1 })];
  const pkgs = files.map((f) => f.pkg);
  assert.equal(await hasAll(pkgs, { cacheDir }), false);
  assert.equal((await missingPackages(pkgs, { cacheDir })).length, 4);

  const before = allRequests();
  const events: FetchEvent[] = [];
  const paths = await fetchPackages(pkgs, { mirror: mirror(), cacheDir, concurrency: 2, onEvent: (e) => events.push(e) });
  await settle();
  assert.equal(allRequests() - before, 4, 'one GET per package');
  assert.equal(paths.size, 4);
  for (const f of files) {
    const p = paths.get(f.pkg.sha256)!;
    assert.ok(p.startsWith(join(cacheDir, 'content-v2', 'sha256')), p);
    assert.deepEqual(readFileSync(p), f.data, f.pkg.name);
    assert.equal(requests(`/${f.pkg.source === 'security' ? 'debian-security' : 'debian'}/${f.pkg.path.replace(/\+/g, '%2B').replace(/:/g, '%3A')}`), 1, f.pkg.path);
    const info = await cacache.get.info(cacheDir, debKey(f.pkg.sha256));
    assert.equal(info?.path, p);
    assert.deepEqual(info?.metadata, { name: f.pkg.name, version: f.pkg.version, architecture: 'amd64', path: f.pkg.path });
  }
  assert.deepEqual(
    events.filter((e) => e.type === 'fetched').map((e) => e.pkg.name).sort(),
    pkgs.map((p) => p.name).sort(),
  );
  // Bytes as they arrive, for the live display: never going back, never past the size.
  for (const f of files) {
    const got = events.flatMap((e) => (e.type === 'receiving' && e.pkg.sha256 === f.pkg.sha256 ? [e.bytes] : []));
    assert.ok(got.length > 0 && got.every((b, i) => b <= f.pkg.size && (i === 0 || b >= got[i - 1]!)), `${f.pkg.name}: ${got.join(' ')}`);
  }
  assert.equal(await hasAll(pkgs, { cacheDir }), true);
  assert.deepEqual(await missingPackages(pkgs, { cacheDir }), []);

  // Second call: nothing goes to the server, same answer.
  const again: FetchEvent[] = [];
  const n = allRequests();
  const paths2 = await fetchPackages(pkgs, { mirror: mirror(), cacheDir, concurrency: 2, onEvent: (e) => again.push(e) });
  await settle();
  assert.equal(allRequests(), n, 'no request on the second call');
  assert.deepEqual(paths2, paths);
  assert.deepEqual(again.map((e) => e.type), ['cached', 'cached', 'cached', 'cached']);

  // Another mirror (one that would answer 404) changes nothing: content is addressed by digest.
  await fetchPackages(pkgs, { mirror: { archive: `http://127.0.0.1:${port}/nowhere` , security: `http://127.0.0.1:${port}/nowhere` }, cacheDir });

  // A lost index entry: the content is found by its integrity and re-indexed, not downloaded.
  await cacache.rm.entry(cacheDir, debKey(files[0]!.pkg.sha256));
  assert.equal(await hasAll(pkgs, { cacheDir }), true);
  await fetchPackages(pkgs, { mirror: mirror(), cacheDir });
  await settle();
  assert.equal(allRequests(), n);
  assert.ok(await cacache.get.info(cacheDir, debKey(files[0]!.pkg.sha256)));
});

test('a truncated, then an altered file: detected, discarded and fetched again', T, async () => {
  const cacheDir = newCache();
  const short = serve(uniq('short'));
  const bent = serve(uniq('bent'));
  writeFileSync(short.file, short.data.subarray(0, 1000)); // the server has a truncated copy at first
  const flipped = Buffer.from(bent.data);
  flipped[flipped.length >> 1]! ^= 0xff;
  writeFileSync(bent.file, flipped); // same size, one byte differs
  const events: FetchEvent[] = [];
  const paths = await fetchPackages([short.pkg, bent.pkg], {
    mirror: mirror(),
    cacheDir,
    onEvent: (e) => {
      events.push(e);
      // The mirror heals between attempts.
      if (e.type === 'retry') writeFileSync(e.pkg.name === short.pkg.name ? short.file : bent.file, e.pkg.name === short.pkg.name ? short.data : bent.data);
    },
  });
  await settle();
  assert.deepEqual(readFileSync(paths.get(short.pkg.sha256)!), short.data);
  assert.deepEqual(readFileSync(paths.get(bent.pkg.sha256)!), bent.data);
  assert.equal(requests(`/debian/${short.pkg.path}`), 2);
  assert.equal(requests(`/debian/${bent.pkg.path}`), 2);
  const retries = events.filter((e): e is Extract<FetchEvent, { type: 'retry' }> => e.type === 'retry');
  assert.deepEqual(
    retries.map((e) => [e.pkg.name, e.error]).sort(),
    [
      [bent.pkg.name, `sha256 ${createHash('sha256').update(flipped).digest('hex')} does not match the lock's ${bent.pkg.sha256}`],
      [short.pkg.name, `got 1000 bytes, the lock says ${short.pkg.size}`],
    ].sort(),
  );
  assertNoLeftovers(cacheDir);
});

test('a permanently wrong sha256 fails after the retries with a message naming the package and URL; the rest is stored', T, async () => {
  const cacheDir = newCache();
  const ok = serve(uniq('fine'));
  const bad = serve(uniq('wrongsum'));
  const lie = { ...bad.pkg, sha256: 'f'.repeat(64) };
  const gone = { ...serve(uniq('gone')).pkg };
  rmSync(join(www, 'debian', gone.path));
  const url = packageUrl(mirror(), lie);
  await assert.rejects(fetchPackages([lie, ok.pkg, gone], { mirror: mirror(), cacheDir, concurrency: 3 }), (e: Error) => {
    assert.equal(
      e.message,
      [
        'could not fetch 2 packages:',
        `  ${gone.name} 1.0-1 (${packageUrl(mirror(), gone)}): HTTP 404 Not Found`,
        `  ${lie.name} 1.0-1 (${url}): sha256 ${bad.pkg.sha256} does not match the lock's ${'f'.repeat(64)} (after 3 attempts)`,
      ].join('\n'),
    );
    return true;
  });
  await settle();
  assert.equal(requests(`/debian/${lie.path}`), 3, 'three attempts');
  assert.equal(requests(`/debian/${gone.path}`), 1, 'a 404 is not retried');
  assert.equal(await hasAll([ok.pkg], { cacheDir }), true, 'the good package was stored meanwhile');
  assert.deepEqual(await missingPackages([lie, ok.pkg, gone], { cacheDir }), [lie, gone]);
  assertNoLeftovers(cacheDir);
});

test('concurrency: N downloads in flight, and faster than one at a time', T, async (t) => {
  // /slow/ is rate-limited to 128 KiB/s per connection: 64 KiB takes ~0.25 s here (nginx sends
  // its first buffer at once), so one at a time is ~1.5 s and the ratios are clear.
  const files = Array.from({ length: 6 }, () => serve(uniq('slow'), { size: 64 * 1024, dir: 'slow/debian' }));
  const pkgs = files.map((f) => f.pkg);
  const slowMirror = { archive: `http://127.0.0.1:${port}/slow/debian` };
  const run = async (concurrency: number) => {
    let inFlight = 0;
    let max = 0;
    const t0 = performance.now();
    const paths = await fetchPackages(pkgs, {
      mirror: slowMirror,
      cacheDir: newCache(),
      concurrency,
      onEvent: (e) => {
        if (e.type === 'start') max = Math.max(max, ++inFlight);
        if (e.type === 'fetched') inFlight--;
      },
    });
    assert.equal(paths.size, 6);
    return { max, ms: performance.now() - t0 };
  };
  const one = await run(1);
  const three = await run(3);
  const six = await run(8);
  t.diagnostic(`6 × 64 KiB at 128 KiB/s each: 1 at a time ${one.ms.toFixed(0)} ms, 3: ${three.ms.toFixed(0)} ms, 6: ${six.ms.toFixed(0)} ms`);
  assert.equal(one.max, 1);
  assert.equal(three.max, 3);
  assert.equal(six.max, 6, 'never more workers than packages');
  assert.ok(three.ms < one.ms * 0.7, `3 at once took ${three.ms.toFixed(0)} ms, 1 at a time ${one.ms.toFixed(0)} ms`);
  assert.ok(six.ms < three.ms, `6 at once took ${six.ms.toFixed(0)} ms, 3 at once ${three.ms.toFixed(0)} ms`);
});

test('a connection cut mid-body and a stalled body are retried; a cancelled fetch stops at once', T, async (t) => {
  const data = randomBytes(100_000);
  const pkg: LockedPackage = {
    name: 'flaky',
    version: '1',
    architecture: 'all',
    priority: 'optional',
    section: 'misc',
    source: 'archive',
    path: 'pool/main/f/flaky/flaky_1_all.deb',
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
  let hits = 0;
  let mode: 'cut-stall-ok' | 'stall' = 'cut-stall-ok';
  const server = createHttpServer((req, res) => {
    hits++;
    res.writeHead(200, { 'content-length': data.length });
    if (mode === 'stall' || hits === 2) {
      res.write(data.subarray(0, 10));
      return; // never finishes
    }
    if (hits === 1) {
      res.write(data.subarray(0, 40_000), () => res.socket?.destroy());
      return;
    }
    res.end(data);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const m = { archive: `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian` };
  const events: FetchEvent[] = [];
  const cacheDir = newCache();
  const paths = await fetchPackages([pkg], { mirror: m, cacheDir, idleTimeoutMs: 300, onEvent: (e) => events.push(e) });
  assert.deepEqual(readFileSync(paths.get(pkg.sha256)!), data);
  assert.equal(hits, 3);
  const errors = events.flatMap((e) => (e.type === 'retry' ? [e.error] : []));
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /^download cut after \d+ of 100000 bytes: /);
  assert.equal(errors[1], 'download cut after 10 of 100000 bytes: no data for 0.3 s');
  assertNoLeftovers(cacheDir);

  // Cancelled while the body stalls: rejected promptly, no retry.
  mode = 'stall';
  hits = 0;
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('user pressed ^C')), 200);
  const t0 = performance.now();
  await assert.rejects(fetchPackages([{ ...pkg }], { mirror: m, cacheDir: newCache(), signal: ac.signal, idleTimeoutMs: 10_000 }), { message: 'user pressed ^C' });
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(hits, 1);
});

/** No temp files left in the cache, and no content that is not a verified .deb. */
function assertNoLeftovers(cacheDir: string): void {
  const tmp = join(cacheDir, 'tmp');
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], 'cacache temp files were removed');
}
