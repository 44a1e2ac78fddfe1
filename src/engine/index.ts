/**
 * The engine as a library: everything a front end (the CLI, `imgmake watch`, a server, an
 * editor plugin, a test) needs to build in-process, with no child `imgmake` process.
 *
 *     const project = await loadProject({ file });                   // rules + definition
 *     const engine = await openEngine({ cacheDir });                 // store, sandbox, remote
 *     await lockPackages(engine, project.value, 'resolve', run);     // explicit; may build buildroots
 *     const keyed = await keyProject(project.value);                 // graph + keys
 *     const sel = selectNodes(keyed, ['qcow2'], {});                 // names → nodes
 *     const r = await build(engine, keyed, { targets: ['qcow2'], selection: sel.value, outDir }, run);
 *
 * Every step reports through the Logger in `run` (src/event.ts) and returns a value; none
 * prints, reads argv or the environment, or exits. The real implementations (bubblewrap, the
 * local store, the package formats) are openEngine's defaults; anything may be handed in
 * instead (a test's recording sandbox).
 */
export { build, type BuildOptions, type BuildRequest, type BuildRun } from './build.js';
export { leaseGoals } from './lease.js';
export { buildroots, lockPackages, type LockMode, type LockStepOptions } from './lock.js';
export { hostDefaults, loadProject, openEngine, type LoadProjectOptions, type OpenEngineOptions } from './defaults.js';
export { keyProject } from './project.js';
export { runSpine, type BuildrootOf, type SpineOptions, type SpineResult } from './run.js';
export { resolveNode, resolveTargets, selectNodes } from './select.js';
export type { Engine, KeyedProject, Project, RunOptions, Selection } from './types.js';
