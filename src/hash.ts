/**
 * sha256, the one hash imgmake names things by: of a string or bytes, and of a file's content
 * (read in pieces into one buffer, without a stream: a no-op build hashes its `file:` inputs, and
 * Node's streams were a few milliseconds of its start-up). Hex, lowercase. Everything that hashes whole values imports these; streaming
 * checks that hash while downloading (net/download.ts) keep their own running hash.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

export function sha256(s: string | Uint8Array): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The plain sha256 of a file's content (what a `.deb` is named by). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  const f = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const { bytesRead } = await f.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await f.close();
  }
  return h.digest('hex');
}
