/**
 * Keying a project, the step after locking (engine/lock.ts):
 *
 *     loadProject (engine/defaults.ts) ─▶ Project ─lockPackages─▶ (package inputs attached)
 *       ─keyProject─▶ KeyedProject (graph, keys) ─▶ plan, build, export, shell…
 */
import { buildGraph } from '../graph.js';
import { computeKeys } from '../key.js';
import type { KeyedProject, Project } from './types.js';

/** The graph and keys of a project whose package stages are locked (or that has none). */
export async function keyProject(p: Project): Promise<KeyedProject> {
  const graph = buildGraph(p.def, p.rules);
  return { ...p, graph, keys: await computeKeys(graph) };
}
