/**
 * The engine as a library (src/engine/): builds driven in-process, no child `imgmake` process.
 * First examples/hello with the real bubblewrap sandbox and a real cache, end to end; then the
 * plan, the scheduler (failure propagation, cancellation, claims between two builds), export and
 * the remote cache's read-through with a recording fake sandbox (test/helpers/fake-sandbox.ts),
 * which runs in a second or two.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, keyProject, lockPackages, loadProject, openEngine, selectNodes, type Engine, type KeyedProject } from '../src/engine/index.js';
import type { Event, Logger } from '../src/event.js';
import { plan } from '../src/plan.js';
import { fakeSandbox, type FakeSandbox } from './helpers/fake-sandbox.js';
import { tempProject } from './helpers/cli.js';
import { DAV, startNginx } from './helpers/nginx.js';

const HELLO_STAGES = 8;

type Recorder = Logger & { events: Event[]; of<T extends Event['type']>(t: T): Extract<Event, { type: T }>[] };

function recorder(): Recorder {
  const events: Event[] = [];
  return {
    events,
    log: (e) => void events.push(e),
    of: <T extends Event['type']>(t: T) => events.filter((e): e is Extract<Event, { type: T }> => e.type === t),
  };
}

/** examples/hello copied, loaded, locked (it has no package stage) and keyed, on an engine. */
async function hello(t: { after(fn: () => Promise<void>): void }, o: { sandbox?: FakeSandbox; cacheDir?: string; remote?: string } = {}): Promise<{ engine: Engine; project: KeyedProject; outDir: string; cacheDir: string }> {
  const p = await tempProject();
  t.after(p.cleanup);
  const cacheDir = o.cacheDir ?? join(p.dir, 'cache');
  const loaded = await loadProject({ file: p.file });
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.error));
  const engine = await openEngine({ cacheDir, ...(o.sandbox ? { sandbox: o.sandbox } : {}), ...(o.remote ? { remote: { url: o.remote, readOnly: false } } : {}) });
  const locked = await lockPackages(engine, loaded.value, 'read', { logger: recorder(), jobs: 2 });
  assert.ok(locked.ok);
  return { engine, project: await keyProject(loaded.value), outDir: join(p.dir, 'out'), cacheDir };
}

async function buildTarget(h: { engine: Engine; project: KeyedProject; outDir: string }, target: string, o: { signal?: AbortSignal; logger?: Recorder; from?: string } = {}) {
  const sel = selectNodes(h.project, [target], o.from ? { from: o.from } : {});
  assert.ok(sel.ok);
  const logger = o.logger ?? recorder();
  const r = await build(h.engine, h.project, { targets: [target], selection: sel.value, outDir: h.outDir }, { logger, jobs: 2, ...(o.signal ? { signal: o.signal } : {}) });
  return { r, logger };
}

test('examples/hello builds in-process through the engine API with real bubblewrap, then a rebuild runs nothing', async (t) => {
  const h = await hello(t);
  const first = recorder();
  const r = await buildTarget(h, 'hello', { logger: first });
  assert.equal(r.r.ok, true, JSON.stringify(first.events.filter((e) => e.type === 'stage' && e.status === 'failed')));
  assert.equal(r.r.ran, HELLO_STAGES + 1, 'the 8 rootfs stages and the tarball');
  const listing = execFileSync('tar', ['-tf', join(h.outDir, 'hello', 'hello.tar')], { encoding: 'utf8' });
  assert.match(listing, /\.\/etc\/hostname/);
  assert.equal(first.of('export').length, 1);
  assert.equal(first.events.at(-1)?.type, 'summary', 'the summary is the last event');

  const again = await buildTarget(h, 'hello');
  assert.equal(again.r.ok, true);
  assert.equal(again.r.ran, 0);
  assert.equal(again.r.cached, HELLO_STAGES + 1);
});

test('fake sandbox: every stage runs once in dependency order, and a rebuild asks the sandbox for nothing', async (t) => {
  const sandbox = fakeSandbox();
  const h = await hello(t, { sandbox });
  const started = performance.now();
  const { r, logger } = await buildTarget(h, 'rootfs');
  assert.equal(r.ok, true);
  assert.equal(sandbox.stageRuns().length, HELLO_STAGES);
  const order = logger.of('stage-start').map((e) => e.node);
  assert.deepEqual(order, ['rootfs.dirs', 'rootfs.motd', 'rootfs.hostname', 'rootfs.timezone', 'rootfs.locale', 'rootfs.greeting', 'rootfs.link', 'rootfs.manifest']);
  // Export runs in the sandbox too (the fake copies nothing): that it was asked for is enough.
  assert.deepEqual(logger.of('export').map((e) => e.target), ['rootfs']);

  const before = sandbox.runs.length;
  const again = await buildTarget(h, 'rootfs');
  assert.equal(again.r.ran, 0);
  assert.equal(sandbox.stageRuns().length, HELLO_STAGES, 'no stage ran again');
  assert.ok(sandbox.runs.length - before <= 1, 'at most the export ran');
  assert.ok(performance.now() - started < 30_000, 'sanity bound: the fake runs fast');
});

