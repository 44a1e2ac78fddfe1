/**
 * net/download.ts, the one streaming downloader (package artifacts and remote blobs), against
 * a few lines of node:http on loopback: a cut body resumed with a Range request (only the
 * missing bytes travel again), a server that ignores Range starting over, a body longer than
 * expected stopped at the size, and a write failure named as this machine's, not the server's.
 * The callers' own words are pinned by debian-fetch.test.ts and remote-*.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchFile, LocalWriteError, type FetchFailure } from '../src/net/download.js';

const data = randomBytes(200_000);
const expect = { sha256: createHash('sha256').update(data).digest('hex'), size: data.length };

async function serve(t: { after(fn: () => void): void }, handle: (req: IncomingMessage, res: ServerResponse, hit: number) => void): Promise<string> {
  let hits = 0;
  const server = createServer((req, res) => handle(req, res, ++hits));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-download-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a cut body is resumed with a Range request: only the missing bytes travel again', async (t) => {
  const ranges: (string | undefined)[] = [];
  const bodies: number[] = [];
  const url = await serve(t, (req, res, hit) => {
    ranges.push(req.headers.range);
    const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const body = data.subarray(from);
    if (from > 0) res.writeHead(206, { 'content-length': body.length, 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` });
    else res.writeHead(200, { 'content-length': body.length });
    if (hit === 1) return void res.write(body.subarray(0, 80_000), () => res.socket?.destroy());
    bodies.push(body.length);
    res.end(body);
  });
  const file = join(tempDir(t), 'blob');
  const retries: FetchFailure[] = [];
  const r = await fetchFile(url, file, expect, { onRetry: (_n, f) => retries.push(f) });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.error));
  assert.deepEqual(readFileSync(file), data);
  assert.equal(ranges[0], undefined);
  assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
  assert.equal(retries.length, 1);
  assert.equal(retries[0]!.reason, 'cut');
  // The resume asks for exactly what the cut left out: the bytes received are not sent again.
  const from = Number(/^bytes=(\d+)-$/.exec(ranges[1]!)![1]);
  assert.ok(from > 0 && from <= 80_000, `resumed from ${from}`);
  assert.deepEqual(bodies, [data.length - from]);
});

test('a server that ignores Range (200) starts the file over; a body longer than expected stops at the size', async (t) => {
  const url = await serve(t, (_req, res, hit) => {
    res.writeHead(200, { 'content-length': data.length + (hit === 3 ? 10 : 0) });
    if (hit === 1) return void res.write(data.subarray(0, 50_000), () => res.socket?.destroy());
    if (hit === 3) return void res.end(Buffer.concat([data, Buffer.alloc(10)]));
    res.end(data);
  });
  const file = join(tempDir(t), 'blob');
  const r = await fetchFile(url, file, expect);
  assert.ok(r.ok);
  assert.deepEqual(readFileSync(file), data, 'not the first 50 000 bytes twice');
  const longer = await fetchFile(url, file, expect, { attempts: 1 });
  assert.ok(!longer.ok);
  assert.equal(longer.error.failure.reason, 'size');
  assert.ok(longer.error.failure.reason === 'size' && longer.error.failure.bytes > data.length);
  assert.equal(existsSync(file), false, 'a failed download leaves no file');
});

test('a 404 is permanent (one request); a write failure is a LocalWriteError naming the file', async (t) => {
  let hits = 0;
  const url = await serve(t, (_req, res) => {
    hits++;
    res.writeHead(404, 'Not Found').end();
  });
  const dir = tempDir(t);
  const gone = await fetchFile(url, join(dir, 'blob'), expect);
  assert.ok(!gone.ok);
  assert.deepEqual(gone.error, { failure: { reason: 'http', status: 404, statusText: 'Not Found', permanent: true }, attempts: 1 });
  assert.equal(hits, 1);

  const ok = await serve(t, (_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
  const nowhere = join(dir, 'no-such-dir', 'blob');
  await assert.rejects(fetchFile(ok, nowhere, expect), (e: unknown) => {
    assert.ok(e instanceof LocalWriteError);
    assert.equal(e.path, nowhere);
    assert.match(e.message, new RegExp(`^writing ${nowhere} failed: ENOENT: no such file or directory`));
    return true;
  });
});
