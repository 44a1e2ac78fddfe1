/**
 * Words for events, shared by the plain and pretty renderers.
 */
import type { Event } from '../event.js';
import { formatDiagnostic } from '../diagnostic.js';
import { unreachable } from '../result.js';

export function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** One event as text lines (empty: nothing to say in text form). */
export function describe(e: Event, verbose: boolean): string[] {
  switch (e.type) {
    case 'plan':
      return [`imgmake: ${e.targets.join(', ')}: ${e.toRun} to run, ${e.cached} cached`];
    case 'stage-start':
      return verbose ? [`  start  ${e.node} (${e.rule})`] : [];
    case 'stage':
      switch (e.status) {
        case 'cached':
          return verbose ? [`  cached ${e.node}`] : [];
        case 'ran':
          return [`  ran    ${e.node} (${e.rule}) ${seconds(e.ms)}`];
        case 'failed':
          return [
            `  FAILED ${e.node} (${e.rule})${e.exitCode !== undefined && e.exitCode !== null ? ` exit ${e.exitCode}` : ''} after ${seconds(e.ms)}`,
            ...(e.tail ?? []).map((l) => `    | ${l}`),
            ...(e.log ? [`  full log: ${e.log}`] : []),
          ];
        default:
          return unreachable(e.status);
      }
    case 'stage-cancelled':
      return [`  cancelled ${e.node}`];
    case 'export':
      return [`  export ${e.target} → ${e.path}${e.ms ? ` (${seconds(e.ms)})` : ''}`];
    case 'diagnostic':
      return [formatDiagnostic(e.diagnostic)];
    case 'info':
      return [e.message];
    case 'summary':
      return [
        `${e.ok ? 'ok' : 'FAILED'}: ran ${e.ran}, cached ${e.cached}, failed ${e.failed}${e.cancelled ? `, cancelled ${e.cancelled}` : ''} in ${seconds(e.wallMs)}${e.ok && e.ran === 0 ? ' (nothing to do)' : ''}`,
      ];
    default:
      return unreachable(e);
  }
}