test('fake sandbox: a failed stage stops what depends on it; plan then says what will run', async (t) => {
  const sandbox = fakeSandbox();
  const h = await hello(t, { sandbox });
  sandbox.failWhen('Europe/Berlin', 3);
  const { r, logger } = await buildTarget(h, 'rootfs');
  assert.equal(r.ok, false);
  assert.equal(r.failed, 1);
  const failed = logger.of('stage').filter((e) => e.status === 'failed');
  assert.deepEqual(failed.map((e) => [e.node, e.reason, e.exitCode]), [['rootfs.timezone', 'rule-exit-non-zero', 3]]);
  assert.ok(failed[0]!.tail?.some((l) => l.includes('fake failure: exit 3')), 'the log tail is carried');
  assert.ok(!logger.of('stage-start').some((e) => ['rootfs.locale', 'rootfs.manifest'].includes(e.node)), 'nothing after it started');
  assert.equal(logger.of('export').length, 0, 'nothing exported');
  assert.ok(!existsSync(join(h.outDir, 'rootfs')));

  const sel = selectNodes(h.project, ['rootfs'], {});
  assert.ok(sel.ok);
  const p = await plan({ graph: h.project.graph, keys: h.project.keys, store: h.engine.store, goals: sel.value.goals, scope: h.project.scope });
  const status = Object.fromEntries(p.stages.map((s) => [s.id, s.status]));
  assert.equal(status['rootfs.hostname'], 'cached', 'what ran before the failure was kept');
  assert.equal(status['rootfs.timezone'], 'run');
  assert.equal(status['rootfs.manifest'], 'run');
});

test('fake sandbox: cancelling a build kills the running stage, commits nothing of it, and the next build resumes there', async (t) => {
  const sandbox = fakeSandbox();
  const h = await hello(t, { sandbox });
  const hang = sandbox.hangWhen('en_US.UTF-8');
  const abort = new AbortController();
  void hang.started.then(() => abort.abort());
  const { r, logger } = await buildTarget(h, 'rootfs', { signal: abort.signal });
  assert.equal(r.ok, false);
  assert.equal(logger.of('stage-cancelled')[0]?.node, 'rootfs.locale', 'the running stage is cancelled first');
  assert.equal(logger.of('stage-start').at(-1)?.node, 'rootfs.locale', 'nothing started after it');
  assert.equal(r.ran, 4, 'dirs, motd, hostname, timezone');
  assert.equal(logger.of('export').length, 0);

  const fresh = fakeSandbox();
  const resumed = { ...h, engine: { ...h.engine, sandbox: fresh } };
  const second = await buildTarget(resumed, 'rootfs');
  assert.equal(second.r.ok, true);
  assert.deepEqual(second.logger.of('stage-start').map((e) => e.node), ['rootfs.locale', 'rootfs.greeting', 'rootfs.link', 'rootfs.manifest']);
});

test('fake sandbox: --from reruns that stage and what follows, replacing their trees', async (t) => {
  const sandbox = fakeSandbox();
  const h = await hello(t, { sandbox });
  assert.equal((await buildTarget(h, 'rootfs')).r.ok, true);
  const { r, logger } = await buildTarget(h, 'rootfs', { from: 'rootfs.link' });
  assert.equal(r.ok, true);
  assert.deepEqual(logger.of('stage-start').map((e) => e.node), ['rootfs.link', 'rootfs.manifest']);
});

test('fake sandbox: two builds at once on one cache run each stage once (claims)', async (t) => {
  const sandbox = fakeSandbox();
  const a = await hello(t, { sandbox });
  const b = await hello(t, { sandbox, cacheDir: a.cacheDir });
  const [ra, rb] = await Promise.all([buildTarget(a, 'rootfs'), buildTarget(b, 'rootfs')]);
  assert.equal(ra.r.ok && rb.r.ok, true);
  assert.equal(sandbox.stageRuns().length, HELLO_STAGES, 'each stage ran in one of the two builds');
  assert.equal(ra.r.ran + rb.r.ran, HELLO_STAGES);
});

test('fake sandbox + a real nginx remote: a build on an empty cache downloads what another uploaded and runs nothing', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'imgmake-engine-remote-'));
  chmodSync(root, 0o755); // nginx's worker runs as an unprivileged user: it reads and writes www/
  const nginx = await startNginx(join(root, 'remote'), DAV);
  chmodSync(nginx.www, 0o777);
  t.after(async () => {
    await nginx.stop();
    await rm(root, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${nginx.port}/cache`;
  const sandbox = fakeSandbox();
  const a = await hello(t, { sandbox, remote: url, cacheDir: join(root, 'a') });
  const up = await buildTarget(a, 'rootfs');
  assert.equal(up.r.ok, true);
  assert.deepEqual(up.logger.of('warning'), []);
  assert.equal(up.logger.of('upload').length, HELLO_STAGES, 'every tree went up before the build ended');

  const other = fakeSandbox();
  const b = await hello(t, { sandbox: other, remote: url, cacheDir: join(root, 'b') });
  const down = await buildTarget(b, 'rootfs');
  assert.equal(down.r.ok, true);
  assert.equal(other.stageRuns().length, 0, 'nothing ran: the tree came from the remote');
  assert.ok(down.logger.of('download').length > 0);
  assert.deepEqual(down.logger.of('export').map((e) => e.target), ['rootfs']);
});
