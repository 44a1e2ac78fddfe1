/**
 * The command line, and the one place that picks real implementations: the local store, the
 * bubblewrap sandbox, the renderer. Everything below takes them as arguments.
 *
 * Exit codes: the table in cli/exit.ts (0 ok, 1 a build failed, 2 bad definition or usage,
 * 130 interrupted). What `--help` says beyond the options is cli/help.ts.
 *
 * What only one command uses (watch and its file watcher, boot, shell, push, clean, `rules`'s
 * text) is imported when that command runs, not here: every module this file imports is loaded
 * by every command, and a no-op build's whole process has 0.3 s (docs/bench.md, "Start-up";
 * test/startup.test.ts says which modules a no-op build must not load).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { plan } from './plan.js';
import { loadRules } from './rule.js';
import { allowedLine, loadContext, loadDefinition, resolveTargets, selectNodes, targetsOrDefault, type Context, type GlobalOptions } from './cli/context.js';
import { build as buildEngine } from './engine/build.js';
import { collectedLine } from './cli/cache.js';
import { afterExport } from './cli/extras.js';
import type { WatchOptions } from './cli/watch.js';
import { jobsOf, out, pickLogger, PROGRESS_MODES, reportDiagnostics } from './cli/output.js';
import { jsonLine } from './logging/index.js';
import { cacheExists, cacheGc, cacheInfo, cacheLs, cachePrune, cacheVerify, maxCacheSize } from './cli/cache.js';
import { RuleCodeError } from './rule-code.js';
import type { BootCommandOptions } from './cli/boot.js';
import type { CommandResult, ShellOptions } from './cli/checkpoint.js';
import { LOCK_FILE } from './packages/index.js';
import type { CleanOptions } from './cli/clean.js';
import { completionScript, SHELLS, type Shell } from './cli/completion.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE } from './cli/exit.js';
import { commandHelpFooter, rootHelpFooter } from './cli/help.js';
import { listCommand, selectCatalog, type CatalogOptions, type ListOptions } from './cli/catalog.js';
import { boot, PhaseClock } from './timing.js';
import { packageRoot } from './package-root.js';

export { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE } from './cli/exit.js';

/** The package's version (its package.json). */
export const VERSION: string = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

export interface BuildOptions {
  locked?: boolean;
  withSbom?: boolean;
  withManifest?: boolean;
  until?: string;
  from?: string;
  patch?: boolean;
}

/** What this process built: nothing yet, a build that ran no stage, or one that ran stages. */
export type Built = 'none' | 'no-op' | 'stages';
let built: Built = 'none';

/**
 * What this process built, for bin/imgmake.js's code cache: it is written after a build (what a
 * build runs is compiled then), and written again after a no-op when a build that ran stages
 * wrote it (V8 drops the bytecode of functions a minutes-long build ran first: docs/bench.md).
 */
export function ranBuild(): Built {
  return built;
}

