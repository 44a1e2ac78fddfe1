/**
 * How commands talk: one line to stdout, diagnostics (stderr, and as JSON with --json), the
 * build logger for the terminal or --json, and -j.
 */
import { availableParallelism } from 'node:os';
import { formatDiagnostic, type Diagnostic } from '../diagnostic.js';
import type { Logger } from '../event.js';
import { jsonLine, jsonLogger, plainLogger, prettyLogger } from '../logging/index.js';
import type { GlobalOptions } from './context.js';
import { exitOf } from './exit.js';

export function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

export function reportDiagnostics(ds: Diagnostic[], o: GlobalOptions): number {
  for (const d of ds) {
    if (o.json) out(jsonLine({ type: 'diagnostic', diagnostic: d }));
    process.stderr.write(`${formatDiagnostic(d)}\n${ds.length > 1 ? '\n' : ''}`);
  }
  return exitOf(ds);
}

/** `--progress`'s values, buildx's names: `json` is `--json`. */
export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'json'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/**
 * The build's renderer: JSON lines with --json (or --progress json); the live terminal display
 * with --progress tty, or with auto (the default) when stdout is a terminal and CI is not set;
 * else plain lines. Colour only when stdout is a terminal and NO_COLOR is unset.
 */
export function pickLogger(o: GlobalOptions): Logger & { close?(): void } {
  const mode = o.json ? 'json' : (o.progress ?? 'auto');
  if (mode === 'json') return jsonLogger(process.stdout);
  if (mode === 'tty' || (mode === 'auto' && process.stdout.isTTY && !process.env.CI)) return prettyLogger(process.stdout, { verbose: o.verbose ?? false });
  return plainLogger(process.stdout, o.verbose);
}

export function jobsOf(o: GlobalOptions): number | Diagnostic {
  if (o.jobs === undefined) return availableParallelism();
  const n = Number(o.jobs);
  if (!Number.isInteger(n) || n < 1) return { reason: 'usage', message: `-j ${o.jobs}: not a positive whole number`, hint: 'write -j 2' };
  return n;
}
