/**
 * The exit codes of every imgmake command: one table, imported wherever a command decides how it
 * ends, and printed by `--help`. Scripts and CI branch on these numbers; they do not change.
 */

export const EXIT_OK = 0;
/** A build, a stage, an export or another runtime step failed (the message names the path and cause). */
export const EXIT_FAILED = 1;
/** The user's input: a bad definition, an unknown target or command, a bad option. Nothing ran. */
export const EXIT_USAGE = 2;
/** Interrupted by Ctrl-C or SIGTERM (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/**
 * Diagnostics whose reason is a failure of the run, not of the input: a buildroot that did not
 * build, a mirror that could not be reached while locking, a repository whose signature did not
 * verify with its keys. They exit 1, every other one exits 2.
 */
const RUNTIME_REASONS: ReadonlySet<string> = new Set(['buildroot-failed', 'network', 'signature']);

/** How a command that stops on these diagnostics exits. */
export function exitOf(ds: readonly { reason: string }[]): number {
  return ds.some((d) => RUNTIME_REASONS.has(d.reason)) ? EXIT_FAILED : EXIT_USAGE;
}

/** The table `--help` prints and the README repeats. */
export const EXIT_CODES: ReadonlyArray<readonly [code: number, meaning: string]> = [
  [EXIT_OK, 'ok (for build: every target built and exported)'],
  [EXIT_FAILED, 'a stage, fetch, export or other runtime step failed (message: the path and the cause)'],
  [EXIT_USAGE, 'bad definition or usage: unknown command, target or option (nothing ran, the cache is untouched)'],
  [EXIT_INTERRUPTED, 'interrupted (Ctrl-C, SIGTERM)'],
];
