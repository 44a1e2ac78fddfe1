/**
 * Words for events, shared by the plain and pretty renderers.
 */
import type { Event } from '../event.js';
import { formatDiagnostic } from '../diagnostic.js';
import { unreachable } from '../result.js';
import { formatSize } from '../size.js';

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
            ...(e.cause ? [`  why: ${e.cause}`] : []),
            ...(e.log ? [`  full log: ${e.log} (imgmake log ${e.node} prints it)`] : [`  imgmake log ${e.node} prints its log`]),
          ];
        default:
          return unreachable(e.status);
      }
    case 'stage-cancelled':
      return [`  cancelled ${e.node}`];
    case 'export':
      return [`  export ${e.target} → ${e.path}${e.ms ? ` (${seconds(e.ms)})` : ''}`];
    case 'download':
      return [`  remote ${e.node}: ${e.layers} layer${e.layers === 1 ? '' : 's'} downloaded (${formatSize(e.bytes)}) in ${seconds(e.ms)}`];
    case 'upload':
      return verbose ? [`  upload ${e.node}: ${e.blobs} blob${e.blobs === 1 ? '' : 's'} sent (${formatSize(e.bytes)}) in ${seconds(e.ms)}`] : [];
    case 'warning':
      return [`warning: ${e.message}`];
    case 'diagnostic':
      return [formatDiagnostic(e.diagnostic)];
    case 'info':
      return [e.message];
    case 'watch':
      if (e.state === 'idle') return [`imgmake: watching ${e.files} files (Ctrl-C stops)`];
      if (e.state === 'cancelling') return ['imgmake: a file changed during the build: cancelling it'];
      return [];
    case 'rebuild': {
      const why = e.changed.length ? `${e.changed.join(', ')} changed` : 'first build';
      switch (e.result) {
        case 'built':
          return [`imgmake: rebuilt ${e.targets.join(', ')} in ${seconds(e.wallMs)} — ${why}; ran ${e.ran.length}${e.ran.length ? ` (${e.ran.join(', ')})` : ''}, reused ${e.reused}`];
        case 'failed':
          return [`imgmake: rebuild of ${e.targets.join(', ')} FAILED after ${seconds(e.wallMs)} — ${why}; out/ keeps the last good output`];
        case 'invalid':
          return [`imgmake: ${why}, but the definition has errors (above): nothing ran; out/ keeps the last good output`];
        case 'cancelled':
          return [`imgmake: rebuild cancelled after ${seconds(e.wallMs)} (ran ${e.ran.length} stages first)`];
        default:
          return unreachable(e.result);
      }
    }
    case 'summary':
      return [
        `${e.ok ? 'ok' : 'FAILED'}: ran ${e.ran}, cached ${e.cached}, failed ${e.failed}${e.cancelled ? `, cancelled ${e.cancelled}` : ''} in ${seconds(e.wallMs)}${e.ok && e.ran === 0 ? ' (nothing to do)' : ''}`,
      ];
    default:
      return unreachable(e);
  }
}
