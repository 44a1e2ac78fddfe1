/** module-log.ts's loader hooks (they run on the loader's own thread): each loaded URL, a line. */
import { appendFileSync } from 'node:fs';

let log = '';

export function initialize(data: { log: string }): void {
  log = data.log;
}

export async function load(url: string, context: unknown, next: (url: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  appendFileSync(log, `${url}\n`);
  return next(url, context);
}
