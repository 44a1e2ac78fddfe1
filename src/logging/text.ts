/**
 * Words for events, shared by the plain and pretty renderers.
 */
import type { Event, WaitFor } from '../event.js';
import { formatDiagnostic } from '../diagnostic.js';
import { unreachable } from '../result.js';
import { formatSize } from '../size.js';

export function seconds(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}


/** A `progress` event as the words of a live line. */
export function progressText(e: Extract<Event, { type: 'progress' }>): string {
  const amount =
    e.done === undefined
      ? ''
      : e.unit === 'bytes'
        ? `: ${formatSize(e.done)}${e.total !== undefined ? ` of ${formatSize(e.total)}` : ''}`
        : `: ${e.done}${e.total !== undefined ? ` of ${e.total}` : ''}`;
  switch (e.task) {
    case 'fetch':
      return `fetching ${e.subject}${amount}`;
    case 'verify':
      return `verifying the packages of ${e.subject}`;
    case 'download':
      return `downloading ${e.subject} from the remote cache${amount}`;
    case 'upload':
      return `uploading ${e.subject} to the remote cache${amount}`;
    case 'export':
      return `exporting ${e.subject}`;
    case 'patch':
      return `patching ${e.subject}'s previous image`;
    default:
      return unreachable(e.task);
  }
}

const WAITED_FOR: Record<Exclude<WaitFor, 'stage'>, string> = {
  locking: 'another build locking packages',
  verifying: 'another build verifying packages',
  'cache-gc': 'cache gc',
  'cache-verify': 'cache verify',
  'cache-prune': 'cache prune',
  clean: 'clean',
};

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
          return [`  ran    ${e.node} (${e.rule}) ${seconds(e.ms)}${verbose && e.setupMs !== undefined ? ` (set-up ${seconds(e.setupMs)}, commit ${seconds(e.commitMs ?? 0)})` : ''}`];
        case 'failed':
          return [
            `  FAILED ${e.node} (${e.rule})${e.exitCode !== undefined && e.exitCode !== null ? ` exit ${e.exitCode}` : ''} after ${seconds(e.ms)}`,
            ...(e.tail ?? []).map((l) => `    | ${l}`),
            ...(e.cause ? [`  why: ${e.cause}`] : []),
            `  the full log: ${e.log ?? `imgmake log ${e.node}`} prints it`,
          ];
        default:
          return unreachable(e);
      }
    case 'stage-cancelled':
      return [`  cancelled ${e.node}`];
    case 'stage-output':
    case 'progress':
      // Live lines only (the pretty renderer's); the outcome events say what happened.
      return [];
    case 'allow-path':
      return [`imgmake: --allow-path: the definition may also read ${e.dirs.join(', ')}`];
    case 'wait':
      return e.for === 'stage'
        ? [`imgmake: waiting: another build on this cache (pid ${e.pid}) is making ${e.node ?? 'a stage'}; its tree will be used`]
        : [`imgmake: waiting for ${WAITED_FOR[e.for]}, pid ${e.pid}, to finish with the cache`];
    case 'fetched':
      return [`imgmake: fetched ${e.fetched} of ${e.packages} packages (${formatSize(e.bytes)}) in ${seconds(e.ms)}`];
    case 'fetch-failed':
      return [`imgmake: ${e.message}`];
    case 'buildroot':
      return [`imgmake: building the buildroot pipeline ${e.pipeline} first: a stage resolves its packages in it`];
    case 'until':
      return [`imgmake: stopped after ${e.node} (--until): nothing exported`];
    case 'export-failed':
      return [`imgmake: ${e.message}`];
    case 'remote-skipped':
      return [`imgmake: the remote cache ${e.url} could not be used ${e.agoS} s ago (${e.cause}): not asked again before ${e.retryS} s`];
    case 'ostree-commit':
      return [`  ostree ${e.target}: commit ${e.commit} on ${e.ref}${e.parent ? `, parent ${e.parent}` : ' (no parent)'}`];
    case 'export':
      return [`  export ${e.target} → ${e.path}${e.mode === 'patched' ? ' (patched)' : ''}${e.ms ? ` (${seconds(e.ms)})` : ''}`];
    case 'patch':
      if (e.result === 'refused') return [`imgmake: ${e.target}: not patched (${e.reason}): ${e.message}; building it in full`];
      if (e.result === 'current') return verbose ? [`  patch  ${e.target}: the image already holds this OS tree`] : [];
      return [`  patch  ${e.target}: ${e.written} entr${e.written === 1 ? 'y' : 'ies'} written, ${e.removed} removed (${e.layers} layers compared) in ${seconds(e.ms)}`];
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
      const result = e.result;
      switch (result) {
        case 'built':
          return [`imgmake: rebuilt ${e.targets.join(', ')} in ${seconds(e.wallMs)} — ${why}; ran ${e.ran.length}${e.ran.length ? ` (${e.ran.join(', ')})` : ''}, reused ${e.reused}`];
        case 'failed':
          return [`imgmake: rebuild of ${e.targets.join(', ')} FAILED after ${seconds(e.wallMs)} — ${why}; out/ keeps the last good output`];
        case 'invalid':
          return [`imgmake: ${why}, but the definition has errors (above): nothing ran; out/ keeps the last good output`];
        case 'cancelled':
          return [`imgmake: rebuild cancelled after ${seconds(e.wallMs)} (ran ${e.ran.length} stages first)`];
        default:
          return unreachable(result);
      }
    }
    case 'timing':
      // --verbose: where the time went (src/timing.ts names the phases).
      return verbose ? [`  time   ${Object.entries(e.phases).map(([k, v]) => `${k} ${seconds(v)}`).join(', ')}`] : [];
    case 'summary':
      return [
        `${e.ok ? 'ok' : 'FAILED'}: ran ${e.ran}, cached ${e.cached}, failed ${e.failed}${e.cancelled ? `, cancelled ${e.cancelled}` : ''} in ${seconds(e.wallMs)}${e.ok && e.ran === 0 ? ' (nothing to do)' : ''}`,
      ];
    // The answers of commands that do not build: those commands print their own text.
    case 'plan-stage':
    case 'target':
    case 'image':
    case 'rule':
    case 'cache-info':
    case 'cache-tree':
    case 'cache-deb':
    case 'cache-ls':
    case 'cache-corrupt':
    case 'cache-removed':
    case 'cache-would-remove':
    case 'cache-gc':
    case 'cache-prune':
    case 'cache-verify':
    case 'clean-removed':
    case 'clean-absent':
    case 'checkpoint-export':
    case 'log':
      return [];
    default:
      return unreachable(e);
  }
}
