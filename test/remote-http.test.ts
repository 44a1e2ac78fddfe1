/**
 * The HTTP remote cache against a REAL nginx with its DAV module (PUT), started on 127.0.0.1
 * with its own config and document root. Runners are cache directories: runner A builds
 * examples/hello and pushes; runner B, with an empty cache and its own copy of the project,
 * downloads instead of building. Then the failure cases: a corrupt blob, a remote that is down
 * or never answers, read-only mode, credentials in the URL; and a hostile or broken remote: an
 * entry that would plant a layer under another node's key, a blob that inflates to hundreds of
 * MiB, a full disk during a download.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imgmake, ran, startImgmake, summary } from './helpers/cli.js';
import { events as watchEvents } from './helpers/events.js';
import { DAV, freePort, startNginx, type Nginx } from './helpers/nginx.js';
import { assertCorruptRejected, build, events, flipByte, packed, runners, sha256 } from './helpers/runners.js';

const T = { timeout: 180_000 };
const root = mkdtempSync(join(tmpdir(), 'imgmake-remote-test-'));
let nginx: Nginx;
let url = '';
const { runner, cleanup } = runners(root);

before(async () => {
  chmodSync(root, 0o755); // nginx's worker runs as an unprivileged user: it reads and writes www/
  nginx = await startNginx(join(root, 'remote'), DAV);
  chmodSync(nginx.www, 0o777);
  url = `http://127.0.0.1:${nginx.port}/cache`;
});

after(async () => {
  await nginx?.stop();
  await cleanup();
});

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
/** nginx writes the log line after the response; give it a moment before reading. */
const settle = () => new Promise((ok) => setTimeout(ok, 200));

let a: Awaited<ReturnType<typeof runner>>;
let finalKey = '';

