/**
 * The JSON events of a long-running `imgmake --json …` (watch), read as they arrive, with a
 * bounded wait for the next one that matches.
 */
import type { ChildProcess } from 'node:child_process';
import { checkedEvent } from './event-schema.js';

/** The JSON events of a running `imgmake --json …`, and a bounded wait for the next one. */
export function events(child: ChildProcess) {
  const seen: Record<string, any>[] = [];
  let stderr = '';
  let buffer = '';
  const waiters: (() => void)[] = [];
  // An event that does not fit the schema fails the next wait (a throw here would be an
  // uncaught exception, leaving the test waiting and the child running).
  let invalid: Error | undefined;
  child.stdout!.on('data', (d) => {
    buffer += d;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        seen.push(checkedEvent(line));
      } catch (e) {
        invalid ??= e as Error;
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (d) => (stderr += d));
  let from = 0;
  return {
    get stderr() {
      return stderr;
    },
    /** The events after the previous `next`, up to and including the first matching one. */
    async next(match: (e: Record<string, any>) => boolean, what: string, ms = 60_000): Promise<Record<string, any>[]> {
      const deadline = Date.now() + ms;
      for (;;) {
        if (invalid) throw invalid;
        const i = seen.findIndex((e, k) => k >= from && match(e));
        if (i >= 0) {
          const batch = seen.slice(from, i + 1);
          from = i + 1;
          return batch;
        }
        if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms; events:\n${seen.slice(from).map((e) => JSON.stringify(e)).join('\n')}\nstderr:\n${stderr}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
}
