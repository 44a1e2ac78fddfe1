/**
 * `imgmake clean [--all --yes]`: removes out/ (the exported targets), and with `--all` the cache
 * too (`--all`, not `--cache`: that is the global option naming the cache). The cache is the
 * expensive part (a Debian tree takes minutes to rebuild), so it goes only with `--yes`; without
 * it the command says what it would remove and exits 2.
 *
 * - A symlink is never followed: an out/ or cache that is itself a symlink is refused (removing
 *   the link's target would reach outside the project); inside them `rm --one-file-system`
 *   unlinks links and never walks into a mount.
 * - The cache goes through store/gc.ts under gc.lock, skipping whatever a running build leases
 *   (it says so); out/ is replaced as a whole by each export, so removing it mid-build costs
 *   that build nothing but its earlier exports.
 */
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { clearCache, removeTree } from '../store/gc.js';
import { bytesText } from './cache.js';
import { cacheDirOf, definitionPath, type GlobalOptions } from './context.js';
import { EXIT_FAILED, EXIT_OK } from './exit.js';
import { out, reportDiagnostics } from './output.js';
import type { Event } from '../event.js';
import { jsonLine } from '../logging/index.js';

export interface CleanOptions {
  /** Also remove the cache. */
  all?: boolean;
  /** Confirms `--all`. */
  yes?: boolean;
}

export async function cleanCommand(o: GlobalOptions & CleanOptions): Promise<number> {
  const file = definitionPath(o);
  if (o.out === undefined && !existsSync(file)) {
    return reportDiagnostics([diagnostic('usage', `no definition at ${file}: no out/ to clean`, undefined, 'run imgmake clean in a project (or below it), or name its folder with -C DIR')], o);
  }
  const outDir = resolve(o.out ?? resolve(dirname(file), 'out'));
  const cacheDir = cacheDirOf(o, file);
  const refused = [notALink(outDir, '--out'), ...(o.all ? [notALink(cacheDir, '--cache')] : [])].filter((d): d is Diagnostic => d !== undefined);
  if (refused.length) return reportDiagnostics(refused, o);
  if (o.all && !o.yes) {
    return reportDiagnostics(
      [diagnostic('usage', `imgmake clean --all removes the cache ${cacheDir}: every tree and .deb in it (rebuilding them can take many minutes)`, undefined, 'add --yes to confirm; imgmake cache gc --max-size SIZE only trims it')],
      o,
    );
  }
  try {
    if (existsSync(outDir)) {
      await removeTree(outDir);
      say(o, { type: 'clean-removed', what: 'out', path: outDir }, `imgmake: removed ${outDir}`);
    } else say(o, { type: 'clean-absent', what: 'out', path: outDir }, `imgmake: no ${outDir}: nothing to remove`);
    if (o.all) {
      if (!existsSync(cacheDir)) {
        say(o, { type: 'clean-absent', what: 'cache', path: cacheDir }, `imgmake: no cache at ${cacheDir}: nothing to remove`);
        return EXIT_OK;
      }
      const { report, busy } = await clearCache(cacheDir);
      // Empty now, unless a build began meanwhile (then it stays, with that build's files).
      if (!busy) await rmdir(cacheDir).catch(() => undefined);
      say(
        o,
        { type: 'clean-removed', what: 'cache', path: cacheDir, before: report.before, busy },
        busy
          ? `imgmake: ${busy} running build${busy === 1 ? ' uses' : 's use'} the cache ${cacheDir}: removed everything else (${bytesText(report.before - report.after)}); what ${busy === 1 ? 'it uses' : 'they use'} stays`
          : `imgmake: removed the cache ${cacheDir} (${bytesText(report.before)})`,
      );
    }
    return EXIT_OK;
  } catch (e) {
    process.stderr.write(`imgmake: clean failed: ${(e as Error).message}\n`);
    return EXIT_FAILED;
  }
}

/** A usage error when `path` is a symlink: clean removes what is there, never what a link points at. */
function notALink(path: string, flag: string): Diagnostic | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st?.isSymbolicLink()) return undefined;
  return diagnostic('usage', `${path} is a symlink (to ${readlinkSync(path)}): imgmake clean does not follow it`, undefined, `remove the link or what it points at yourself, or name the real folder with ${flag}`);
}

function say(o: GlobalOptions, event: Extract<Event, { type: 'clean-removed' | 'clean-absent' }>, text: string): void {
  out(o.json ? jsonLine(event) : text);
}
