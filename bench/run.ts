/**
 * The benchmark: how fast imgmake is, measured side by side with what the same machine does
 * without it, in the same run.
 *
 *     npm run bench -- --quick            examples/hello (under a minute; CI runs it)
 *     npm run bench                       examples/debian-12 qcow2 (by hand, as root: ~15 min a run)
 *     options: --runs N  --out DIR (default bench/results)
 *     BENCH_LOGS=DIR: every imgmake build's JSON events appended to DIR/imgmake.jsonl
 *
 * Each scenario runs several times; the report gives the median and the spread (min–max) and,
 * where a baseline was measured in the same run, the ratio to it. Writes DIR/latest.json,
 * DIR/latest.md (the table the README links) and DIR/latest.svg (a bar chart). The machine is
 * noisy: compare figures within one report, never across reports.
 *
 * The full mode, in this order (the disk-hungry baselines first, each big directory removed once
 * measured): the floor (bench/floor-debian.sh) cold and from the hostname on; copy-per-stage
 * (the same script with a `cp -a` checkpoint per step) cold and from the hostname on; mkosi
 * (bench/mkosi.sh; a note of why when it cannot build here); imgmake cold, cold with the .debs
 * cached, no-op, late and early edits; the cache's size against the unique bytes it holds; a
 * hostname saved under `imgmake watch`; remote restore from a real nginx on loopback. imgmake's
 * figures are the build's own `wallMs` (Node's start-up and module loading are not in them;
 * the "whole process" column has them, and the no-op's target is on it); the scripts' are whole
 * processes. See docs/bench.md.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, createReadStream } from 'node:fs';
import { chmod, cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const bin = join(repo, 'bin', 'imgmake.js');

export interface Scenario {
  name: string;
  /** What was measured, in words. */
  label: string;
  /** Milliseconds, one per run. */
  samples: number[];
  /** Another scenario of this report that this one is compared with. */
  baseline?: string;
  /** The target the table checks: a ratio to the baseline, an absolute time, or the whole process's time. */
  target?: { ratio?: number; ms?: number; processMs?: number };
  /** Why a scenario could not be measured in this run. */
  missing?: string;
  /** imgmake scenarios: the whole command's milliseconds, Node's start-up included, one per run. */
  processMs?: number[];
  /** imgmake scenarios: where the time went (the `timing` event and each ran stage), medians over the runs. */
  breakdown?: Breakdown;
}

/** Medians, in milliseconds, of each phase (src/timing.ts) and of each ran stage's set-up, run and commit. */
export interface Breakdown {
  phases: Record<string, number>;
  stages: { node: string; setup: number; run: number; commit: number }[];
  /** How many runs used V8's code cache of the CLI, compiled without one, or had it refused (bin/imgmake.js). */
  codeCache?: Record<string, number>;
}

export interface SizeFigure {
  name: string;
  label: string;
  bytes: number;
  baseline?: string;
  target?: { ratio: number };
}

export interface Report {
  date: string;
  mode: 'quick' | 'full';
  machine: { cpus: number; model: string; memoryGiB: number; kernel: string };
  runs: number;
  scenarios: Scenario[];
  sizes: SizeFigure[];
}

