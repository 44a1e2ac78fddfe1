/**
 * Renderers: the only code that writes build output.
 *
 * - JSON lines (`--json`, `--progress json`): one event per line on stdout, each stamped with
 *   the schema version and the time (`jsonLine`), nothing else there.
 * - plain (CI, pipes, `--progress plain`): one line per event that says something; no colour,
 *   no redrawing, nothing for the live-only events (`stage-output`, `progress`).
 * - pretty (a terminal, `--progress tty`): finished lines scroll; below them a live region
 *   redrawn in place: each running stage with `[N/M]`, its elapsed time and the latest line it
 *   wrote, the fetch/verify/download/upload/export in progress with their bytes, and what the
 *   build waits for. Colour only on a terminal, and never with NO_COLOR.
 *
 * Renderers read events; they never change them.
 */
import { EVENT_SCHEMA_VERSION, type Event, type Logger, type Stamped } from '../event.js';
import { describe, progressText, seconds } from './text.js';

/** An event as `--json` writes it: `v` and `time` first, then the event. */
export function stamp(e: Event, now: Date = new Date()): Stamped {
  return { v: EVENT_SCHEMA_VERSION, time: now.toISOString(), ...e } as Stamped;
}

/** One `--json` line (without its newline). */
export function jsonLine(e: Event): string {
  return JSON.stringify(stamp(e));
}

export function jsonLogger(out: NodeJS.WritableStream = process.stdout): Logger {
  return { log: (e) => void out.write(`${jsonLine(e)}\n`) };
}

export function plainLogger(out: NodeJS.WritableStream = process.stderr, verbose = false): Logger {
  return {
    log(e) {
      for (const l of describe(e, verbose)) out.write(`${l}\n`);
    },
  };
}

/** Colour for a terminal: never with NO_COLOR (any value, https://no-color.org) or off a terminal. */
export function wantsColour(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return out.isTTY === true && (env.NO_COLOR ?? '') === '';
}

/** The width to cut live lines at: a pty that reports 0 columns (or none) gets 100. */
export function widthOf(out: { columns?: number }): number {
  const c = out.columns;
  return c !== undefined && Number.isFinite(c) && c >= 20 ? c : 100;
}

const SGR = { red: '31', green: '32', yellow: '33', dim: '2', bold: '1' } as const;
type Colour = keyof typeof SGR;

/** Cuts `text` to `width - 1` characters (by code point: a cut never splits one). */
function cut(text: string, width: number): string {
  const chars = [...text];
  return chars.length < width ? text : `${chars.slice(0, width - 2).join('')}…`;
}

export interface PrettyOptions {
  verbose?: boolean;
  /** Default: `wantsColour(out)`. */
  colour?: boolean;
  /** How often the live region's timers are redrawn (ms). */
  redrawMs?: number;
}

/** A terminal renderer: finished lines scroll, running work stays at the bottom. */
export function prettyLogger(out: NodeJS.WriteStream = process.stderr, o: PrettyOptions = {}): Logger & { close(): void } {
  const verbose = o.verbose ?? false;
  const colour = o.colour ?? wantsColour(out);
  const paint = (c: Colour | undefined, s: string): string => (colour && c ? `\x1b[${SGR[c]}m${s}\x1b[0m` : s);
  /** Running stages in start order: their number, label, start time and latest output line. */
  const running = new Map<string, { n: number; label: string; since: number; line?: string }>();
  /** Work without a stage (fetch, upload, …) by task and subject. */
  const tasks = new Map<string, string>();
  let total: number | undefined;
  let started = 0;
  let drawn = 0;
  const counter = (n: number): string => (total !== undefined && total > 0 ? `[${n}/${total}] ` : '');
  const clear = (): void => {
    if (drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = (): void => {
    const now = performance.now();
    const width = widthOf(out);
    for (const r of running.values()) {
      const head = `  ${counter(r.n)}▸ ${r.label} ${seconds(Math.round(now - r.since))}`;
      const line = cut(r.line ? `${head} · ${r.line}` : head, width);
      out.write(`${r.line ? `${paint(undefined, line.slice(0, head.length))}${paint('dim', line.slice(head.length))}` : line}\n`);
      drawn++;
    }
    for (const t of tasks.values()) {
      out.write(`${paint('dim', cut(`  ▸ ${t}`, width))}\n`);
      drawn++;
    }
  };
  const timer = setInterval(() => {
    if (running.size || tasks.size) {
      clear();
      draw();
    }
  }, o.redrawMs ?? 250);
  timer.unref();
  const scroll = (e: Event): void => {
    const lines = describe(e, verbose);
    if (e.type === 'stage' && e.status !== 'cached' && lines.length) {
      const n = stageNumbers.get(e.node);
      if (n !== undefined) lines[0] = lines[0]!.replace(/^ {2}/, `  ${counter(n)}`);
    }
    const c = colourOf(e);
    lines.forEach((l, i) => out.write(`${i === 0 ? paint(c, l) : l}\n`));
  };
  const stageNumbers = new Map<string, number>();
  return {
    log(e: Event) {
      clear();
      switch (e.type) {
        case 'plan':
          total = e.toRun;
          started = 0;
          stageNumbers.clear();
          break;
        case 'stage-start':
          stageNumbers.set(e.node, ++started);
          running.set(e.node, { n: started, label: `${e.node} (${e.rule})`, since: performance.now() });
          break;
        case 'stage-output': {
          const r = running.get(e.node);
          if (r) r.line = e.line;
          break;
        }
        case 'stage':
        case 'stage-cancelled':
          running.delete(e.node);
          break;
        case 'progress':
          if (e.state === 'done') tasks.delete(`${e.task} ${e.subject}`);
          else tasks.set(`${e.task} ${e.subject}`, progressText(e));
          break;
        case 'download':
          tasks.delete(`download ${e.node}`);
          break;
        case 'upload':
          tasks.delete(`upload ${e.node}`);
          break;
        case 'export':
        case 'export-failed':
          tasks.delete(`export ${e.target}`);
          tasks.delete(`patch ${e.target}`);
          break;
        case 'patch':
          tasks.delete(`patch ${e.target}`);
          break;
        case 'fetch-failed':
        case 'fetched':
          for (const k of [...tasks.keys()]) if (k.startsWith('fetch ') || k.startsWith('verify ')) tasks.delete(k);
          break;
        default:
          break;
      }
      scroll(e);
      draw();
    },
    close() {
      clearInterval(timer);
      clear();
    },
  };
}

function colourOf(e: Event): Colour | undefined {
  switch (e.type) {
    case 'stage':
      return e.status === 'failed' ? 'red' : e.status === 'ran' ? 'green' : undefined;
    case 'summary':
      return e.ok ? 'green' : 'red';
    case 'fetch-failed':
    case 'export-failed':
    case 'diagnostic':
      return 'red';
    case 'warning':
    case 'wait':
    case 'stage-cancelled':
      return 'yellow';
    case 'plan':
      return 'bold';
    default:
      return undefined;
  }
}