test('runner A builds and pushes; runner B with an empty cache runs no stage and exports the same bytes; then only downstream stages run', T, async () => {
  a = await runner();
  const ra = await build(a, ['--remote', url]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(ran(ra).length, 9, 'A runs every stage');
  const uploads = events(ra, 'upload');
  assert.equal(uploads.length, 9, `each committed node is uploaded before the build ends: ${JSON.stringify(events(ra, 'warning'))}`);
  assert.deepEqual(events(ra, 'warning'), []);
  assert.equal(uploads.reduce((n, u) => n + u.blobs, 0), 9, 'each blob counted once, by the upload that sent it');
  const layerBlobs = filesIn(join(nginx.www, 'cache', 'cas'));
  assert.equal(filesIn(join(nginx.www, 'cache', 'ac')).length, 9);
  assert.equal(layerBlobs.length, 9, 'one blob per layer, however many trees share it');
  await settle();
  const puts = nginx.log().filter((l) => l.includes('"PUT /cache/cas/'));
  assert.equal(puts.length, 9, 'a layer shared by many trees is uploaded once');
  finalKey = ra.events.find((e) => e.type === 'stage' && e.node === 'tarball.tar')!.key;
  assert.match(JSON.parse(readFileSync(join(nginx.www, 'cache', 'ac', finalKey), 'utf8')).record.digest, /^sha256:[0-9a-f]{64}$/, 'an entry carries its layer digest');

  // `plan` on another empty cache says what would come from the remote.
  const c = await runner();
  const pj = await imgmake(['-f', c.file, '--cache', c.cache, '--remote', url, '--json', 'plan', 'hello']);
  assert.equal(pj.code, 0, pj.stderr);
  const statuses = Object.fromEntries(pj.events.filter((e) => e.type === 'plan-stage').map((e) => [e.node, e.status]));
  assert.equal(statuses['tarball.tar'], 'remote');
  assert.ok(!Object.values(statuses).includes('run'), JSON.stringify(statuses));
  const pt = await imgmake(['-f', c.file, '--cache', c.cache, 'plan', 'hello'], { env: { IMGMAKE_REMOTE: url } });
  assert.match(pt.stdout, /^remote +tarball\.tar /m);
  assert.match(pt.stdout, /nothing will run, 1 from the remote cache .*; 8 not needed/);
  assert.match(pt.stdout, /^unneeded +rootfs\.manifest /m, 'not `cached`: it is in no cache here');
  assert.equal(statuses['rootfs.manifest'], 'unneeded');

  const b = await runner();
  const t0 = Date.now();
  const rb = await build(b, ['--remote', url]);
  const ms = Date.now() - t0;
  assert.equal(rb.code, 0, rb.stderr);
  assert.deepEqual(ran(rb), [], 'B runs no stage');
  assert.deepEqual(events(rb, 'download').map((e) => e.node), ['tarball.tar'], 'the walk stops at the target: its ancestors are not downloaded');
  assert.equal(summary(rb).ok, true);
  assert.equal(sha256(join(b.dir, 'out', 'hello', 'hello.tar')), sha256(join(a.dir, 'out', 'hello', 'hello.tar')), 'byte-identical export');
  process.stderr.write(`# runner B from the remote: ${ms} ms; ${JSON.stringify(events(rb, 'download')[0])}\n`);
  // The entry carried A's layer digest: B's `cache verify` checks the downloaded tree.
  const vb = await imgmake(['--json', '-f', b.file, '--cache', b.cache, 'cache', 'verify']);
  assert.equal(vb.code, 0, vb.stderr);
  const verified = vb.events.find((e) => e.type === 'cache-verify')!;
  assert.deepEqual([verified.checked.trees, verified.unchecked], [1, 0], JSON.stringify(verified));

  // B changes one option: only the stages after it run; the tree before it comes from the remote.
  const rb2 = await build(b, ['--remote', url, '--var', 'timezone=Europe/Paris']);
  assert.equal(rb2.code, 0, rb2.stderr);
  assert.deepEqual(ran(rb2), ['rootfs.greeting', 'rootfs.link', 'rootfs.locale', 'rootfs.manifest', 'rootfs.timezone', 'tarball.tar']);
  assert.deepEqual(events(rb2, 'download').map((e) => e.node), ['rootfs.hostname']);
  assert.equal(events(rb2, 'download')[0]!.layers, 3, 'the three layers of rootfs.hostname');
  assert.equal(events(rb2, 'upload').length, 6, 'B pushes what it built');
});

test('a corrupt blob on the remote is detected, not used: the node is built instead, the warning names it, the blob is replaced', T, async () => {
  const entry = JSON.parse(readFileSync(join(nginx.www, 'cache', 'ac', finalKey), 'utf8'));
  const blob = join(nginx.www, 'cache', 'cas', entry.layers[0].sha256);
  flipByte(blob);
  const d = await runner();
  assertCorruptRejected(await build(d, ['--remote', url]), d, a);
  // D's upload replaced the entry; every blob the entry names is whole again.
  const now = JSON.parse(readFileSync(join(nginx.www, 'cache', 'ac', finalKey), 'utf8'));
  for (const l of now.layers) assert.equal(sha256(join(nginx.www, 'cache', 'cas', l.sha256)), l.sha256);

  // A truncated blob too.
  const whole = readFileSync(join(nginx.www, 'cache', 'cas', now.layers[0].sha256));
  writeFileSync(join(nginx.www, 'cache', 'cas', now.layers[0].sha256), whole.subarray(0, 100));
  const e = await runner();
  const re = await build(e, ['--remote', url, '--remote-read-only']);
  assert.equal(re.code, 0, re.stderr);
  assert.deepEqual(ran(re), ['tarball.tar']);
  assert.match(events(re, 'warning')[0]!.message, /truncated/);
  writeFileSync(join(nginx.www, 'cache', 'cas', now.layers[0].sha256), whole); // whole again, for the tests after this one
});

test('a remote that is down or never answers costs a warning and a few seconds, not the build', T, async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const r1 = await runner();
  const t0 = Date.now();
  const rd = await build(r1, ['--remote', dead]);
  assert.equal(rd.code, 0, rd.stderr);
  assert.equal(ran(rd).length, 9);
  const w = events(rd, 'warning');
  assert.equal(w.length, 1, JSON.stringify(w));
  assert.equal(w[0]!.reason, 'remote-unusable');
  assert.match(w[0]!.message, /ECONNREFUSED/);
  const refusedMs = Date.now() - t0;

  // A server that accepts connections and never says a word.
  const sockets: Socket[] = [];
  const mute: Server = createServer((s) => void sockets.push(s));
  mute.listen(0, '127.0.0.1');
  await once(mute, 'listening');
  try {
    const r2 = await runner();
    const t1 = Date.now();
    const rm = await build(r2, ['--remote', `http://127.0.0.1:${(mute.address() as { port: number }).port}`]);
    const muteMs = Date.now() - t1;
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(ran(rm).length, 9);
    assert.deepEqual(events(rm, 'warning').map((e) => e.reason), ['remote-unusable']);
    assert.match(events(rm, 'warning')[0]!.message, /no progress for 5 s/);
    assert.ok(muteMs < refusedMs + 9000, `a silent remote cost ${muteMs - refusedMs} ms more than a refused one`);
    process.stderr.write(`# build with a refused remote: ${refusedMs} ms; with a silent one: ${muteMs} ms\n`);
  } finally {
    for (const s of sockets) s.destroy();
    mute.close();
  }
});