// ---------------------------------------------------------------------------------------------
// Statistics and the report's three renderings (pure).

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmtMs = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);
const fmtBytes = (b: number): string => (b < 1e6 ? `${(b / 1e3).toFixed(1)} kB` : b < 1e9 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e9).toFixed(2)} GB`);

/** The ratio to the baseline and whether the target is met, when both are known. */
export function verdict(s: Scenario, all: Scenario[]): { ratio?: number; met?: boolean } {
  if (s.missing || s.samples.length === 0) return {};
  const m = median(s.samples);
  const base = s.baseline ? all.find((x) => x.name === s.baseline) : undefined;
  const ratio = base && !base.missing && base.samples.length ? m / median(base.samples) : undefined;
  if (s.target?.ms !== undefined) return { ...(ratio !== undefined ? { ratio } : {}), met: m <= s.target.ms };
  if (s.target?.processMs !== undefined && s.processMs?.length) return { ...(ratio !== undefined ? { ratio } : {}), met: median(s.processMs) <= s.target.processMs };
  if (s.target?.ratio !== undefined && ratio !== undefined) return { ratio, met: ratio <= s.target.ratio };
  return ratio !== undefined ? { ratio } : {};
}

export function markdown(r: Report): string {
  const lines = [
    `# imgmake benchmark (${r.mode === 'quick' ? 'examples/hello, --quick' : 'examples/debian-12 qcow2'})`,
    '',
    `${r.date}; ${r.machine.cpus} × ${r.machine.model}, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}; ${r.runs} runs per scenario.`,
    'Ratios are to a baseline measured in the same run; compare figures within this table only.',
    '',
    '| scenario | median | spread | vs. baseline | ratio | target | met | whole process (spread) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const s of r.scenarios) {
    if (s.missing) {
      lines.push(`| ${s.label} | — | — | ${s.baseline ?? ''} | — | ${targetText(s)} | not measured: ${s.missing} | |`);
      continue;
    }
    const v = verdict(s, r.scenarios);
    const spread = `${fmtMs(Math.min(...s.samples))}–${fmtMs(Math.max(...s.samples))}`;
    lines.push(
      `| ${s.label} | ${fmtMs(median(s.samples))} | ${spread} | ${s.baseline ?? ''} | ${v.ratio !== undefined ? `${v.ratio.toFixed(2)}×` : ''} | ${targetText(s)} | ${v.met === undefined ? '' : v.met ? 'yes' : '**no**'} | ${s.processMs?.length ? `${fmtMs(median(s.processMs))} (${fmtMs(Math.min(...s.processMs))}–${fmtMs(Math.max(...s.processMs))})` : ''} |`,
    );
  }
  lines.push('', '| size | bytes | vs. baseline | ratio | target | met |', '|---|---|---|---|---|---|');
  for (const z of r.sizes) {
    const base = z.baseline ? r.sizes.find((x) => x.name === z.baseline) : undefined;
    const ratio = base && base.bytes > 0 ? z.bytes / base.bytes : undefined;
    const met = ratio !== undefined && z.target ? ratio <= z.target.ratio : undefined;
    lines.push(
      `| ${z.label} | ${fmtBytes(z.bytes)} | ${z.baseline ?? ''} | ${ratio !== undefined ? `${ratio.toFixed(2)}×` : ''} | ${z.target ? `≤ ${z.target.ratio}×` : ''} | ${met === undefined ? '' : met ? 'yes' : '**no**'} |`,
    );
  }
  for (const s of r.scenarios.filter((x) => x.breakdown && ['noop', 'late'].includes(x.name))) lines.push('', ...breakdownLines(s));
  return `${lines.join('\n')}\n`;
}

/** Where one scenario's time went: its phases (whole process), then each stage that ran. */
export function breakdownLines(s: Scenario): string[] {
  const b = s.breakdown!;
  const phases = Object.entries(b.phases);
  const out = [
    `Where the time of "${s.label}" went (medians; the phases add up to the time from the process's start to the summary, src/timing.ts says what each covers):`,
    '',
    `| ${phases.map(([k]) => k).join(' | ')} |`,
    `|${phases.map(() => '---').join('|')}|`,
    `| ${phases.map(([, v]) => fmtMs(v)).join(' | ')} |`,
  ];
  const cc = Object.entries(b.codeCache ?? {});
  if (cc.length) out.push('', `V8's code cache of the CLI (bin/imgmake.js): ${cc.map(([k, n]) => `${k} in ${n} of ${s.samples.length} runs`).join(', ')}.`);
  if (b.stages.length) {
    out.push('', '| stage | set-up | run | commit |', '|---|---|---|---|');
    for (const st of b.stages) out.push(`| ${st.node} | ${fmtMs(st.setup)} | ${fmtMs(st.run)} | ${fmtMs(st.commit)} |`);
  }
  return out;
}

function targetText(s: Scenario): string {
  if (s.target?.ms !== undefined) return `≤ ${fmtMs(s.target.ms)}`;
  if (s.target?.processMs !== undefined) return `≤ ${fmtMs(s.target.processMs)} whole process`;
  if (s.target?.ratio !== undefined) return `≤ ${s.target.ratio}× ${s.baseline}`;
  return '';
}