async function build(targets: string[], o: GlobalOptions & BuildOptions): Promise<number> {
  const started = performance.now();
  // From the process's origin: the first phases are Node's own start-up (`node`, until
  // bin/imgmake.js's first line) and the CLI's script loaded (`start`).
  const clock = new PhaseClock(0);
  const b = boot();
  if (b) {
    clock.lap('node', b.entered);
    clock.codeCache = b.codeCache;
  }
  clock.lap('start');
  const jobs = jobsOf(o);
  if (typeof jobs !== 'number') return reportDiagnostics([jobs], o);
  const maxCacheBytes = maxCacheSize(o);
  if (typeof maxCacheBytes === 'object') return reportDiagnostics([maxCacheBytes], o);
  // Made before loading: locking may build a buildroot first (engine/lock.ts), reported here.
  const logger = pickLogger(o);
  const loaded = await loadContext(o, { lock: o.locked ? 'read' : 'resolve', logger, jobs, clock });
  const selected = loaded.ok ? selectNodes(loaded.value, (targets = targetsOrDefault(loaded.value.def, targets)), o) : loaded;
  if (!loaded.ok || !selected.ok) {
    logger.close?.();
    const ds = !loaded.ok ? loaded.error : !selected.ok ? selected.error : [];
    // A buildroot that failed to build or a mirror that could not be reached is exit 1 (exit.ts).
    return reportDiagnostics(ds, o);
  }
  const ctx = loaded.value;
  if (o.patch && (o.until !== undefined || o.from !== undefined)) {
    logger.close?.();
    return reportDiagnostics([{ reason: 'usage', message: `--patch cannot be used with ${o.until !== undefined ? '--until' : '--from'}`, hint: '--patch updates a finished image; build the stages you want without it' }], o);
  }
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const extras = { withSbom: o.withSbom, withManifest: o.withManifest, tool: `imgmake-${VERSION}` };
    const r = await buildEngine(
      ctx,
      ctx,
      { targets, selection: selected.value, outDir: ctx.outDir, maxCacheBytes, patch: o.patch === true, afterExport: (t, x) => afterExport(ctx, t, { ...extras, fresh: x.fresh }, logger, abort.signal) },
      { logger, jobs, signal: abort.signal, started, clock, onCollected: collectedLine },
    );
    if (interrupted) return EXIT_INTERRUPTED;
    built = r.ran === 0 ? 'no-op' : 'stages';
    return r.ok ? EXIT_OK : EXIT_FAILED;
  } finally {
    logger.close?.();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function lockCommand(o: GlobalOptions & { update?: boolean }): Promise<number> {
  const logger = pickLogger(o);
  const loaded = await loadContext(o, { lock: o.update ? 'update' : 'resolve', logger });
  logger.close?.();
  if (!loaded.ok) return reportDiagnostics(loaded.error, o);
  const n = packageStagesCount(loaded.value);
  out(n ? `imgmake: ${LOCK_FILE} covers ${n} package stage${n === 1 ? '' : 's'}` : 'imgmake: no stage installs packages: nothing to lock');
  return EXIT_OK;
}

function packageStagesCount(ctx: Context): number {
  let n = 0;
  for (const pl of ctx.def.pipelines.values()) for (const s of pl.stages) if (s.inputs.some((i) => i.kind === 'packages')) n++;
  return n;
}

async function planCommand(targets: string[], o: GlobalOptions & Pick<BuildOptions, 'until' | 'from'>): Promise<number> {
  // Read-only: a cache that does not exist is said, not made (every stage then shows as to run).
  const loaded = await loadContext(o, { readOnly: true });
  if (!loaded.ok) return reportDiagnostics(loaded.error, o);
  const ctx = loaded.value;
  if (ctx.cacheMissing) cacheExists(ctx.cacheDir);
  targets = targetsOrDefault(ctx.def, targets);
  const selected = selectNodes(ctx, targets, o);
  if (!selected.ok) return reportDiagnostics(selected.error, o);
  const { goals, force } = selected.value;
  ctx.remote?.attach(pickLogger(o));
  // As a build would see them: a target's last stage whose output is current in out/ is done.
  const { planDeliveries } = await import('./deliver.js');
  const d = ctx.remote || o.until ? undefined : await planDeliveries({ graph: ctx.graph, keys: ctx.keys, targets: targets.map((n) => ctx.def.targets.get(n)!), goals, force, outDir: ctx.outDir });
  const p = await plan({
    graph: ctx.graph,
    keys: ctx.keys,
    store: ctx.store,
    goals,
    scope: ctx.scope,
    force,
    ...(ctx.remote ? { remote: ctx.remote } : {}),
    ...(d ? { current: d.current, delivers: new Set(d.take.keys()) } : {}),
  });
  if (o.json) {
    if (ctx.def.allowed) out(jsonLine({ type: 'allow-path', dirs: ctx.def.allowed }));
    for (const s of p.stages) out(jsonLine({ type: 'plan-stage', node: s.id, pipeline: s.pipeline, stage: s.stage, rule: s.rule, key: s.key, status: s.status, reasons: s.reasons }));
    return EXIT_OK;
  }
  const allowed = allowedLine(ctx);
  if (allowed) out(allowed);
  const width = Math.max(...p.stages.map((s) => s.id.length), 4);
  for (const s of p.stages) {
    const why = s.delivered ? ['its output is current in out/'] : s.reasons;
    out(`${PLAN_WORDS[s.status]}  ${s.id.padEnd(width)}  ${s.rule}${why.length ? `  — ${why.join('; ')}` : ''}`);
  }
  const n = p.stages.filter((s) => s.status === 'run').length;
  const remote = p.stages.filter((s) => s.status === 'remote').length;
  const fetch = remote ? `, ${remote} from the remote cache ${ctx.remote!.url}` : '';
  const unneeded = p.stages.filter((s) => s.status === 'unneeded').length;
  const skip = unneeded ? `; ${unneeded} not needed (not cached, but what follows them is)` : '';
  out(n ? `${n} of ${p.stages.length} stages will run${fetch}${skip}` : remote || unneeded ? `nothing will run${fetch}${skip}` : `all ${p.stages.length} stages are cached: nothing to do`);
  return EXIT_OK;
}

const PLAN_WORDS = { run: 'will run', cached: 'cached  ', remote: 'remote  ', unneeded: 'unneeded' } as const;

async function targetsCommand(o: GlobalOptions & { names?: boolean }): Promise<number> {
  // Only the definition: no cache is opened, so any user may list the targets.
  const loaded = await loadDefinition(o);
  if (!loaded.ok) return o.names ? EXIT_USAGE : reportDiagnostics(loaded.error, o);
  const { def } = loaded.value;
  for (const t of def.targets.values()) {
    const isDefault = t.name === def.defaultTarget;
    if (o.names) out(t.name);
    else if (o.json) out(jsonLine({ type: 'target', name: t.name, pipeline: t.pipeline, export: t.export, default: isDefault }));
    else out(`${t.name}  (pipeline ${t.pipeline}${t.export.length ? `, exports ${t.export.join(', ')}` : ', exports the whole tree'})`);
  }
  if (!o.names && !o.json && def.defaultTarget) out(`default: ${def.defaultTarget} (what imgmake build builds when no target is named)`);
  return EXIT_OK;
}

async function rulesCommand(name: string | undefined, o: GlobalOptions): Promise<number> {
  const rules = await loadRules();
  const { describeRule, listRules } = await import('./cli/rules.js');
  if (!name) {
    out(listRules(rules, o.json === true));
    return EXIT_OK;
  }
  const text = describeRule(rules, name, o.json === true);
  if (!text.ok) return reportDiagnostics([text.error], o);
  out(text.value);
  return EXIT_OK;
}

async function bootTarget(given: string | undefined, bo: BootCommandOptions, o: GlobalOptions): Promise<number> {
  const loaded = await loadContext(o, { lock: 'skip' });
  if (!loaded.ok) return reportDiagnostics(loaded.error, o);
  const ctx = loaded.value;
  const target = targetsOrDefault(ctx.def, given === undefined ? [] : [given])[0] ?? '';
  if (!ctx.def.targets.has(target)) {
    const goals = resolveTargets(ctx, target ? [target] : []);
    if (!goals.ok) return reportDiagnostics(goals.error, o);
  }
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.on('SIGTERM', onSignal);
  try {
    const { bootCommand } = await import('./cli/boot.js');
    const r = await bootCommand(target, ctx.outDir, bo, (line) => process.stderr.write(`${line}\n`), abort.signal);
    if (!r.ok) return reportDiagnostics(r.error, o);
    return r.value === 0 ? EXIT_OK : EXIT_FAILED;
  } finally {
    process.off('SIGTERM', onSignal);
  }
}

export function program(run: (code: Promise<number>) => void): Command {
  const p = new Command('imgmake')
    .description('Build bootable OS images the way make builds programs.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .option('-C, --directory <DIR>', 'change to DIR first (like make -C and git -C): FILE, --cache and --out are then relative to it')
    .option('-f, --file <FILE>', 'the definition (default: the nearest imgmake.yaml in this folder or one above it)')
    .option('--cache <DIR>', 'the cache directory (default: $IMGMAKE_CACHE, else cache/ beside the definition; a catalog build: ~/.cache/imgmake)')
    .option('--out <DIR>', 'where targets are exported (default: out/ beside the definition)')
    .option('--var <NAME=VALUE>', 'set a variable the definition declares (wins over its vars:); repeatable', collect, [] as string[])
    .option('--allow-path <DIR>', 'let includes and file: inputs read DIR, a folder outside the project; repeatable', collect, [] as string[])
    .option('--json', 'print one JSON object per line on stdout and nothing else')
    .option('-v, --verbose', 'also report cached stages and stage starts')
    .addOption(new Option('--progress <MODE>', 'how a build reports: tty (live lines redrawn in place), plain (one line per event), json (as --json); auto: tty on a terminal, else plain').choices(PROGRESS_MODES).default('auto'))
    .addOption(new Option('-j, --jobs <N>', 'stages run at once (default: the number of cores)'))
    .option('--max-cache-size <SIZE>', 'after each build, remove least recently used trees and .debs until the cache is under SIZE (10G, 500M; or $IMGMAKE_MAX_CACHE_SIZE)')
    .option('--remote <URL>', 'a remote cache to read trees from and write them to: http(s)://HOST/PATH or oci://HOST/REPOSITORY (default: $IMGMAKE_REMOTE; credentials from the environment)')
    .option('--remote-read-only', 'read from the remote cache, never write to it (or IMGMAKE_REMOTE_READ_ONLY=1)')
    .exitOverride();
  p.hook('preAction', (_, action) => {
    const dir = p.opts<GlobalOptions & { directory?: string }>().directory;
    if (dir !== undefined) {
      try {
        process.chdir(dir);
      } catch (e) {
        throw new UsageError(`-C ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (e as Error).message}`, 'name an existing folder: imgmake -C examples/hello build');
      }
    }
    // --progress json is --json: every command then answers in JSON lines.
    if (p.opts<GlobalOptions>().progress === 'json') p.setOptionValue('json', true);
    const name = commandName(action);
    if (!runsAsAnyUser(name) && process.geteuid?.() !== 0) throw new NeedsRoot(name);
  });
  const opts = (): GlobalOptions => p.opts<GlobalOptions>();
  p.command('build')
    .description('build targets (to out/TARGET/), running only stages whose key is not cached')
    .argument('[TARGET...]', 'default: the target marked default: true, else the first')
    .option('--locked', `fail instead of adding to ${LOCK_FILE} (for CI)`)
    .option('--until <PIPELINE.STAGE>', 'build up to and including that stage, then stop (nothing is exported)')
    .option('--from <PIPELINE.STAGE>', 'run that stage and every stage after it even if cached; their new trees replace the cached ones')
    .option('--patch', 'when only files of the OS tree changed, update a copy of the previous image in out/ instead of making the disk again (functionally equal, not byte-equal; docs/patch.md)')
    .option('--with-sbom', 'also write out/TARGET.spdx.json: an SPDX 2.3 list of the packages installed in the image')
    .option('--with-manifest', 'also write out/TARGET.manifest/: the resolved definition as one file, and its lock, that builds the same image')
    .option('--blueprint <FILE>', 'build the catalog\'s image TYPE with what this blueprint (TOML, JSON or YAML) asks for (imgmake list shows the types)')
    .option('--distro <NAME>', 'the catalog\'s distribution (default: the blueprint\'s distro, else debian-12)')
    .option('--arch <ARCH>', 'the catalog\'s architecture (default: the blueprint\'s, else x86_64)')
    .option('--output-dir <DIR>', 'where targets are exported (as --out; a catalog build\'s default: ./out)')
    .option('--ostree-parent <PATH|URL>', 'an ostree type: the repository of the build before (ostree-repo.tar, a folder, or an http(s) URL, whose ref is read now), whose commit on the ref becomes the new commit\'s parent')
    .action((targets: string[], bo: BuildOptions & CatalogOptions) => run(fromCatalog(targets, bo, opts(), (o) => build(targets, { ...o, ...bo }))));
  p.command('watch')
    .description('build, then rebuild what changed whenever a file the targets depend on changes')
    .argument('[TARGET...]', 'default: the default target')
    .option('--boot', 'after each successful rebuild, (re)start imgmake boot on the target')
    .option('--boot-args <ARGS>', 'options for that imgmake boot: "--bios --memory 2048"')
    .option('--exec <CMD>', 'after each successful rebuild, (re)start sh -c CMD')
    .option('--patch', 'when only files of the OS tree changed, update the previous image instead of making the disk again (docs/patch.md)')
    .option('--locked', `fail instead of adding to ${LOCK_FILE}`)
    .option('--blueprint <FILE>', 'build the catalog\'s image TYPE with what this blueprint (TOML, JSON or YAML) asks for (imgmake list shows the types)')
    .option('--distro <NAME>', 'the catalog\'s distribution (default: the blueprint\'s distro, else debian-12)')
    .option('--arch <ARCH>', 'the catalog\'s architecture (default: the blueprint\'s, else x86_64)')
    .option('--output-dir <DIR>', 'where targets are exported (as --out; a catalog build\'s default: ./out)')
    .action((targets: string[], wo: WatchOptions & CatalogOptions) => run(fromCatalog(targets, wo, opts(), async (o) => (await import('./cli/watch.js')).watchCommand(targets, wo, o))));
  p.command('lock')
    .description(`resolve every package stage's packages against the mirror into ${LOCK_FILE}`)
    .option('--update', 'resolve them all again (newer versions), not only the missing ones')
    .option('--blueprint <FILE>', 'build the catalog\'s image TYPE with what this blueprint (TOML, JSON or YAML) asks for (imgmake list shows the types)')
    .option('--distro <NAME>', 'the catalog\'s distribution (default: the blueprint\'s distro, else debian-12)')
    .option('--arch <ARCH>', 'the catalog\'s architecture (default: the blueprint\'s, else x86_64)')
    .option('--output-dir <DIR>', 'where targets are exported (as --out; a catalog build\'s default: ./out)')
    .action((lo: { update?: boolean } & CatalogOptions) => run(fromCatalog([], lo, opts(), (o) => lockCommand({ ...o, ...lo }))));
  p.command('plan')
    .description('show which stages of the targets are cached and which will run, and why')
    .argument('[TARGET...]', 'default: the default target')
    .option('--until <PIPELINE.STAGE>', 'plan up to and including that stage')
    .option('--from <PIPELINE.STAGE>', 'as build --from: that stage and every stage after it will run')
    .option('--blueprint <FILE>', 'build the catalog\'s image TYPE with what this blueprint (TOML, JSON or YAML) asks for (imgmake list shows the types)')
    .option('--distro <NAME>', 'the catalog\'s distribution (default: the blueprint\'s distro, else debian-12)')
    .option('--arch <ARCH>', 'the catalog\'s architecture (default: the blueprint\'s, else x86_64)')
    .option('--output-dir <DIR>', 'where targets are exported (as --out; a catalog build\'s default: ./out)')
    .option('--ostree-parent <PATH|URL>', 'an ostree type: the repository of the build before (ostree-repo.tar, a folder, or an http(s) URL, whose ref is read now), whose commit on the ref becomes the new commit\'s parent')
    .action((targets: string[], po: Pick<BuildOptions, 'until' | 'from'> & CatalogOptions) => run(fromCatalog(targets, po, opts(), (o) => planCommand(targets, { ...o, ...po }))));
  p.command('list')
    .description("list the catalog's images: every distro × arch × type, its file, default size and the blueprint options it supports")
    .option('--filter <KEY:VALUE>', 'only rows whose distro, arch or type matches VALUE, a glob (type:qcow2, distro:debian-*); repeatable', collect, [] as string[])
    .action((lo: ListOptions) => run(listCommand({ ...opts(), ...lo })));
  p.command('targets')
    .description('list the targets of the definition (the default one marked)')
    .option('--names', 'only their names, one per line (for scripts and shell completion)')
    .action((to: { names?: boolean }) => run(targetsCommand({ ...opts(), ...to })));
  p.command('rules')
    .description('list the rules, or describe one (its options, from its schema)')
    .argument('[NAME]')
    .action((name: string | undefined) => run(rulesCommand(name, opts())));
  p.command('boot')
    .description('boot the disk image (or live ISO, in a CD-ROM drive) a target exported (out/TARGET/) in QEMU, its serial console here')
    .argument('[TARGET]', 'default: the default target')
    .option('--bios', 'boot with SeaBIOS instead of UEFI (OVMF)')
    .option('--accel <auto|kvm|tcg>', 'KVM or software emulation (default: KVM when a probe runs under it)')
    .option('--memory <MiB>', 'guest memory (default 1024)')
    .option('--cpus <N>', 'guest CPUs (default 2)')
    .option('--ssh-port <PORT>', "forward 127.0.0.1:PORT to the guest's ssh (default: no network)")
    .option('--image <FILE>', 'which file of out/TARGET/ (default: its .qcow2)')
    .option('--blueprint <FILE>', 'build the catalog\'s image TYPE with what this blueprint (TOML, JSON or YAML) asks for (imgmake list shows the types)')
    .option('--distro <NAME>', 'the catalog\'s distribution (default: the blueprint\'s distro, else debian-12)')
    .option('--arch <ARCH>', 'the catalog\'s architecture (default: the blueprint\'s, else x86_64)')
    .option('--output-dir <DIR>', 'where targets are exported (as --out; a catalog build\'s default: ./out)')
    .action((target: string | undefined, bo: BootCommandOptions & CatalogOptions) => run(fromCatalog(target === undefined ? [] : [target], bo, opts(), (o) => bootTarget(target, bo, o))));
  p.command('shell')
    .description("a shell in a stage's sandbox, on a throw-away writable view of the tree after it (NODE: PIPELINE.STAGE)")
    .argument('<NODE>')
    .argument('[CMD...]', 'a command to run instead of the shell (after --)')
    .option('--before', 'the tree before the stage (the one it starts from)')
    .action((node: string, cmd: string[], so: ShellOptions) => run(answer(import('./cli/checkpoint.js').then((m) => m.shellCommand(node, cmd, { ...opts(), ...so })), opts())));
  p.command('export')
    .description('copy the tree after a stage (NODE: PIPELINE.STAGE) to DIR, a new or empty directory')
    .argument('<NODE>')
    .argument('<DIR>')
    .action((node: string, dir: string) => run(answer(import('./cli/checkpoint.js').then((m) => m.exportCommand(node, dir, opts())), opts())));
  p.command('push')
    .description('send an OCI image archive (the oci image type\'s export) to a registry: REF is oci://HOST[:PORT]/REPOSITORY[:TAG]')
    .argument('<ARCHIVE>')
    .argument('<REF>')
    .action((archive: string, ref: string) => run(answer(import('./cli/push.js').then((m) => m.pushCommand(archive, ref)), opts())));
  p.command('log')
    .description("print the stored log of a stage's last run with its current definition (NODE: PIPELINE.STAGE)")
    .argument('<NODE>')
    .action((node: string) => run(answer(import('./cli/checkpoint.js').then((m) => m.logCommand(node, opts())), opts())));
  const cache = p.command('cache').description('inspect, collect and verify the cache');
  cache.command('info').description('where the cache is, what it holds, its size').action(() => run(cacheInfo(opts())));
  cache
    .command('ls')
    .description('the trees in the cache: node, key, size, last use, the targets that need them; and the .debs')
    .option('--debs', 'list each .deb, not only their count and size')
    .action((lo: { debs?: boolean }) => run(cacheLs({ ...opts(), ...lo })));
  cache
    .command('gc')
    .description('remove least recently used trees and .debs until the cache is under SIZE')
    .option('--max-size <SIZE>', 'the size to get under: 10G, 500M, 0 (K, M, G, T are powers of 1024)')
    .option('--dry-run', 'say what would be removed; remove nothing')
    .action((go: { maxSize?: string; dryRun?: boolean }) => run(cacheGc({ ...opts(), ...go })));
  cache
    .command('verify')
    .description('re-hash layers and .debs; remove what does not match (the next build rebuilds it)')
    .action(() => run(cacheVerify(opts())));
  cache
    .command('prune')
    .description('keep only the trees and .debs the named targets need; remove everything else')
    .option('--keep <TARGET...>', 'the targets to keep')
    .action((po: { keep?: string[] }) => run(cachePrune({ ...opts(), ...po })));
  p.command('clean')
    .description('remove out/ (the exported targets); with --all --yes the cache too')
    .option('--all', 'also remove the cache (needs --yes); what a running build uses stays')
    .option('--yes', 'confirm --all')
    .action((co: CleanOptions) => run(import('./cli/clean.js').then((m) => m.cleanCommand({ ...opts(), ...co }))));
  p.command('completion')
    .description('print a shell completion script: commands, options, target names')
    .argument('<SHELL>', SHELLS.join(', '))
    .action((shell: string) => run(completion(shell, p, opts())));
  // Help that ends with what commander cannot know: examples, the environment, exit codes. An
  // error (an unknown command or option) prints only itself, its suggestion and where help is.
  p.addHelpText('after', rootHelpFooter());
  p.showHelpAfterError('(imgmake --help lists the commands and options)');
  const walk = (c: Command, path: string): void => {
    for (const sub of c.commands) {
      const name = path ? `${path} ${sub.name()}` : sub.name();
      sub.addHelpText('after', commandHelpFooter(name));
      sub.showHelpAfterError(`(imgmake ${name} --help shows its usage)`);
      walk(sub, name);
    }
  };
  walk(p, '');
  return p;
}

async function completion(shell: string, p: Command, o: GlobalOptions): Promise<number> {
  if (!(SHELLS as readonly string[]).includes(shell)) {
    return reportDiagnostics([{ reason: 'usage', message: `imgmake completion ${shell}: not a shell imgmake writes completion for`, hint: `name one of ${SHELLS.join(', ')}` }], o);
  }
  out(completionScript(shell as Shell, p).trimEnd());
  return EXIT_OK;
}

/** A command's exit code, its diagnostics reported (the commands of cli/checkpoint.ts and push). */
async function answer(r: Promise<CommandResult>, o: GlobalOptions): Promise<number> {
  const done = await r;
  return done.ok ? done.value : reportDiagnostics(done.error, o);
}

/** Commands that read only the definition (or nothing): they work as any user. */
const ANY_USER = new Set(['rules', 'targets', 'completion', 'list']);

/** The command's options after the choice between a project and the catalog (src/cli/catalog.ts). */
async function fromCatalog(types: string[], co: CatalogOptions, o: GlobalOptions, go: (o: GlobalOptions) => Promise<number>): Promise<number> {
  const selected = await selectCatalog(types, o, co);
  return selected.ok ? go(selected.value) : reportDiagnostics(selected.error, o);
}

export function runsAsAnyUser(name: string): boolean {
  return ANY_USER.has(name);
}

/** `cache ls` for the `ls` under `cache`. */
function commandName(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x && x.parent; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/** Thrown by the pre-action hook for a bad `-C DIR`: a usage error before anything runs. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** Thrown by the pre-action hook: the command would fail on its first mount or cache write. */
class NeedsRoot extends Error {
  constructor(readonly command: string) {
    const why = STAGE_RUNNERS.has(command.split(' ')[0]!)
      ? 'it runs stages in bubblewrap sandboxes on overlayfs mounts, which only root can make'
      : "it reads the cache and out/, which root's builds own";
    super(`imgmake ${command} needs root: ${why}; run it as root (sudo). imgmake rules and imgmake targets run as any user.`);
  }
}

/** Commands that mount and sandbox (the others that need root read what those wrote). */
const STAGE_RUNNERS = new Set(['build', 'watch', 'lock', 'shell', 'export']);

export async function main(argv: string[]): Promise<number> {
  // `imgmake cache ls | head`: once the reader is gone, output is dropped and the command
  // finishes (a build goes on to the end) instead of dying on an unhandled EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  let result: Promise<number> | undefined;
  const p = program((r) => {
    result = r;
  });
  try {
    await p.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (e instanceof NeedsRoot) return reportDiagnostics([{ reason: 'usage', message: e.message }], p.opts<GlobalOptions>());
    if (e instanceof UsageError) return reportDiagnostics([{ reason: 'usage', message: e.message, hint: e.hint }], p.opts<GlobalOptions>());
    throw e;
  }
  if (!result) return EXIT_OK;
  try {
    return await result;
  } catch (e) {
    // A rule whose code cannot be read (not compiled, a file gone): the path and what to do, no stack.
    if (e instanceof RuleCodeError) {
      process.stderr.write(`imgmake: ${e.message}\n`);
      return EXIT_FAILED;
    }
    process.stderr.write(`imgmake: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_FAILED;
  }
}

/** `--var a=1 --var b=2`: each use adds one (not variadic, so `--var a=1 build x` parses). */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
