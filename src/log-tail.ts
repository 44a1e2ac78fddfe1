/**
 * The latest line a running stage wrote, for the live display. A stage's output goes straight
 * from the sandbox to its log file (sandbox/run.ts: stdout and stderr share one file
 * descriptor, so their order is exact and the engine never copies a byte of it); this polls the
 * file's end instead of tapping that stream, so any Sandbox (a test's fake too) gets it.
 *
 * It reads at most the last TAIL_BYTES each time, takes the last non-empty line (the text after
 * the last `\r` of it, as a terminal shows a progress bar), strips control characters, and
 * reports it only when it changed: at most one report per `everyMs`.
 *
 * It does not parse what tools print (apt's phases, dpkg's "Unpacking …"): their own last line
 * already says it.
 */
import { open } from 'node:fs/promises';

const TAIL_BYTES = 4096;
const MAX_LINE = 200;

/** The last line of `text` worth showing, or undefined. Pure. */
export function lastLine(text: string): string | undefined {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const shown = (lines[i]!.split('\r').filter((p) => p.trim() !== '').pop() ?? '')
      // ANSI escape sequences, then any other control character.
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
      .trim();
    if (shown) return shown.length > MAX_LINE ? `${shown.slice(0, MAX_LINE - 1)}…` : shown;
  }
  return undefined;
}

/** Reports the last line of `file` every `everyMs` while it changes; the returned function stops it. */
export function followLastLine(file: string, everyMs: number, report: (line: string) => void): () => Promise<void> {
  let shown: string | undefined;
  let reading: Promise<void> = Promise.resolve();
  const poll = async (): Promise<void> => {
    const f = await open(file, 'r').catch(() => undefined);
    if (!f) return;
    try {
      const { size } = await f.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      await f.read(buf, 0, buf.length, start);
      const line = lastLine(buf.toString('utf8'));
      if (line !== undefined && line !== shown) {
        shown = line;
        report(line);
      }
    } finally {
      await f.close();
    }
  };
  const timer = setInterval(() => {
    reading = reading.then(poll).catch(() => undefined);
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await reading;
  };
}