/** Horizontal bars of each scenario's median, the spread as a thin line; log scale. */
export function svg(r: Report): string {
  const rows = r.scenarios.filter((s) => !s.missing && s.samples.length);
  // Room for the longest label (about 6.5 px a character at 12 px sans-serif).
  const left = Math.max(300, Math.ceil(Math.max(...rows.map((s) => s.label.length)) * 6.5) + 10);
  const width = left + 600;
  const rowH = 26;
  const height = 40 + rows.length * rowH;
  const max = Math.max(...rows.map((s) => Math.max(...s.samples)), 10);
  const min = Math.min(...rows.map((s) => Math.min(...s.samples)), 1);
  const x = (ms: number): number => left + ((Math.log10(Math.max(ms, min)) - Math.log10(min) + 0.1) / (Math.log10(max) - Math.log10(min) + 0.2)) * (width - left - 80);
  const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows.map((s, i) => {
    const y = 30 + i * rowH;
    const m = median(s.samples);
    const imgmake = !/^floor|^copy|^mkosi/.test(s.name);
    return [
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${esc(s.label)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${(x(m) - left).toFixed(1)}" height="16" fill="${imgmake ? '#3b6ea8' : '#a0a0a0'}"/>`,
      `<line x1="${x(Math.min(...s.samples)).toFixed(1)}" x2="${x(Math.max(...s.samples)).toFixed(1)}" y1="${y + 11}" y2="${y + 11}" stroke="#222"/>`,
      `<text x="${(x(m) + 6).toFixed(1)}" y="${y + 15}">${fmtMs(m)}</text>`,
    ].join('');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<text x="10" y="18" font-weight="bold">imgmake ${r.mode} benchmark, ${r.date.slice(0, 10)}: median wall time (log scale; blue imgmake, grey baselines)</text>
${bars.join('\n')}
</svg>
`;
}

// ---------------------------------------------------------------------------------------------
// Measuring.

interface Build {
  wallMs: number;
  ran: number;
  processMs: number;
  phases: Record<string, number>;
  codeCache?: string;
  stages: Breakdown['stages'];
}

function imgmake(project: string, args: string[]): Build {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, '--json', '-f', join(project, 'imgmake.yaml'), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
  const summary = events.find((e) => e.type === 'summary') as { wallMs: number; ran: number; ok: boolean } | undefined;
  const timing = events.find((e) => e.type === 'timing');
  const phases = (timing?.phases ?? {}) as Record<string, number>;
  const stages = events
    .filter((e) => e.type === 'stage' && e.status === 'ran')
    .map((e) => ({ node: String(e.node), setup: Number(e.setupMs ?? 0), run: Number(e.ms), commit: Number(e.commitMs ?? 0) }));
  if (process.env.BENCH_LOGS) appendFileSync(join(process.env.BENCH_LOGS, 'imgmake.jsonl'), `{"bench":${JSON.stringify(args)}}\n${r.stdout}`);
  if (r.status !== 0 || !summary?.ok) throw new Error(`imgmake ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { wallMs: summary.wallMs, ran: summary.ran, processMs: performance.now() - t0, phases, stages, codeCache: timing?.codeCache };
}

/** A build that had to run stages: a scenario that ran none measured the wrong thing (a current out/). */
function mustRun(b: Build, what: string): Build {
  if (b.ran === 0) throw new Error(`bench: "${what}" ran no stage: it measured nothing (is something left in the project from the run before?)`);
  return b;
}

/** n builds: their own wallMs as the samples, and their whole processes' times. */
function builds(n: number, f: (i: number) => Build): Pick<Scenario, 'samples' | 'processMs' | 'breakdown'> {
  return buildFigures(Array.from({ length: n }, (_, i) => f(i)));
}

/** Builds' own wallMs as the samples, their whole processes' times and their breakdown. */
function buildFigures(all: Build[]): Pick<Scenario, 'samples' | 'processMs' | 'breakdown'> {
  return { samples: all.map((b) => b.wallMs), processMs: all.map((b) => b.processMs), breakdown: breakdownOf(all) };
}

/** Each phase's and each stage's median over the builds (a stage that ran in only some of them: over those). */
export function breakdownOf(all: Pick<Build, 'phases' | 'stages' | 'codeCache'>[]): Breakdown {
  const phases: Record<string, number> = {};
  for (const name of new Set(all.flatMap((b) => Object.keys(b.phases)))) phases[name] = median(all.map((b) => b.phases[name] ?? 0));
  const nodes = [...new Set(all.flatMap((b) => b.stages.map((s) => s.node)))];
  const stages = nodes.map((node) => {
    const of = all.flatMap((b) => b.stages.filter((s) => s.node === node));
    return { node, setup: median(of.map((s) => s.setup)), run: median(of.map((s) => s.run)), commit: median(of.map((s) => s.commit)) };
  });
  const codeCache: Record<string, number> = {};
  for (const b of all) if (b.codeCache) codeCache[b.codeCache] = (codeCache[b.codeCache] ?? 0) + 1;
  return { phases, stages, ...(Object.keys(codeCache).length ? { codeCache } : {}) };
}

function timed(cmd: string, args: string[], env: Record<string, string> = {}): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t0;
}

/** Waits until the machine has written back what earlier runs left dirty (`sync`), untimed. */
function settle(): void {
  execFileSync('sync');
}

const du = (path: string): number => Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);

async function copyExample(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `imgmake-bench-${name}-`));
  const src = join(repo, 'examples', name);
  await cp(src, dir, { recursive: true, filter: (p) => !/\/(cache|out|imgmake\.lock)(\/|$)/.test(p.slice(src.length)) });
  return dir;
}

