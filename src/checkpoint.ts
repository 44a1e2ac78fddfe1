/**
 * Stage checkpoints: every stage's tree is a checkpoint, addressed as `PIPELINE.STAGE` (the
 * stage's name, or its index: `os.packages`, `qcow2.0`). `imgmake shell`, `export` and `log`
 * look at one; this module decides what such a look needs:
 *
 *     the viewed tree   the stage's own (after it), or its parent's with --before (a first
 *                       stage without `base:` starts from an empty tree: none)
 *     a shell also      the stage's buildroot and its pipeline inputs, as the stage gets them
 *
 * and says what to do when one of those trees is not built. Pure: it reads the definition and
 * the graph; it does not touch the store, resolve names (cli/context.ts `resolveNode`) or run.
 */
import type { Definition } from './definition.js';
import { diagnostic, type Diagnostic } from './diagnostic.js';
import { ancestors, type BuildGraph, type EdgeKind } from './graph.js';
import type { NodeId } from './ids.js';
import { SANDBOX_INPUTS, SANDBOX_TREE } from './sandbox/spec.js';

/** Which tree of a stage: the one it leaves (`after`), or the one it starts from (`before`). */
export type Side = 'after' | 'before';

/** A tree a look at a checkpoint needs, and why (for the "not built" message). */
export interface NeededTree {
  node: NodeId;
  /** `tree` (the viewed one), `parent` (the viewed one, with --before), `buildroot` or `input NAME`. */
  role: string;
}

/** The stage node at the other end of `id`'s edge of `kind` (input `name`); undefined for none or a project file. */
export function upstreamStage(g: BuildGraph, id: NodeId, kind: EdgeKind, name?: string): NodeId | undefined {
  for (const e of g.graph.inEdges(id)) {
    const a = g.graph.getEdgeAttributes(e);
    if (a.kind !== kind || (name !== undefined && a.name !== name)) continue;
    const src = g.graph.source(e) as NodeId;
    return g.graph.getNodeAttributes(src).kind === 'stage' ? src : undefined;
  }
  return undefined;
}

/** The node whose tree `side` of stage `id` is; undefined: the empty tree. */
export function viewedNode(g: BuildGraph, id: NodeId, side: Side): NodeId | undefined {
  return side === 'after' ? id : upstreamStage(g, id, 'parent');
}

/** Every committed tree a shell on `side` of `id` mounts: the viewed tree, the buildroot, each pipeline input. */
export function shellTrees(g: BuildGraph, id: NodeId, side: Side): NeededTree[] {
  const out: NeededTree[] = [];
  const viewed = viewedNode(g, id, side);
  if (viewed) out.push({ node: viewed, role: side === 'after' ? 'tree' : 'parent' });
  const br = upstreamStage(g, id, 'buildroot');
  if (br) out.push({ node: br, role: 'buildroot' });
  for (const input of g.stage(id).stage.inputs) {
    const src = input.kind === 'pipeline' ? upstreamStage(g, id, 'input', input.name) : undefined;
    if (src) out.push({ node: src, role: `input ${input.name}` });
  }
  return out;
}

/**
 * A target whose build runs `id` (one of its own pipeline's targets first), to name in
 * `imgmake build TARGET --until NODE`; undefined when no target needs it.
 */
export function targetReaching(def: Definition, g: BuildGraph, id: NodeId): string | undefined {
  const own = g.stage(id).stage.pipeline;
  const targets = [...def.targets.values()].sort((a, b) => Number(b.pipeline === own) - Number(a.pipeline === own));
  return targets.find((t) => ancestors(g, [g.final(t.pipeline)]).has(id))?.name;
}

/**
 * The usage error for a needed tree that is not in the cache: `missing` is not built with the
 * current definition; `command` (`imgmake shell os.users --before`) needs it as `role`.
 */
export function notBuilt(def: Definition, g: BuildGraph, missing: NeededTree, command: string): Diagnostic {
  const why =
    missing.role === 'tree' ? '' : missing.role === 'parent' ? ` (${command} starts from its tree)` : ` (${command} mounts it as its ${missing.role})`;
  const target = targetReaching(def, g, missing.node);
  // A target's last stage of a converting rule hands its file to out/ (src/deliver.ts): built, not kept.
  if (target && g.stage(missing.node).rule.schema.deliver && g.final(def.targets.get(target)!.pipeline) === missing.node) {
    return diagnostic(
      'not-built',
      `${missing.node} is not in the cache${why}: a build of ${target} hands its output to out/${target} instead of keeping it (docs/store.md, "Delivered outputs")`,
      undefined,
      `run imgmake build ${target} --until ${missing.node}: a build that stops there keeps the tree`,
    );
  }
  const hint = target
    ? `run imgmake build ${target} --until ${missing.node}`
    : `no target builds pipeline ${g.stage(missing.node).stage.pipeline}: add one under targets:, then imgmake build TARGET --until ${missing.node}`;
  return diagnostic('not-built', `${missing.node} is not built with the current definition${why}`, undefined, hint);
}

/**
 * The shell's command: the user's, or an interactive shell from the buildroot, bash when it has
 * one. Decided inside the sandbox, where the buildroot (a tree's layers, or the host's /usr) is
 * one filesystem to look in.
 */
export function shellArgv(command: readonly string[]): string[] {
  return command.length ? [...command] : ['/bin/sh', '-c', '[ -x /bin/bash ] && exec /bin/bash; exec /bin/sh'];
}

/**
 * What a shell adds to the stage's environment: a prompt naming the checkpoint (Debian's
 * bash.bashrc shows `debian_chroot` in its own prompt), HOME in the private /tmp so history and
 * dotfiles stay out of the tree, and the terminal type.
 */
export function shellEnv(label: string, term: string | undefined): Record<string, string> {
  return { PS1: `(${label}) # `, debian_chroot: label, HOME: '/tmp', ...(term ? { TERM: term } : {}) };
}

/** How a checkpoint is named in prompts and messages: `rootfs.hostname`, `rootfs.hostname --before`. */
export function checkpointLabel(id: NodeId, side: Side): string {
  return side === 'after' ? id : `${id} --before`;
}

/** The lines an interactive shell starts with (on stderr): where things are and what is kept. */
export function shellBanner(o: { id: NodeId; side: Side; buildroot: NodeId | undefined; inputs: readonly string[]; argv: readonly string[] }): string[] {
  const tree = o.side === 'after' ? `the tree after ${o.id}` : `the tree ${o.id} starts from (--before)`;
  const lines = [
    `imgmake: a shell on ${tree}, at ${SANDBOX_TREE}; buildroot ${o.buildroot ?? "the host's /usr"}; no network`,
    `imgmake: nothing written here is kept: the tree is thrown away when the shell exits`,
  ];
  if (o.inputs.length) lines.push(`imgmake: inputs, read-only: ${o.inputs.map((n) => `${SANDBOX_INPUTS}/${n}`).join(' ')}`);
  if (o.side === 'before') lines.push(`imgmake: the stage runs: ${o.argv.join(' ')}`);
  return lines;
}
