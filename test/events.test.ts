/**
 * The event catalogue: the `Event` union (src/event.ts) and the shipped JSON Schema
 * (schema/events.schema.json) name the same types, an example of every type as `--json` writes
 * it fits the schema, and what does not fit is refused. The renderers' pure parts: the last
 * line of a stage's log, the width of a 0-column terminal, colour only where asked.
 *
 * Every test that reads `--json` output checks each line against the schema too
 * (test/helpers/event-schema.ts): this file covers the types no other test makes happen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_SCHEMA_VERSION, EVENT_TYPES, type Event } from '../src/event.js';
import { jsonLine, prettyLogger, stamp, wantsColour, widthOf } from '../src/logging/index.js';
import { describe, seconds } from '../src/logging/text.js';
import { lastLine } from '../src/log-tail.js';
import type { CacheKey, NodeId } from '../src/ids.js';
import { eventErrors, eventSchema } from './helpers/event-schema.js';
import { repoRoot } from './helpers/cli.js';

const key = 'a'.repeat(64) as CacheKey;
const node = 'os.packages' as NodeId;
const base = { node, pipeline: 'os', stage: 'packages', key };

/** One of each type (the compiler checks each against the union; the record, that none is missing). */
const EXAMPLES: { [T in Event['type']]: Extract<Event, { type: T }> } = {
  plan: { type: 'plan', targets: ['qcow2'], toRun: 3, cached: 2 },
  'allow-path': { type: 'allow-path', dirs: ['/srv/shared'] },
  'stage-start': { type: 'stage-start', ...base, rule: 'apt.install' },
  'stage-output': { type: 'stage-output', node, line: 'Unpacking libc6:amd64 (2.36-9) ...' },
  stage: { type: 'stage', ...base, rule: 'apt.install', status: 'failed', ms: 1200, log: 'imgmake log os.packages', reason: 'rule-exit-non-zero', exitCode: 100, tail: ['E: oops'], cause: 'x' },
  'stage-cancelled': { type: 'stage-cancelled', ...base },
  wait: { type: 'wait', for: 'cache-verify', pid: 4242 },
  progress: { type: 'progress', task: 'fetch', subject: 'packages', state: 'running', unit: 'bytes', done: 10, total: 100 },
  fetched: { type: 'fetched', packages: 106, fetched: 12, bytes: 123456, ms: 900 },
  'fetch-failed': { type: 'fetch-failed', message: 'fetching packages failed: HTTP 404' },
  buildroot: { type: 'buildroot', pipeline: 'build' },
  until: { type: 'until', node },
  export: { type: 'export', target: 'qcow2', path: '/p/out/qcow2', ms: 20, mode: 'patched' },
  patch: { type: 'patch', target: 'qcow2', result: 'refused', reason: 'boot-files', message: 'the edit changes /boot/vmlinuz', written: 0, removed: 0, layers: 2, ms: 5 },
  'export-failed': { type: 'export-failed', target: 'qcow2', message: 'exporting qcow2 to /p/out/qcow2 failed: no space' },
  'ostree-commit': { type: 'ostree-commit', target: 'ostree-commit', ref: 'debian/12/x86_64/edge', commit: 'c'.repeat(64), parent: null },
  download: { type: 'download', node, key, layers: 2, bytes: 10, ms: 3 },
  upload: { type: 'upload', node, key, blobs: 1, bytes: 10, ms: 3 },
  'remote-skipped': { type: 'remote-skipped', url: 'http://127.0.0.1:1/cache', agoS: 3, cause: 'connection refused', retryS: 60 },
  warning: { type: 'warning', reason: 'remote-unusable', message: 'm', node },
  diagnostic: { type: 'diagnostic', diagnostic: { reason: 'unknown-rule', message: 'no rule', loc: { file: '/p/imgmake.yaml', line: 3, col: 9, endLine: 3, endCol: 12 }, hint: 'h' } },
  info: { type: 'info', message: 'a note' },
  watch: { type: 'watch', state: 'idle', files: 12 },
  rebuild: { type: 'rebuild', targets: ['hello'], changed: ['imgmake.yaml'], ran: [node], reused: 3, wallMs: 40, result: 'built' },
  timing: { type: 'timing', phases: { start: 120, load: 80, stages: 900, export: 40 } },
  summary: { type: 'summary', ran: 1, cached: 2, failed: 0, cancelled: 0, wallMs: 50, ok: true },
  'plan-stage': { type: 'plan-stage', ...base, rule: 'apt.install', status: 'run', reasons: ['options changed'] },
  image: { type: 'image', distro: 'debian-12', arch: 'x86_64', imageType: 'qcow2', filename: 'disk.qcow2', size: '3G', options: ['packages', 'hostname'] },
  target: { type: 'target', name: 'qcow2', pipeline: 'qcow2', export: ['disk.qcow2'], default: true },
  rule: { type: 'rule', name: 'files.write', digest: 'b'.repeat(64), summary: 'write files', options: { type: 'object' } },
  'cache-info': { type: 'cache-info', root: '/c', trees: 1, logs: 1, bytes: 10, exists: true },
  'cache-tree': { type: 'cache-tree', node, key, bytes: 1, layers: 1, createdAt: new Date().toISOString(), lastUse: new Date().toISOString(), complete: true, targets: ['qcow2'] },
  'cache-deb': { type: 'cache-deb', sha256: 'c'.repeat(64), name: 'hello', version: '1', bytes: 1, lastUse: new Date().toISOString() },
  'cache-ls': { type: 'cache-ls', root: '/c', trees: 1, debs: 0, debBytes: 0, bytes: 1 },
  'cache-corrupt': { type: 'cache-corrupt', kind: 'tree', name: 'os.packages', key, why: 'layer content does not match its digest' },
  'cache-removed': { type: 'cache-removed', kind: 'tree', name: 'os.packages', key, bytes: 1 },
  'cache-would-remove': { type: 'cache-would-remove', kind: 'deb', key: 'deb', bytes: 1 },
  'cache-gc': { type: 'cache-gc', before: 2, after: 1, removed: 1, skipped: 0, dryRun: true },
  'cache-prune': { type: 'cache-prune', before: 2, after: 1, removed: 1, skipped: 0 },
  'cache-verify': { type: 'cache-verify', before: 2, after: 2, removed: 0, skipped: 0, corrupt: 0, checked: { trees: 1, debs: 0, entries: 3 }, unchecked: 0, squashes: 0 },
  'clean-removed': { type: 'clean-removed', what: 'cache', path: '/c', before: 10, busy: 0 },
  'clean-absent': { type: 'clean-absent', what: 'out', path: '/p/out' },
  'checkpoint-export': { type: 'checkpoint-export', node, key, path: '/tmp/x', ms: 3 },
  log: { type: 'log', node, key, text: 'hello\n' },
};