function times(n: number, f: (i: number) => number): number[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

async function quick(runs: number): Promise<Pick<Report, 'scenarios' | 'sizes'>> {
  const project = await copyExample('hello');
  const cache = join(project, 'cache');
  const floorOut = join(project, 'floor');
  const checkpoints = join(project, 'checkpoints');
  try {
    const scenarios: Scenario[] = [];
    const floor = (from: string[], env: Record<string, string> = {}) => timed('sh', [join(repo, 'bench', 'floor-hello.sh'), project, floorOut, 'hello', ...from], env);
    scenarios.push({ name: 'floor-cold', label: 'floor: the same tree and tarball by a shell script', samples: times(runs, () => floor([])) });
    scenarios.push({ name: 'floor-late', label: 'floor: redo from the hostname on', samples: times(runs, () => floor(['hostname'])) });
    scenarios.push({
      name: 'copy-per-stage',
      label: 'copy-per-stage: the floor plus cp -a of the tree per stage',
      samples: times(runs, () => floor([], { CHECKPOINTS: checkpoints })),
    });
    // Cold means nothing to reuse: out/ goes too (a current out/hello is enough on its own: the
    // tarball's stage delivered it there, and a build with it in place has nothing to do).
    const cold = times(runs, () => {
      execFileSync('rm', ['-rf', cache, join(project, 'out')]);
      return mustRun(imgmake(project, ['build', 'hello']), 'cold').wallMs;
    });
    scenarios.push({ name: 'cold', label: 'imgmake cold: empty cache', samples: cold, baseline: 'floor-cold', target: { ratio: 1.15 } });
    scenarios.push({ name: 'noop', label: 'imgmake no-op: nothing changed', ...builds(runs, () => imgmake(project, ['build', 'hello'])), target: { processMs: 300 } });
    scenarios.push({
      name: 'late',
      label: 'imgmake late edit: hostname changed (7 stages)',
      ...builds(runs, (i) => imgmake(project, ['--var', `hostname=late-${i}`, 'build', 'hello'])),
      baseline: 'floor-late',
      target: { ratio: 1.15 },
    });
    const motd = join(project, 'files', 'motd');
    const text = await readFile(motd, 'utf8');
    scenarios.push({
      name: 'early',
      label: 'imgmake early edit: a copied-in file changed (8 stages)',
      samples: times(runs, (i) => {
        execFileSync('sh', ['-c', `printf '%s\\nedit %s\\n' "$1" "$2" > "$3"`, 'sh', text, String(i), motd]);
        return mustRun(imgmake(project, ['build', 'hello']), 'early edit').wallMs;
      }),
      baseline: 'floor-cold',
    });
    const tree = join(floorOut, 'tree');
    const sizes: SizeFigure[] = [
      { name: 'tree', label: 'unique bytes: the final tree', bytes: du(tree) },
      { name: 'cache', label: `imgmake cache after ${runs * 3 + 1} builds`, bytes: du(cache), baseline: 'tree' },
      { name: 'checkpoints', label: 'copy-per-stage checkpoints of one build', bytes: du(checkpoints), baseline: 'tree' },
    ];
    return { scenarios, sizes };
  } finally {
    await rm(project, { recursive: true, force: true });
  }
}

/** Bytes a disk holds for `path` (allocated blocks: a sparse 3 GiB raw disk counts its data). */
const duAllocated = (path: string): number => Number(execFileSync('du', ['-s', '-B1', path], { encoding: 'utf8' }).split('\t')[0]);

/**
 * The unique bytes under `dir`: allocated bytes of its regular files, each distinct content
 * counted once (hardlinks once; files of one size and allocation hashed to find copies). What
 * an ideal file-level content store of the same trees would need.
 */
export async function uniqueBytes(dir: string): Promise<number> {
  const groups = new Map<string, { path: string; bytes: number }[]>();
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await lstat(p, { bigint: true });
        const inode = `${st.dev}:${st.ino}`;
        if (seen.has(inode)) continue;
        seen.add(inode);
        const bytes = Number(st.blocks) * 512;
        const k = `${st.size}:${bytes}`;
        const g = groups.get(k);
        if (g) g.push({ path: p, bytes });
        else groups.set(k, [{ path: p, bytes }]);
      }
    }
  };
  await walk(dir);
  let total = 0;
  for (const g of groups.values()) {
    if (g.length === 1) {
      total += g[0]!.bytes;
      continue;
    }
    const digests = new Set<string>();
    for (const f of g) {
      const h = createHash('sha256');
      for await (const chunk of createReadStream(f.path)) h.update(chunk as Buffer);
      const d = h.digest('hex');
      if (!digests.has(d)) total += f.bytes;
      digests.add(d);
    }
  }
  return total;
}

