/**
 * `imgmake cache info|ls|gc|verify|prune`, the `--max-cache-size` limit, and the line a build's
 * automatic collection prints (the lease and the collection are the engine's: engine/build.ts).
 *
 * The work is in store/gc.ts; this module loads what it needs and prints.
 */
import { existsSync } from 'node:fs';
import type { Diagnostic } from '../diagnostic.js';
import { diagnostic } from '../diagnostic.js';
import { ancestors } from '../graph.js';
import { packagesOf } from '../packages/index.js';
import { collect, inventory, prune, verify, type Removed, type Report, type VerifyReport } from '../store/gc.js';
import { formatSize, parseSize } from '../size.js';
import { openLocalStore } from '../store/local.js';
import { cacheDirOf, definitionPath, loadContext, resolveTargets, type GlobalOptions } from './context.js';
import { out, reportDiagnostics } from './output.js';
import type { Event } from '../event.js';
import { jsonLine } from '../logging/index.js';
import { EXIT_OK } from './exit.js';

/** `IMGMAKE_MAX_CACHE_SIZE=10G`: like `--max-cache-size 10G`, which wins over it. */
export const MAX_CACHE_SIZE_ENV = 'IMGMAKE_MAX_CACHE_SIZE';

/** The size limit applied after each build, from `--max-cache-size` or the environment. */
export function maxCacheSize(o: GlobalOptions): number | undefined | Diagnostic {
  const text = o.maxCacheSize ?? process.env[MAX_CACHE_SIZE_ENV];
  if (text === undefined || text === '') return undefined;
  const what = o.maxCacheSize !== undefined ? '--max-cache-size' : MAX_CACHE_SIZE_ENV;
  return sizeOrDiagnostic(text, what);
}

function sizeOrDiagnostic(text: string, what: string): number | Diagnostic {
  const n = parseSize(text);
  if (n !== undefined) return n;
  return diagnostic('usage', `${what} ${JSON.stringify(text)} is not a size`, undefined, 'write a number of bytes with K, M, G or T (powers of 1024): 500M, 10G, 0');
}

/**
 * What the collection after a build (`--max-cache-size`) removed, said on stderr: with --json
 * the build's summary stays the last line of stdout.
 */
export function collectedLine(r: Report, maxBytes: number): void {
  process.stderr.write(`imgmake: cache over ${bytesText(maxBytes)}: ${summaryText(r)}\n`);
}

/**
 * Read-only commands look at a cache, never make one: when the folder they were pointed at does
 * not exist they say so (stderr) and report it empty. Returns whether it exists.
 */
export function cacheExists(dir: string): boolean {
  if (existsSync(dir)) return true;
  process.stderr.write(`imgmake: no cache at ${dir} (a build makes it; --cache DIR or IMGMAKE_CACHE name another)\n`);
  return false;
}

export async function cacheInfo(o: GlobalOptions): Promise<number> {
  const dir = cacheDirOf(o, definitionPath(o));
  const exists = cacheExists(dir);
  const i = exists ? await (await openLocalStore(dir)).info() : { root: dir, trees: 0, logs: 0, bytes: 0 };
  if (o.json) out(jsonLine({ type: 'cache-info', ...i, exists }));
  else out(`cache ${i.root}${exists ? '' : ' (does not exist)'}\n  trees ${i.trees}\n  logs  ${i.logs}\n  size  ${bytesText(i.bytes)}`);
  return EXIT_OK;
}

/**
 * Which targets of the current definition reach each key; undefined when there is no
 * definition (cache ls --cache DIR anywhere) or it does not load (said on stderr).
 */
