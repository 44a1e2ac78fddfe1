/**
 * How commands talk: one line to stdout, diagnostics (stderr, and as JSON with --json), the
 * build logger for the terminal or --json, and -j.
 */
import { availableParallelism } from 'node:os';
import { formatDiagnostic, type Diagnostic } from '../diagnostic.js';
import type { Event, Logger } from '../event.js';
import { jsonLogger, plainLogger, prettyLogger } from '../logging/index.js';
import type { GlobalOptions } from './context.js';
import { exitOf } from './exit.js';

export function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

export function reportDiagnostics(ds: Diagnostic[], o: GlobalOptions): number {
  for (const d of ds) {
    if (o.json) out(JSON.stringify({ type: 'diagnostic', diagnostic: d } satisfies Event));
    process.stderr.write(`${formatDiagnostic(d)}\n${ds.length > 1 ? '\n' : ''}`);
  }
  return exitOf(ds);
}

export function pickLogger(o: GlobalOptions): Logger & { close?(): void } {
  if (o.json) return jsonLogger(process.stdout);
  if (process.stdout.isTTY && !process.env.CI) return prettyLogger(process.stdout, o.verbose);
  return plainLogger(process.stdout, o.verbose);
}

export function jobsOf(o: GlobalOptions): number | Diagnostic {
  if (o.jobs === undefined) return availableParallelism();
  const n = Number(o.jobs);
  if (!Number.isInteger(n) || n < 1) return { reason: 'usage', message: `-j ${o.jobs}: not a positive whole number`, hint: 'write -j 2' };
  return n;
}