/** Why a timed command failed: its exit and the tail of what it said. */
function timedOrWhy(cmd: string, args: string[], env: Record<string, string> = {}): { ms: number } | { why: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  if (r.status === 0) return { ms: performance.now() - t0 };
  const last = `${r.stderr ?? ''}`.trim().split('\n').at(-1) ?? '';
  return { why: `exit ${r.status ?? r.signal} after ${fmtMs(performance.now() - t0)}: ${last}` };
}

/**
 * `imgmake watch TARGET` on the project: for each run, the hostname in imgmake.yaml is saved with
 * a new value, and the time from the save to the watcher's `rebuild` event (a new image exported
 * to out/) is one sample. With `patch`, `watch --patch`, and the time from the save to the
 * `export` event of the patched image (in place in out/, bootable; the build then completes the
 * image's record); one edit before the samples, so each sample is a patch with the standby image
 * in place, as in an edit loop (docs/patch.md).
 */
async function watchSamples(project: string, runs: number, o: { target: string; patch?: boolean } = { target: 'qcow2' }): Promise<number[]> {
  const child = spawn(process.execPath, [bin, '--json', '-f', join(project, 'imgmake.yaml'), 'watch', o.target, '--locked', ...(o.patch ? ['--patch'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: Record<string, unknown>[] = [];
  let buffer = '';
  let stderr = '';
  let wake: (() => void) | undefined;
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('{')) seen.push(JSON.parse(line) as Record<string, unknown>);
    }
    wake?.();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let from = 0;
  const next = async (match: (e: Record<string, unknown>) => boolean, what: string, ms = 600_000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = seen.findIndex((e, k) => k >= from && match(e));
      if (i >= 0) {
        from = i + 1;
        return seen[i]!;
      }
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`imgmake watch: no ${what} (exit ${child.exitCode}):\n${stderr.slice(-2000)}`);
      await new Promise<void>((ok) => {
        wake = ok;
        setTimeout(ok, 1000);
      });
    }
  };
  const file = join(project, 'imgmake.yaml');
  const original = await readFile(file, 'utf8');
  if (!original.includes('  hostname: debian-vm\n')) throw new Error('examples/debian-12/imgmake.yaml no longer sets hostname: debian-vm');
  try {
    await next((e) => e.type === 'rebuild', 'first build');
    await next((e) => e.type === 'watch' && e.state === 'idle', 'idle state');
    const samples: number[] = [];
    for (let i = o.patch ? -1 : 0; i < runs; i++) {
      const saved = performance.now();
      await writeFile(file, original.replace('  hostname: debian-vm\n', `  hostname: watch-${i + 1}\n`));
      let ready: number | undefined;
      if (o.patch) {
        const patched = await next((x) => x.type === 'patch', `patch after edit ${i}`);
        if (patched.result !== 'patched') throw new Error(`imgmake watch --patch: edit ${i} was not patched: ${JSON.stringify(patched)}`);
        await next((x) => x.type === 'export', `patched image after edit ${i}`);
        ready = performance.now();
      }
      const e = await next((x) => x.type === 'rebuild', `rebuild after edit ${i}`);
      if (i >= 0) samples.push((ready ?? performance.now()) - saved);
      if (e.result !== 'built') throw new Error(`imgmake watch: the rebuild after edit ${i} ended ${String(e.result)}:\n${stderr.slice(-2000)}`);
      await next((x) => x.type === 'watch' && x.state === 'idle', 'idle state');
    }
    return samples;
  } finally {
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    if (child.exitCode === null) await once(child, 'exit');
    clearTimeout(timer);
    await writeFile(file, original);
  }
}


