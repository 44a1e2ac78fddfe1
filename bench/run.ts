/**
 * The benchmark: how fast imgmake is, measured side by side with what the same machine does
 * without it, in the same run.
 *
 *     npm run bench -- --quick            examples/hello (under a minute; CI runs it)
 *     npm run bench                       examples/debian-12 qcow2 (by hand: many minutes)
 *     options: --runs N  --out DIR (default bench/results)
 *
 * Each scenario runs several times; the report gives the median and the spread (min–max) and,
 * where a baseline was measured in the same run, the ratio to it. Writes DIR/latest.json,
 * DIR/latest.md (the table the README links) and DIR/latest.svg (a bar chart). The machine is
 * noisy: compare figures within one report, never across reports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  /** The target the table checks: a ratio to the baseline, or an absolute time. */
  target?: { ratio?: number; ms?: number };
  /** Why a scenario could not be measured in this run. */
  missing?: string;
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
    '| scenario | median | spread | vs. baseline | ratio | target | met |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const s of r.scenarios) {
    if (s.missing) {
      lines.push(`| ${s.label} | — | — | ${s.baseline ?? ''} | — | ${targetText(s)} | not measured: ${s.missing} |`);
      continue;
    }
    const v = verdict(s, r.scenarios);
    const spread = `${fmtMs(Math.min(...s.samples))}–${fmtMs(Math.max(...s.samples))}`;
    lines.push(
      `| ${s.label} | ${fmtMs(median(s.samples))} | ${spread} | ${s.baseline ?? ''} | ${v.ratio !== undefined ? `${v.ratio.toFixed(2)}×` : ''} | ${targetText(s)} | ${v.met === undefined ? '' : v.met ? 'yes' : '**no**'} |`,
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
  return `${lines.join('\n')}\n`;
}

function targetText(s: Scenario): string {
  if (s.target?.ms !== undefined) return `≤ ${fmtMs(s.target.ms)}`;
  if (s.target?.ratio !== undefined) return `≤ ${s.target.ratio}× ${s.baseline}`;
  return '';
}