test('read-only mode downloads but writes nothing', T, async () => {
  const empty = await startNginx(join(root, 'readonly'), DAV);
  chmodSync(empty.www, 0o777);
  try {
    const r = await runner();
    const res = await build(r, ['--remote', `http://127.0.0.1:${empty.port}/cache`, '--remote-read-only']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(ran(res).length, 9);
    const env = await build(await runner(), [], { IMGMAKE_REMOTE: `http://127.0.0.1:${empty.port}/cache`, IMGMAKE_REMOTE_READ_ONLY: '1' });
    assert.equal(env.code, 0, env.stderr);
    await settle();
    assert.deepEqual(filesIn(empty.www), [], 'the remote stays empty');
    const log = empty.log();
    assert.ok(log.length > 0, 'it was asked');
    assert.deepEqual(log.filter((l) => !/"(GET|HEAD) /.test(l)), [], 'only GET and HEAD');
    assert.deepEqual(events(res, 'upload'), []);
  } finally {
    await empty.stop();
  }
});

test('credentials come from the environment: basic auth from IMGMAKE_REMOTE_USER/PASSWORD, a whole header from IMGMAKE_REMOTE_AUTH; refused ones cost one warning', T, async () => {
  const dir = join(root, 'auth');
  mkdirSync(dir);
  writeFileSync(join(dir, 'htpasswd'), `ci:${execFileSync('openssl', ['passwd', '-apr1', 's3cret'], { encoding: 'utf8' }).trim()}\n`);
  const guarded = await startNginx(dir, `    auth_basic "imgmake";\n    auth_basic_user_file ${join(dir, 'htpasswd')};\n${DAV}`);
  chmodSync(guarded.www, 0o777);
  const at = `http://127.0.0.1:${guarded.port}/cache`;
  try {
    const none = await build(await runner(), ['--remote', at]);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(events(none, 'warning').map((e) => e.reason), ['remote-unusable'], 'one warning, then the remote is left alone');
    assert.match(events(none, 'warning')[0]!.message, /HTTP 401.*IMGMAKE_REMOTE_USER/);
    assert.deepEqual(filesIn(guarded.www), []);

    const user = await build(await runner(), ['--remote', at], { IMGMAKE_REMOTE_USER: 'ci', IMGMAKE_REMOTE_PASSWORD: 's3cret' });
    assert.equal(user.code, 0, user.stderr);
    assert.deepEqual(events(user, 'warning'), []);
    assert.equal(events(user, 'upload').length, 9);

    const header = await build(await runner(), ['--remote', at], { IMGMAKE_REMOTE_AUTH: `Basic ${Buffer.from('ci:s3cret').toString('base64')}` });
    assert.equal(header.code, 0, header.stderr);
    assert.deepEqual(ran(header), []);
    assert.equal(events(header, 'download').length, 1);
  } finally {
    await guarded.stop();
  }
});

test('two builds at once on one empty cache take a tree from the remote once', T, async () => {
  const shared = mkdtempSync(join(root, 'cache-'));
  const [x, y] = [await runner(), await runner()];
  const [rx, ry] = await Promise.all([build({ file: x.file, cache: shared }, ['--remote', url]), build({ file: y.file, cache: shared }, ['--remote', url])]);
  for (const r of [rx, ry]) {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ran(r), []);
  }
  assert.equal(events(rx, 'download').length + events(ry, 'download').length, 1, 'one of them downloads; the other finds it');
  assert.equal(sha256(join(x.dir, 'out', 'hello', 'hello.tar')), sha256(join(y.dir, 'out', 'hello', 'hello.tar')));
});

test('a warm local cache seeds an empty remote: the trees it found are uploaded once, and the next build asks nothing', T, async () => {
  const fresh = await startNginx(join(root, 'seed'), DAV);
  chmodSync(fresh.www, 0o777);
  const at = `http://127.0.0.1:${fresh.port}/cache`;
  try {
    // Runner A's cache is warm (the first test); this remote has never seen it.
    const r = await build(a, ['--remote', at]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ran(r), []);
    assert.deepEqual(events(r, 'warning'), []);
    assert.equal(events(r, 'upload').length, 9, 'every tree the build found goes up');
    assert.equal(filesIn(join(fresh.www, 'cache', 'ac')).length, 9);
    await settle();
    const asked = fresh.log().length;

    const again = await build(a, ['--remote', at]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(events(again, 'upload'), []);
    await settle();
    assert.equal(fresh.log().length, asked, 'a no-op build with the remote seeded sends no request');

    const b = await runner();
    const rb = await build(b, ['--remote', at]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.deepEqual(ran(rb), [], 'an empty runner builds nothing from the seeded remote');
    assert.equal(sha256(join(b.dir, 'out', 'hello', 'hello.tar')), sha256(join(a.dir, 'out', 'hello', 'hello.tar')));
  } finally {
    await fresh.stop();
  }
});

test('the definition may name the remote (cache: { remote: … }, variables substituted); IMGMAKE_REMOTE and --remote win, and empty means none', T, async () => {
  const r = await runner();
  writeFileSync(r.file, `${readFileSync(r.file, 'utf8')}\ncache:\n  remote: \${cache_url}\n`.replace(/^vars:\n/m, 'vars:\n  cache_url: ""\n'));
  const none = await build(r);
  assert.equal(none.code, 0, none.stderr);
  assert.deepEqual(events(none, 'upload'), [], 'an empty remote: is none');
  const fromDef = await build(await runner().then((x) => ({ ...x, file: r.file })), ['--var', `cache_url=${url}`]);
  assert.equal(fromDef.code, 0, fromDef.stderr);
  assert.deepEqual(ran(fromDef), [], 'the remote named by the definition is used: everything comes from it');
  assert.deepEqual(events(fromDef, 'download').map((e) => e.node), ['tarball.tar']);
  const off = await build({ file: r.file, cache: mkdtempSync(join(root, 'cache-')) }, ['--var', `cache_url=${url}`], { IMGMAKE_REMOTE: '' });
  assert.equal(off.code, 0, off.stderr);
  assert.equal(ran(off).length, 9, 'IMGMAKE_REMOTE= (empty) turns it off');
  const dead = `http://127.0.0.1:${await freePort()}`;
  const flag = await build({ file: r.file, cache: mkdtempSync(join(root, 'cache-')) }, ['--var', `cache_url=${url}`, '--remote', dead]);
  assert.equal(flag.code, 0, flag.stderr);
  assert.match(events(flag, 'warning')[0]!.message, new RegExp(`the remote cache ${dead} cannot be used`), '--remote wins');

  const bad = await build(r, ['--var', 'cache_url=http://ci:s3cret@127.0.0.1:1/']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /imgmake\.yaml:\d+:\d+: error: remote: http:\/\/ci:\*\*\*@127\.0\.0\.1:1\/: credentials do not belong in the URL/);
  assert.doesNotMatch(bad.stderr, /s3cret/, 'the password is not printed');
});

test('watch reads the remote and never writes to it: an edit loop does not upload its drafts', T, async (t) => {
  const w = await runner();
  const child = startImgmake(['--json', '-f', w.file, '--cache', w.cache, '--remote', url, 'watch', 'hello']);
  t.after(() => child.kill('SIGKILL'));
  const ev = watchEvents(child);
  const first = (await ev.next((e) => e.type === 'rebuild', 'first build')).at(-1)!;
  assert.equal(first.result, 'built', ev.stderr);
  assert.deepEqual(first.ran, [], 'the first build comes from the remote');
  await ev.next((e) => e.type === 'watch' && e.state === 'idle', 'idle');
  await settle();
  const before = nginx.log().length;
  await writeFile(w.file, (await readFile(w.file, 'utf8')).replace('timezone: Europe/Berlin', 'timezone: Asia/Tokyo'));
  const edit = await ev.next((e) => e.type === 'rebuild', 'rebuild after an edit');
  assert.equal(edit.at(-1)!.result, 'built', ev.stderr);
  assert.equal(edit.at(-1)!.ran.length, 6);
  assert.deepEqual(edit.filter((e) => e.type === 'upload'), []);
  await settle();
  const asked = nginx.log().slice(before);
  assert.ok(asked.length > 0, 'the new keys were looked up');
  assert.deepEqual(asked.filter((l) => !/"(GET|HEAD) /.test(l)), [], 'only GET and HEAD');
  child.kill('SIGINT');
  await once(child, 'exit');
});

test('watch: a remote that never answers costs its timeout once, not on every save', T, async (t) => {
  const sockets: Socket[] = [];
  const mute: Server = createServer((s) => void sockets.push(s));
  mute.listen(0, '127.0.0.1');
  await once(mute, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    mute.close();
  });
  const w = await runner();
  const child = startImgmake(['--json', '-f', w.file, '--cache', w.cache, '--remote', `http://127.0.0.1:${(mute.address() as { port: number }).port}`, 'watch', 'hello']);
  t.after(() => child.kill('SIGKILL'));
  const ev = watchEvents(child);
  const first = await ev.next((e) => e.type === 'rebuild', 'first build');
  assert.equal(first.at(-1)!.result, 'built', ev.stderr);
  assert.deepEqual(first.filter((e) => e.type === 'warning').map((e) => e.reason), ['remote-unusable']);
  await ev.next((e) => e.type === 'watch' && e.state === 'idle', 'idle');
  await writeFile(w.file, (await readFile(w.file, 'utf8')).replace('timezone: Europe/Berlin', 'timezone: Asia/Tokyo'));
  const edit = await ev.next((e) => e.type === 'rebuild', 'rebuild after an edit');
  assert.equal(edit.at(-1)!.result, 'built', ev.stderr);
  assert.deepEqual(edit.filter((e) => e.type === 'warning'), [], 'not asked again: no second timeout');
  const skipped = edit.find((e) => e.type === 'remote-skipped');
  assert.ok(skipped && skipped.agoS >= 0 && skipped.retryS > 0 && skipped.cause, JSON.stringify(edit));
  child.kill('SIGINT');
  await once(child, 'exit');
});

test('credentials in the URL are a usage error pointing at the environment', T, async () => {
  const r = await runner();
  const res = await imgmake(['-f', r.file, '--cache', r.cache, '--remote', 'http://user:secret@127.0.0.1:1/', 'build', 'hello']);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /credentials do not belong in the URL/);
  assert.match(res.stderr, /IMGMAKE_REMOTE_USER/);
});

// ─── A hostile or broken remote ──────────────────────────────────────────────────────────────

const acFile = (key: string) => join(nginx.www, 'cache', 'ac', key);
const readEntry = (key: string) => JSON.parse(readFileSync(acFile(key), 'utf8'));
/** Puts a blob into the remote's CAS as a writer would. */
const putBlob = (b: { file: string; sha256: string }) => writeFileSync(join(nginx.www, 'cache', 'cas', b.sha256), readFileSync(b.file));
/** Every file below `dir` whose name ends with `suffix`. */
const findFiles = (dir: string, suffix: string) => execFileSync('find', [dir, '-name', `*${suffix}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
const du = (dir: string) => Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);

/** The key of each node of examples/hello, from `plan --json` on runner A. */
async function keysOfA(): Promise<Record<string, string>> {
  const p = await imgmake(['-f', a.file, '--cache', a.cache, '--json', 'plan', 'hello', 'rootfs']);
  assert.equal(p.code, 0, p.stderr);
  return Object.fromEntries(p.events.filter((e) => e.type === 'plan-stage').map((e) => [e.node, e.key]));
}

test('an entry whose layers are not the chain this definition computes is refused whole: nothing planted, and a later local build keeps its own tree', T, async () => {
  const keys = await keysOfA();
  const original = readFileSync(acFile(finalKey));
  const entry = readEntry(finalKey);
  // A writer to the remote lists, under tarball.tar's key, a layer for rootfs.hostname's key:
  // its own /etc/hostname.
  const hostnameKey = keys['rootfs.hostname']!;
  const evil = await packed(root, 'mkdir -p etc && echo pwned > etc/hostname');
  putBlob(evil);
  entry.record.layers = [finalKey, hostnameKey];
  entry.layers.push({ key: hostnameKey, sha256: evil.sha256, size: evil.size, unpacked: evil.unpacked });
  writeFileSync(acFile(finalKey), JSON.stringify(entry));
  try {
    const v = await runner();
    const r = await build(v, ['--remote', url, '--remote-read-only']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ran(r), ['tarball.tar'], 'the node is built instead');
    const w = events(r, 'warning');
    assert.equal(w.length, 1, JSON.stringify(w));
    assert.match(w[0]!.message, /^tarball\.tar: its tree on the remote was not used \(its entry's layers \[.*\] are not the chain this definition computes for it \[.*\]: 1 layer of other keys; nothing of it was kept\); building it instead$/);
    // rootfs.manifest came from the remote for tarball.tar's input, with its own (true) chain, which holds rootfs.hostname's layer.
    const planted = join(v.cache, 'layers', hostnameKey, 'etc', 'hostname');
    assert.ok(!existsSync(planted) || readFileSync(planted, 'utf8') === 'hello\n', 'nothing planted under rootfs.hostname\'s key');

    // The same runner builds rootfs without any remote: every stage runs and its own output is what it keeps.
    const local = await imgmake(['-f', v.file, '--cache', v.cache, '--json', 'build', 'rootfs']);
    assert.equal(local.code, 0, local.stderr);
    assert.equal(readFileSync(join(v.dir, 'out', 'rootfs', 'etc', 'hostname'), 'utf8'), 'hello\n');
    const vf = await imgmake(['--json', '-f', v.file, '--cache', v.cache, 'cache', 'verify']);
    assert.equal(vf.events.find((e) => e.type === 'cache-verify')!.corrupt, 0);
  } finally {
    writeFileSync(acFile(finalKey), original);
  }
});

test('a 17 KB blob that unpacks to hundreds of MiB is stopped at what its entry declares: the node is built, the cache does not grow; an entry without declared sizes is refused', T, async () => {
  const original = readFileSync(acFile(finalKey));
  const entry = readEntry(finalKey);
  const declared = entry.layers[0].unpacked as number;
  assert.ok(Number.isSafeInteger(declared) && declared > 0, 'an upload declares what each layer unpacks to');
  const bomb = await packed(root, "head -c 512M /dev/zero | tr '\\0' a > bomb");
  assert.ok(bomb.size < 64 * 1024 && bomb.unpacked > 512 * 1024 * 1024, JSON.stringify(bomb));
  putBlob(bomb);
  entry.layers[0] = { ...entry.layers[0], sha256: bomb.sha256, size: bomb.size };
  writeFileSync(acFile(finalKey), JSON.stringify(entry));
  try {
    const v = await runner();
    const r = await build(v, ['--remote', url, '--remote-read-only']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ran(r), ['tarball.tar']);
    const w = events(r, 'warning');
    assert.equal(w.length, 1, JSON.stringify(w));
    assert.match(w[0]!.message, new RegExp(`^tarball\\.tar: its tree on the remote was not used \\(blob ${bomb.sha256} of layer [0-9a-f]{12}: its tar stream is longer than the ${declared} bytes its entry declares: stopped after \\d+ bytes\\); building it instead$`));
    assert.ok(du(v.cache) < 8 << 20, `the cache holds ${du(v.cache)} bytes`);
    assert.deepEqual(readdirSync(join(v.cache, 'work')), []);
    assert.equal(sha256(join(v.dir, 'out', 'hello', 'hello.tar')), sha256(join(a.dir, 'out', 'hello', 'hello.tar')));

    // An entry of an older imgmake declares nothing: refused, said so.
    const old = readEntry(finalKey);
    old.layers = JSON.parse(original.toString()).layers.map(({ unpacked: _u, digest: _d, ...l }: Record<string, unknown>) => l);
    writeFileSync(acFile(finalKey), JSON.stringify(old));
    const o = await build(await runner(), ['--remote', url, '--remote-read-only']);
    assert.equal(o.code, 0, o.stderr);
    assert.deepEqual(ran(o), ['tarball.tar']);
    assert.match(events(o, 'warning')[0]!.message, /written by an older imgmake, does not declare what its layers unpack to/);
  } finally {
    writeFileSync(acFile(finalKey), original);
  }
});

test('a full disk during a download: a warning names the blob\'s path and ENOSPC, the partial blob is gone, the node is built (never a silent exit 13)', T, async () => {
  const original = readFileSync(acFile(finalKey));
  const entry = readEntry(finalKey);
  // A layer too big for the runner's disk: 8 MiB that does not compress.
  const big = await packed(root, 'head -c 8M /dev/urandom > big');
  putBlob(big);
  entry.layers[0] = { ...entry.layers[0], sha256: big.sha256, size: big.size, unpacked: big.unpacked };
  writeFileSync(acFile(finalKey), JSON.stringify(entry));
  const mounts: string[] = [];
  const tmpfs = () => {
    const dir = mkdtempSync(join(root, 'tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  };
  try {
    const v = await runner();
    v.cache = tmpfs();
    const r = await build(v, ['--remote', url, '--remote-read-only']);
    assert.equal(r.code, 0, r.stderr);
    const w = events(r, 'warning');
    assert.equal(w.length, 1, JSON.stringify(w));
    assert.equal(w[0]!.node, 'tarball.tar');
    assert.match(w[0]!.message, new RegExp(`^tarball\\.tar: its tree on the remote was not used \\(writing ${v.cache}/work/[^ ]+/upper\\.tar\\.zst failed: ENOSPC: no space left on device\\); building it instead$`));
    assert.deepEqual(ran(r), ['tarball.tar']);
    assert.deepEqual(findFiles(v.cache, '.tar.zst'), [], 'the partial blob is removed');
    assert.deepEqual(readdirSync(join(v.cache, 'work')), []);
    assert.equal(sha256(join(v.dir, 'out', 'hello', 'hello.tar')), sha256(join(a.dir, 'out', 'hello', 'hello.tar')));

    // Without --json: the same warning on stderr.
    const p = await runner();
    const plain = await imgmake(['-f', p.file, '--cache', tmpfs(), '--remote', url, '--remote-read-only', 'build', 'hello']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout + plain.stderr, /tarball\.tar: its tree on the remote was not used \(writing \/.*upper\.tar\.zst failed: ENOSPC: no space left on device\)/);
  } finally {
    for (const m of mounts) execFileSync('umount', [m]);
    writeFileSync(acFile(finalKey), original);
  }
});