async function targetsByKey(o: GlobalOptions): Promise<Map<string, string[]> | undefined> {
  if (!existsSync(definitionPath(o))) return undefined;
  const loaded = await loadContext(o, { lock: 'read', readOnly: true });
  if (!loaded.ok) {
    process.stderr.write(`imgmake: the definition does not load, so targets are not shown (imgmake plan says why)\n`);
    return undefined;
  }
  const ctx = loaded.value;
  const by = new Map<string, string[]>();
  for (const t of ctx.def.targets.values()) {
    for (const id of ancestors(ctx.graph, [ctx.graph.final(t.pipeline)])) {
      const k = ctx.keys.get(id)!.key;
      by.set(k, [...(by.get(k) ?? []), t.name]);
    }
  }
  return by;
}

export async function cacheLs(o: GlobalOptions & { debs?: boolean }): Promise<number> {
  const dir = cacheDirOf(o, definitionPath(o));
  cacheExists(dir);
  const targets = await targetsByKey(o);
  const inv = await inventory(dir);
  const trees = [...inv.trees.values()].sort((a, b) => b.lastUse - a.lastUse || a.rec.node.localeCompare(b.rec.node));
  const debs = [...inv.debs.values()];
  const debBytes = debs.reduce((n, d) => n + d.bytes, 0);
  if (o.json) {
    for (const t of trees) {
      const { node, key, bytes, layers, createdAt } = t.rec;
      out(jsonLine({ type: 'cache-tree', node, key, bytes, layers: layers.length, createdAt, lastUse: new Date(t.lastUse).toISOString(), complete: t.complete, ...(targets ? { targets: targets.get(key) ?? [] } : {}) }));
    }
    if (o.debs) for (const d of debs) out(jsonLine({ type: 'cache-deb', sha256: d.sha256, name: d.name, version: d.version, bytes: d.bytes, lastUse: new Date(d.lastUse).toISOString() }));
    out(jsonLine({ type: 'cache-ls', root: dir, trees: trees.length, debs: debs.length, debBytes, bytes: inv.bytes }));
    return EXIT_OK;
  }
  const rows = trees.map((t) => [t.rec.node, t.rec.key.slice(0, 12), bytesText(t.rec.bytes), when(t.lastUse), targets ? (targets.get(t.rec.key) ?? []).join(',') || '-' : '', t.complete ? '' : '(a layer below is missing: not cached)']);
  table([['NODE', 'KEY', 'SIZE', 'LAST USE', targets ? 'TARGETS' : '', ''], ...rows]);
  if (o.debs) table(debs.map((d) => [`${d.name ?? '?'} ${d.version ?? ''}`, d.sha256.slice(0, 12), bytesText(d.bytes), when(d.lastUse)]));
  out(`${trees.length} tree${trees.length === 1 ? '' : 's'}, ${debs.length} .deb${debs.length === 1 ? '' : 's'} (${bytesText(debBytes)}${debs.length && !o.debs ? '; --debs lists them' : ''}); ${bytesText(inv.bytes)} in all, in ${dir}`);
  return EXIT_OK;
}

export async function cacheGc(o: GlobalOptions & { maxSize?: string; dryRun?: boolean }): Promise<number> {
  if (o.maxSize === undefined) return reportDiagnostics([diagnostic('usage', 'cache gc needs --max-size SIZE', undefined, 'write imgmake cache gc --max-size 10G (0 removes everything no build is using)')], o);
  const max = sizeOrDiagnostic(o.maxSize, '--max-size');
  if (typeof max !== 'number') return reportDiagnostics([max], o);
  const dir = cacheDirOf(o, definitionPath(o));
  if (!cacheExists(dir)) return EXIT_OK;
  if (o.dryRun) {
    report('cache-gc', await collect(dir, max, { dryRun: true }), o, true);
    return EXIT_OK;
  }
  await openLocalStore(dir);
  report('cache-gc', await collect(dir, max), o);
  return EXIT_OK;
}