/**
 * Remote restore: a real nginx with DAV on loopback is filled by one build with `--remote` on
 * an empty cache; then each run builds again with an empty local cache and the warm remote.
 */
async function remoteSamples(project: string, runs: number, work: string): Promise<Pick<Scenario, 'samples' | 'processMs'> & { ran: number; bytes: number }> {
  const { DAV, startNginx } = await import('../test/helpers/nginx.js');
  await chmod(work, 0o755);
  const nginx = await startNginx(join(work, 'nginx'), DAV);
  try {
    await chmod(nginx.www, 0o777);
    const url = `http://127.0.0.1:${nginx.port}/cache`;
    const fill = join(work, 'fill-cache');
    imgmake(project, ['--cache', fill, '--remote', url, 'build', 'qcow2', '--locked']);
    await rm(fill, { recursive: true, force: true });
    const restored = join(work, 'restore-cache');
    let ran = 0;
    const measured = builds(runs, () => {
      execFileSync('rm', ['-rf', restored]);
      const b = imgmake(project, ['--cache', restored, '--remote', url, 'build', 'qcow2', '--locked']);
      ran = Math.max(ran, b.ran);
      return b;
    });
    await rm(restored, { recursive: true, force: true });
    return { ...measured, ran, bytes: duAllocated(nginx.www) };
  } finally {
    await nginx.stop();
  }
}

