/**
 * sha256, the one hash imgmake names things by: of a string or bytes, and of a file's content
 * (streamed). Hex, lowercase. Everything that hashes whole values imports these; streaming
 * checks that hash while downloading (net/download.ts) keep their own running hash.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export function sha256(s: string | Uint8Array): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The plain sha256 of a file's content (what a `.deb` is named by). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
