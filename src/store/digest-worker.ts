/**
 * The digest worker (digest.ts's `inWorker`): walks and hashes layers and files off the
 * build's event loop, one message per job, answers in any order.
 */
import { parentPort } from 'node:worker_threads';
import { type DigestAnswer, type DigestJob, hashFileHere, layerManifestHere } from './digest.js';

const port = parentPort!;
port.on('message', (m: { id: number; job: DigestJob }) => {
  const run = m.job.op === 'layer' ? layerManifestHere(m.job.path) : hashFileHere(m.job.path, m.job.stat);
  run.then(
    (value) => port.postMessage({ id: m.id, value } satisfies DigestAnswer),
    (e: NodeJS.ErrnoException) => port.postMessage({ id: m.id, error: { message: e.message, ...(e.code ? { code: e.code } : {}) } } satisfies DigestAnswer),
  );
});