test('the Event union, its list of types and the JSON Schema name the same event types', () => {
  const inSchema = Object.keys(eventSchema.definitions).sort();
  assert.deepEqual([...EVENT_TYPES].sort(), inSchema);
  assert.deepEqual(Object.keys(EXAMPLES).sort(), inSchema);
  const refs = (eventSchema as unknown as { oneOf: { $ref: string }[] }).oneOf.map((r) => r.$ref.replace('#/definitions/', '')).sort();
  assert.deepEqual(refs, inSchema, 'every definition is one branch of the top-level oneOf');
});

test('an example of every event type, as --json writes it, fits the schema', () => {
  for (const e of Object.values(EXAMPLES)) {
    const line = jsonLine(e);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed['v'], EVENT_SCHEMA_VERSION);
    assert.match(String(parsed['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(eventErrors(parsed), undefined, line);
  }
});

test('the schema refuses an event without its envelope, an unknown type, a field it does not know, a cache path as log', () => {
  const now = new Date(0);
  assert.match(eventErrors({ type: 'plan', targets: [], toRun: 0, cached: 0 })!, /v|time/);
  assert.ok(eventErrors({ ...stamp(EXAMPLES.plan, now), v: 2 }));
  assert.ok(eventErrors({ v: 1, time: now.toISOString(), type: 'no-such-event' }));
  assert.ok(eventErrors({ ...stamp(EXAMPLES.summary, now), extra: 1 }));
  assert.ok(eventErrors({ ...stamp(EXAMPLES.stage, now), log: '/var/cache/imgmake/content-v2/sha512/ab/cd' }), 'a log is the command, not a path');
  assert.ok(eventErrors({ ...stamp(EXAMPLES.wait, now), for: 'lunch' }));
});

test('docs/events.md has a section for every event type', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'events.md'), 'utf8');
  const documented = [...doc.matchAll(/^#### `([a-z-]+)`$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(documented, [...EVENT_TYPES].sort());
});

test('the schema file is shipped: package.json lists its folder', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('schema'), JSON.stringify(pkg.files));
});