async function full(runs: number): Promise<Pick<Report, 'scenarios' | 'sizes'>> {
  const project = await copyExample('debian-12');
  const cache = join(project, 'cache');
  const work = await mkdtemp(join('/var/tmp', 'imgmake-bench-work-'));
  const floorOut = join(work, 'floor');
  const checkpoints = join(work, 'checkpoints');
  const log = (what: string) => process.stderr.write(`bench: ${new Date().toISOString().slice(11, 19)} ${what}\n`);
  try {
    const scenarios: Scenario[] = [];
    const sizes: SizeFigure[] = [];
    // Copies of the scripts: bash reads a script as it runs it, and a run lasts most of an hour.
    const script = (name: string) => join(work, name);
    for (const name of ['floor-debian.sh', 'mkosi.sh']) await cp(join(repo, 'bench', name), script(name));
    const floor = (hostname: string, from: string[], env: Record<string, string> = {}) =>
      timed('bash', [script('floor-debian.sh'), project, floorOut, hostname, ...from], env);

    // The baselines first, while the disk is empty: copy-per-stage needs a tree per step.
    log('floor');
    scenarios.push({ name: 'floor-cold', label: 'floor: mmdebstrap from the mirror, config, mkfs, GRUB, qemu-img (a shell script)', samples: times(runs, () => floor('debian-vm', [])) });
    sizes.push({ name: 'floor-tree', label: 'floor: the root tree (unique bytes of the final tree)', bytes: duAllocated(join(floorOut, 'tree')) });
    sizes.push({ name: 'floor-image', label: "floor's disk.qcow2", bytes: duAllocated(join(floorOut, 'disk.qcow2')) });
    log('copy-per-stage');
    scenarios.push({
      name: 'copy-per-stage',
      label: 'copy-per-stage: the floor plus cp -a of the tree after each of its 19 steps',
      samples: times(runs, () => floor('debian-vm', [], { CHECKPOINTS: checkpoints })),
      baseline: 'floor-cold',
    });
    sizes.push({ name: 'checkpoints', label: 'copy-per-stage: checkpoints of one cold build', bytes: duAllocated(checkpoints), baseline: 'floor-tree' });
    scenarios.push({
      name: 'copy-late',
      label: 'copy-per-stage: hostname edit (check the tree out, cp -a after each step)',
      samples: times(runs, (i) => floor(`late-copy-${i}`, ['hostname'], { CHECKPOINTS: checkpoints })),
      baseline: 'floor-late',
    });
    await rm(checkpoints, { recursive: true, force: true });

    log('mkosi');
    const mkosiDir = join(work, 'mkosi');
    const mkosi = (mode: string[]) => timedOrWhy('bash', [script('mkosi.sh'), project, mkosiDir, 'debian-vm', ...mode]);
    const mk = mkosi([]);
    if ('ms' in mk) {
      // It builds here: cold (its package cache warm after the first run), then hostname edits.
      const ok = (x: { ms: number } | { why: string }): number[] => ('ms' in x ? [x.ms] : []);
      const cold = [mk.ms, ...Array.from({ length: runs - 1 }, () => ok(mkosi([]))).flat()];
      scenarios.push({ name: 'mkosi-cold', label: 'mkosi 14 cold (its package cache warm after the first run)', samples: cold, baseline: 'floor-cold' });
      const late = Array.from({ length: runs }, (_, i) => ok(timedOrWhy('bash', [script('mkosi.sh'), project, mkosiDir, `late-mkosi-${i}`, 'incremental']))).flat();
      scenarios.push({ name: 'mkosi-late', label: 'mkosi 14 hostname edit (--incremental)', samples: late, baseline: 'floor-late' });
    } else {
      const missing = `mkosi 14 cannot build a bootable disk here: it mounts the ESP it made through a loop device, and this kernel has no vfat (no modules) — ${mk.why} (see docs/bench.md)`;
      scenarios.push({ name: 'mkosi-cold', label: 'mkosi 14 cold', samples: [], baseline: 'floor-cold', missing });
      scenarios.push({ name: 'mkosi-late', label: 'mkosi 14 hostname edit', samples: [], baseline: 'floor-late', missing: 'mkosi could not build the image (above)' });
    }
    await rm(mkosiDir, { recursive: true, force: true });

    // Global options (--var) go before the command, build's own (--locked) after it.
    const build = (flags: string[] = [], global: string[] = []) => imgmake(project, [...global, 'build', 'qcow2', ...flags]);
    log('imgmake cold');
    scenarios.push({
      name: 'cold',
      label: 'imgmake cold: empty cache, packages not downloaded (lock included)',
      ...builds(runs, () => {
        // out/ too: with out/qcow2 current (its conversion delivered it there) nothing would run.
        execFileSync('rm', ['-rf', cache, join(project, 'imgmake.lock'), join(project, 'out')]);
        return mustRun(build(), 'cold');
      }),
      baseline: 'floor-cold',
      target: { ratio: 1.15 },
    });
    log('imgmake cold, .debs cached');
    scenarios.push({
      name: 'cold-debs',
      label: 'imgmake cold, the .debs already cached',
      ...builds(runs, () => {
        execFileSync('rm', ['-rf', join(cache, 'layers'), join(project, 'out')]);
        return mustRun(build(['--locked']), 'cold, .debs cached');
      }),
      baseline: 'floor-cold',
    });
    log('node -e 0 and imgmake no-op, alternately');
    // Each timed run starts with nothing left to write back (`sync`, not timed): the writeback of
    // what a run before it wrote (the cold builds' gigabytes, the other tool's image) would fall
    // on whichever run happens to be next. A no-op is a third of a second: at least 10 runs, and
    // Node's own start and exit beside each (the machine's pace at that moment, ~0.1 s of the
    // no-op's whole process).
    const nodeOnly: number[] = [];
    const noops: Build[] = [];
    for (let i = 0; i < Math.max(runs, 10); i++) {
      settle();
      nodeOnly.push(timed(process.execPath, ['-e', '0']));
      settle();
      noops.push(build(['--locked']));
    }
    scenarios.push({ name: 'node', label: '`node -e 0`: Node alone, started and stopped (run by run with the next row)', samples: nodeOnly });
    scenarios.push({ name: 'noop', label: 'imgmake no-op', ...buildFigures(noops), target: { processMs: 300 } });
    // The floor's late edit and imgmake's alternate, run by run: the machine's drift (other
    // guests, writeback left by the step before) falls on both alike.
    log('floor and imgmake late edits, alternately');
    const floorLate: number[] = [];
    const late: Build[] = [];
    for (let i = 0; i < runs; i++) {
      settle();
      floorLate.push(floor(`late-floor-${i}`, ['hostname']));
      settle();
      late.push(mustRun(build(['--locked'], ['--var', `hostname=late-${i}`]), 'late edit'));
    }
    scenarios.push({ name: 'floor-late', label: 'floor: hostname, then ESP, disk and qcow2 only (run by run with the next row)', samples: floorLate });
    scenarios.push({
      name: 'late',
      label: 'imgmake late edit: hostname changed (11 stages)',
      ...buildFigures(late),
      baseline: 'floor-late',
      target: { ratio: 1.15 },
    });
    log('imgmake early edit');
    const distro = join(project, 'distro', 'bookworm.yaml');
    const yaml = await readFile(distro, 'utf8');
    const extra = ['hello', 'cowsay', 'sl', 'figlet', 'fortune-mod'];
    scenarios.push({
      name: 'early',
      label: 'imgmake early edit: one package added (lock + package stage)',
      ...builds(Math.min(runs, extra.length), (i) => {
        execFileSync('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', yaml.replace('            - sudo\n', `            - sudo\n            - ${extra[i]}\n`), distro]);
        return mustRun(build(), 'early edit');
      }),
      baseline: 'floor-cold',
    });
    log('cache sizes');
    const unique = await uniqueBytes(cache);
    sizes.push({ name: 'unique', label: 'unique bytes of the trees and .debs the cache holds (each content once)', bytes: unique });
    sizes.push({ name: 'cache', label: `imgmake cache after cold, .debs cached, no-op, ${runs} late and ${Math.min(runs, extra.length)} early edits`, bytes: duAllocated(cache), baseline: 'unique', target: { ratio: 1.5 } });
    sizes.push({ name: 'image', label: "imgmake's disk.qcow2", bytes: duAllocated(join(project, 'out', 'qcow2', 'disk.qcow2')), baseline: 'floor-image' });

    log('imgmake watch');
    scenarios.push({ name: 'watch', label: 'imgmake watch: hostname saved → new qcow2 in out/', samples: await watchSamples(project, runs), baseline: 'floor-late' });
    log('imgmake watch --patch');
    scenarios.push({
      name: 'watch-patch',
      label: 'imgmake watch raw --patch: hostname saved → patched raw disk in out/ (bootable; functionally equal, not byte-equal: docs/patch.md)',
      samples: await watchSamples(project, runs, { target: 'raw', patch: true }),
      baseline: 'floor-late',
      target: { ms: 1000 },
    });
    await rm(cache, { recursive: true, force: true });
    await rm(floorOut, { recursive: true, force: true });

    log('imgmake remote restore');
    const remote = await remoteSamples(project, runs, work);
    scenarios.push({
      name: 'remote',
      label: `imgmake remote restore: empty local cache, warm remote on loopback (${remote.ran} stages ran)`,
      samples: remote.samples,
      processMs: remote.processMs,
      baseline: 'cold',
      target: { ratio: 0.25 },
    });
    sizes.push({ name: 'remote', label: 'the remote cache (nginx document root) after one build', bytes: remote.bytes });
    return { scenarios, sizes };
  } finally {
    await rm(project, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  const quickMode = argv.includes('--quick');
  const at = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const runs = Number(at('--runs') ?? (quickMode ? 5 : 3));
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write('bench: --runs takes a whole number ≥ 1\n');
    return 2;
  }
  const outDir = resolve(at('--out') ?? join(repo, 'bench', 'results'));
  const cpu = cpus()[0];
  const measured = quickMode ? await quick(runs) : await full(runs);
  const report: Report = {
    date: new Date().toISOString(),
    mode: quickMode ? 'quick' : 'full',
    machine: { cpus: availableParallelism(), model: cpu?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release() },
    runs,
    ...measured,
  };
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(outDir, 'latest.md'), markdown(report));
  await writeFile(join(outDir, 'latest.svg'), svg(report));
  process.stdout.write(markdown(report));
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