export async function cachePrune(o: GlobalOptions & { keep?: string[] }): Promise<number> {
  const names = o.keep ?? [];
  if (names.length === 0) return reportDiagnostics([diagnostic('usage', 'cache prune needs --keep TARGET…', undefined, 'name the targets whose trees and packages to keep: imgmake cache prune --keep qcow2')], o);
  const loaded = await loadContext(o, { lock: 'read' });
  if (!loaded.ok) return reportDiagnostics(loaded.error, o);
  const ctx = loaded.value;
  const finals = resolveTargets(ctx, names);
  if (!finals.ok) return reportDiagnostics(finals.error, o);
  const needed = [...ancestors(ctx.graph, finals.value)];
  const keys = new Set<string>(needed.map((id) => ctx.keys.get(id)!.key));
  const debs = new Set(packagesOf(needed.map((id) => ctx.graph.stage(id).stage)).map((p) => p.sha256));
  report('cache-prune', await prune(ctx.cacheDir, { keys, debs }), o);
  return EXIT_OK;
}

export async function cacheVerify(o: GlobalOptions): Promise<number> {
  const dir = cacheDirOf(o, definitionPath(o));
  await openLocalStore(dir);
  const r = await verify(dir);
  for (const c of r.corrupt) {
    if (o.json) out(jsonLine({ type: 'cache-corrupt', ...c }));
    else out(`corrupt ${c.kind} ${c.name} (${c.key.slice(0, 12)}): ${c.why}`);
  }
  if (!o.json) {
    out(`checked ${r.checked.trees} layer${r.checked.trees === 1 ? '' : 's'}, ${r.checked.debs} .deb${r.checked.debs === 1 ? '' : 's'}, ${r.checked.entries} other entries${r.squashes ? `, ${r.squashes} squash${r.squashes === 1 ? '' : 'es'}` : ''}${r.unchecked ? `; ${r.unchecked} layer${r.unchecked === 1 ? '' : 's'} committed without a digest could not be checked` : ''}`);
  }
  report('cache-verify', r, o);
  return EXIT_OK;
}

function report(type: 'cache-gc' | 'cache-prune' | 'cache-verify', r: Report | VerifyReport, o: GlobalOptions, dry = false): void {
  for (const x of r.removed) {
    if (o.json) out(jsonLine({ type: dry ? 'cache-would-remove' : 'cache-removed', ...x }));
    else out(`${dry ? 'would remove' : 'removed'} ${x.kind} ${x.name ?? ''}${x.name ? ' ' : ''}(${x.key.slice(0, 12)}) ${bytesText(x.bytes)}`);
  }
  if (o.json) out(jsonLine(totals(type, r, dry)));
  else out(dry ? `--dry-run: ${summaryText(r).replace(/^removed/, 'would remove')}; nothing was removed` : summaryText(r));
}

function totals(type: 'cache-gc' | 'cache-prune' | 'cache-verify', r: Report | VerifyReport, dry: boolean): Event {
  const base = { before: r.before, after: r.after, removed: r.removed.length, skipped: r.skipped };
  if (type !== 'cache-verify') return { type, ...base, ...(dry ? { dryRun: true } : {}) };
  const v = r as VerifyReport;
  return { type, ...base, corrupt: v.corrupt.length, checked: v.checked, unchecked: v.unchecked, squashes: v.squashes };
}

function summaryText(r: Report): string {
  const n = (kind: Removed['kind']) => r.removed.filter((x) => x.kind === kind).length;
  const what = [`${n('tree')} tree${n('tree') === 1 ? '' : 's'}`, `${n('deb')} .deb${n('deb') === 1 ? '' : 's'}`, ...(n('layer') ? [`${n('layer')} stray layer${n('layer') === 1 ? '' : 's'}`] : [])];
  const skipped = r.skipped ? `; ${r.skipped} kept because a running build uses them` : '';
  return `removed ${what.join(', ')}: ${bytesText(r.before)} → ${bytesText(r.after)}${skipped}`;
}

/** Powers of 1024, as sizes are written (`--max-size 10G` is 10 GiB): size.ts's one format. */
export const bytesText = formatSize;

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function table(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) out(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}
