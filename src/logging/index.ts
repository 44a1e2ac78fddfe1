/**
 * Renderers: the only code that writes build output. JSON lines (`--json`: one object per
 * line on stdout, nothing else there), plain text (CI, pipes: one line per event) and pretty
 * (a terminal: one live line per running stage with its elapsed time, redrawn in place).
 */
import type { Event, Logger } from '../event.js';
import { describe, seconds } from './text.js';

export function jsonLogger(out: NodeJS.WritableStream = process.stdout): Logger {
  return { log: (e) => void out.write(`${JSON.stringify(e)}\n`) };
}

export function plainLogger(out: NodeJS.WritableStream = process.stderr, verbose = false): Logger {
  return {
    log(e) {
      for (const l of describe(e, verbose)) out.write(`${l}\n`);
    },
  };
}

/** A terminal renderer: finished lines scroll, running stages stay at the bottom. */
export function prettyLogger(out: NodeJS.WriteStream = process.stderr, verbose = false): Logger & { close(): void } {
  const running = new Map<string, { label: string; since: number }>();
  let drawn = 0;
  const clear = (): void => {
    if (drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = (): void => {
    const now = performance.now();
    const width = out.columns ?? 100;
    for (const { label, since } of running.values()) {
      out.write(`${`  ▸ ${label} ${seconds(Math.round(now - since))}`.slice(0, width - 1)}\n`);
      drawn++;
    }
  };
  const timer = setInterval(() => {
    if (running.size) {
      clear();
      draw();
    }
  }, 250);
  timer.unref();
  return {
    log(e: Event) {
      clear();
      if (e.type === 'stage-start') running.set(e.node, { label: `${e.node} (${e.rule})`, since: performance.now() });
      if (e.type === 'stage' || e.type === 'stage-cancelled') running.delete(e.node);
      for (const l of describe(e, verbose)) out.write(`${l}\n`);
      draw();
    },
    close() {
      clearInterval(timer);
      clear();
    },
  };
}