/** Horizontal bars of each scenario's median, the spread as a thin line; log scale. */
export function svg(r: Report): string {
  const rows = r.scenarios.filter((s) => !s.missing && s.samples.length);
  const left = 300;
  const width = 900;
  const rowH = 26;
  const height = 40 + rows.length * rowH;
  const max = Math.max(...rows.map((s) => Math.max(...s.samples)), 10);
  const min = Math.min(...rows.map((s) => Math.min(...s.samples)), 1);
  const x = (ms: number): number => left + ((Math.log10(Math.max(ms, min)) - Math.log10(min) + 0.1) / (Math.log10(max) - Math.log10(min) + 0.2)) * (width - left - 80);
  const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows.map((s, i) => {
    const y = 30 + i * rowH;
    const m = median(s.samples);
    const imgmake = !/^floor|^copy/.test(s.name);
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
}

function imgmake(project: string, args: string[]): Build {
  const r = spawnSync(process.execPath, [bin, '--json', '-f', join(project, 'imgmake.yaml'), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const summary = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{"type":"summary"'))
    .map((l) => JSON.parse(l) as { wallMs: number; ran: number; ok: boolean })[0];
  if (r.status !== 0 || !summary?.ok) throw new Error(`imgmake ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { wallMs: summary.wallMs, ran: summary.ran };
}

function timed(cmd: string, args: string[], env: Record<string, string> = {}): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t0;
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
    const cold = times(runs, () => {
      execFileSync('rm', ['-rf', cache]);
      return imgmake(project, ['build', 'hello']).wallMs;
    });
    scenarios.push({ name: 'cold', label: 'imgmake cold: empty cache', samples: cold, baseline: 'floor-cold', target: { ratio: 1.15 } });
    scenarios.push({ name: 'noop', label: 'imgmake no-op: nothing changed', samples: times(runs, () => imgmake(project, ['build', 'hello']).wallMs), target: { ms: 300 } });
    scenarios.push({
      name: 'late',
      label: 'imgmake late edit: hostname changed (7 stages)',
      samples: times(runs, (i) => imgmake(project, ['--var', `hostname=late-${i}`, 'build', 'hello']).wallMs),
      baseline: 'floor-late',
      target: { ratio: 1.3 },
    });
    const motd = join(project, 'files', 'motd');
    const text = await readFile(motd, 'utf8');
    scenarios.push({
      name: 'early',
      label: 'imgmake early edit: a copied-in file changed (8 stages)',
      samples: times(runs, (i) => {
        execFileSync('sh', ['-c', `printf '%s\\nedit %s\\n' "$1" "$2" > "$3"`, 'sh', text, String(i), motd]);
        return imgmake(project, ['build', 'hello']).wallMs;
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

async function full(runs: number): Promise<Pick<Report, 'scenarios' | 'sizes'>> {
  const project = await copyExample('debian-12');
  const cache = join(project, 'cache');
  try {
    const build = (args: string[] = []) => imgmake(project, [...args, 'build', 'qcow2']).wallMs;
    const scenarios: Scenario[] = [];
    scenarios.push({
      name: 'cold',
      label: 'imgmake cold: empty cache, packages not downloaded (lock included)',
      samples: times(runs, () => {
        execFileSync('rm', ['-rf', cache, join(project, 'imgmake.lock')]);
        return build();
      }),
      baseline: 'floor-cold',
      target: { ratio: 1.15 },
    });
    scenarios.push({
      name: 'cold-debs',
      label: 'imgmake cold, the .debs already cached',
      samples: times(runs, () => {
        execFileSync('rm', ['-rf', join(cache, 'layers')]);
        return build(['--locked']);
      }),
    });
    scenarios.push({ name: 'noop', label: 'imgmake no-op', samples: times(runs, () => build(['--locked'])), target: { ms: 300 } });
    scenarios.push({
      name: 'late',
      label: 'imgmake late edit: hostname changed',
      samples: times(runs, (i) => build(['--locked', '--var', `hostname=late-${i}`])),
      baseline: 'floor-late',
      target: { ratio: 1.3 },
    });
    const distro = join(project, 'distro', 'bookworm.yaml');
    const yaml = await readFile(distro, 'utf8');
    const extra = ['hello', 'cowsay', 'sl', 'figlet', 'fortune-mod'];
    scenarios.push({
      name: 'early',
      label: 'imgmake early edit: one package added (lock + package stage)',
      samples: times(Math.min(runs, extra.length), (i) => {
        execFileSync('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', yaml.replace('            - sudo\n', `            - sudo\n            - ${extra[i]}\n`), distro]);
        return build();
      }),
    });
    const missing = 'not built yet (bench/ has the floor for examples/hello only; see docs/research/disk-assembly for the scripts it will reuse)';
    scenarios.push({ name: 'floor-cold', label: 'floor: mmdebstrap, mkfs, GRUB, qemu-img by a script', samples: [], missing });
    scenarios.push({ name: 'floor-late', label: 'floor: configuration and disk assembly only', samples: [], missing });
    scenarios.push({ name: 'watch', label: 'imgmake watch: save → new qcow2', samples: [], missing: 'measured by test/debian-e2e.test.ts (its t.diagnostic line), not here yet' });
    scenarios.push({ name: 'remote', label: 'imgmake remote restore', samples: [], missing: 'remote caches are being built (issue 6)' });
    scenarios.push({ name: 'mkosi', label: 'mkosi cold', samples: [], missing: 'not tried yet' });
    const sizes: SizeFigure[] = [
      { name: 'cache', label: 'imgmake cache after the scenarios', bytes: du(cache) },
      { name: 'image', label: 'disk.qcow2', bytes: du(join(project, 'out', 'qcow2', 'disk.qcow2')) },
    ];
    return { scenarios, sizes };
  } finally {
    await rm(project, { recursive: true, force: true });
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