test('no info event carries a failure: the failures and waits have words of their own', () => {
  assert.deepEqual(describe(EXAMPLES.wait, false), ['imgmake: waiting for cache verify, pid 4242, to finish with the cache']);
  assert.deepEqual(describe({ type: 'wait', for: 'stage', pid: 7, node }, false), ['imgmake: waiting: another build on this cache (pid 7) is making os.packages; its tree will be used']);
  assert.deepEqual(describe(EXAMPLES['export-failed'], false), ['imgmake: exporting qcow2 to /p/out/qcow2 failed: no space']);
  assert.deepEqual(describe(EXAMPLES['fetch-failed'], false), ['imgmake: fetching packages failed: HTTP 404']);
  assert.ok(describe(EXAMPLES.stage, false).includes('  the full log: imgmake log os.packages prints it'));
  assert.deepEqual(describe(EXAMPLES['stage-output'], false), [], 'live lines are the terminal renderer’s only');
});

test('lastLine: the last line worth showing, as a terminal would show it', () => {
  assert.equal(lastLine('one\ntwo\n\n'), 'two');
  assert.equal(lastLine('Progress: [ 10%]\rProgress: [ 60%]\r'), 'Progress: [ 60%]');
  assert.equal(lastLine('\x1b[1mUnpacking\x1b[0m libc6 ...\x07\n'), 'Unpacking libc6 ...');
  assert.equal(lastLine('\n \n'), undefined);
  assert.equal(lastLine('x'.repeat(500))!.length, 200);
});

test('times and widths: a 0-column terminal gets 100 columns, 278 ms stays 278 ms', () => {
  assert.equal(widthOf({ columns: 0 }), 100);
  assert.equal(widthOf({}), 100);
  assert.equal(widthOf({ columns: 60 }), 60);
  assert.equal(seconds(278), '278 ms');
  assert.equal(seconds(59_960), '1 min 0 s');
  assert.equal(seconds(119_600), '2 min 0 s');
  assert.equal(wantsColour({ isTTY: true }, {}), true);
  assert.equal(wantsColour({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(wantsColour({ isTTY: false }, {}), false);
});

/** A terminal stand-in: what the renderer wrote, with a given width. */
function screen(columns: number): { stream: NodeJS.WriteStream; text(): string } {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d) => (text += d));
  Object.assign(s, { columns, isTTY: true });
  return { stream: s as unknown as NodeJS.WriteStream, text: () => text };
}

test('the terminal renderer: [N/M], the running stage’s latest line, its progress, colour only when asked', async () => {
  for (const colour of [true, false]) {
    const t = screen(0);
    const log = prettyLogger(t.stream, { colour, redrawMs: 10_000 });
    log.log(EXAMPLES.plan);
    log.log({ type: 'stage-start', ...base, rule: 'apt.install' });
    log.log({ type: 'stage-output', node, line: 'Unpacking libc6:amd64 (2.36-9) ...' });
    log.log({ type: 'progress', task: 'upload', subject: 'os.base', state: 'running', unit: 'bytes', done: 1024, total: 4096 });
    log.log({ type: 'stage', ...base, rule: 'apt.install', status: 'ran', ms: 278, log: 'imgmake log os.packages' });
    log.log({ type: 'summary', ran: 1, cached: 2, failed: 0, cancelled: 0, wallMs: 278, ok: true });
    log.close();
    const plain = t.text().replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
    assert.match(plain, /\[1\/3\] ▸ os\.packages \(apt\.install\) \d+ ms · Unpacking libc6:amd64 \(2\.36-9\) \.\.\./);
    assert.match(plain, /▸ uploading os\.base to the remote cache: 1\.0 KiB of 4\.0 KiB/);
    assert.match(plain, /\[1\/3\] ran {4}os\.packages \(apt\.install\) 278 ms/);
    assert.match(plain, /ok: ran 1, cached 2, failed 0 in 278 ms/);
    assert.equal(/\x1b\[3[123]m/.test(t.text()), colour, `colour ${colour}`);
  }
});
