/**
 * shape: which targets a patch can update, read from the graph and keys alone (no tree, no
 * store). A target is patchable when its exported file is a disk whose last writer is one
 * `disk.ext4` stage (the raw disk), or the `disk.convert` of such a disk (the qcow2):
 *
 *     OS tree ──input──► disk.ext4 (last stage of the disk pipeline) ──► [disk.convert] ──► export
 *
 * The **shape key** is the target's key with the OS tree's key taken out: every node between
 * the OS tree and the target (the partition table, the ESP's pipeline, GRUB, the ext4 stage,
 * the conversion) is keyed again with the OS tree's key replaced by a placeholder. Two builds
 * with one shape key differ only in the OS tree: the partition layout, every disk stage's
 * options, rule code and buildroot are the same. What those disk stages read from the OS tree
 * (GRUB's modules, the kernel and initrd paths) is named by `bootPaths`, so that a patch can
 * refuse an edit that touches them.
 *
 * It does not read out/, the store or a tree; index.ts does.
 */
import type { TargetDef } from '../definition.js';
import type { PatchRefusal } from '../event.js';
import { ancestors, descendants, type BuildGraph } from '../graph.js';
import type { CacheKey, NodeId } from '../ids.js';
import { canonicalJson, sha256, type Keys } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import type { PartitionRef } from '../../rules/_lib/disk.js';

export interface DiskShape {
  target: string;
  /** The exported file (its basename in out/TARGET/). */
  file: string;
  kind: 'raw' | 'qcow2';
  /** The final node of the OS tree (the ext4 stage's `tree` input). */
  osNode: NodeId;
  osKey: CacheKey;
  ext4Node: NodeId;
  /** The ext4 stage's partition (number or GPT name) and mtime policy. */
  partition: PartitionRef;
  mtime: 'clamp' | 'keep';
  /** disk.convert's compression (qcow2 only). */
  compression?: 'none' | 'zstd' | 'zlib';
  /** The target's key with the OS tree's key abstracted (see the module header). */
  shapeKey: string;
  /** Paths of the OS tree (relative, no leading /) the disk's other stages read. */
  bootPaths: string[];
}

export interface Refusal {
  reason: PatchRefusal;
  message: string;
}

export type { PatchRefusal };

/**
 * What the rules that read the OS tree beside disk.ext4 read from it. A rule not listed here
 * that takes the OS tree as an input makes the target unpatchable (imgmake cannot tell what
 * it depends on).
 */
const BOOT_READERS: Record<string, (options: Record<string, unknown>) => string[]> = {
  'grub.efi': (o) => ['boot', 'usr/lib/grub', ...[o['kernel'], o['initrd']].filter((v): v is string => typeof v === 'string').map(rel)],
  'grub.bios': () => ['boot', 'usr/lib/grub'],
};

/** Root-level names that are the kernel and initrd links Debian makes: read at boot too. */
export const BOOT_LINKS = /^(vmlinuz|initrd\.img)(\.old)?$/;

function rel(p: string): string {
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}

export function diskShape(g: BuildGraph, keys: Keys, t: TargetDef): Result<DiskShape, Refusal> {
  const refuse = (message: string): Result<DiskShape, Refusal> => fail({ reason: 'not-a-disk', message });
  if (t.export.length !== 1) return refuse(`target ${t.name} exports ${t.export.length} files; a patch updates one disk image`);
  const file = t.export[0]!.replace(/^\/+/, '');
  if (file.includes('/')) return refuse(`target ${t.name} exports ${t.export[0]}, not a disk image at the top of its tree`);
  const final = g.final(t.pipeline);
  const last = g.stage(final).stage;
  let ext4Node: NodeId;
  let kind: DiskShape['kind'];
  let compression: DiskShape['compression'];
  if (last.rule === 'disk.ext4') {
    if (last.options['filename'] !== file) return refuse(`target ${t.name} exports ${file}, not the disk ${String(last.options['filename'])} its disk.ext4 stage writes`);
    ext4Node = final;
    kind = 'raw';
  } else if (last.rule === 'disk.convert' && last.options['format'] === 'qcow2' && last.options['filename'] === file) {
    const src = inputNode(g, final, 'tree');
    if (!src) return refuse(`the disk.convert stage of target ${t.name} converts a disk of its own tree; a patch needs it to read the disk pipeline's`);
    const disk = g.stage(src).stage;
    if (disk.rule !== 'disk.ext4' || disk.options['filename'] !== last.options['source']) {
      return refuse(`the disk target ${t.name} converts is not finished by a disk.ext4 stage (its last stage is ${disk.rule})`);
    }
    ext4Node = src;
    kind = 'qcow2';
    compression = last.options['compression'] as DiskShape['compression'];
  } else {
    return refuse(`target ${t.name} is not a disk image made by disk.ext4 (its last stage is ${last.rule})`);
  }
  const ext4 = g.stage(ext4Node).stage;
  if (ext4.options['subdir'] !== undefined) return refuse(`${ext4Node} holds a subdir of its tree; a patch updates a filesystem made from a whole tree`);
  const osNode = inputNode(g, ext4Node, 'tree');
  if (!osNode) return refuse(`${ext4Node} has no tree input`);
  // Every other disk.ext4 before it in the disk's own pipeline (a /var partition, say) is a
  // filesystem this patch would not update.
  const diskStages = [...ancestors(g, [ext4Node])].filter((id) => g.stage(id).stage.pipeline === ext4.pipeline && g.stage(id).stage.rule === 'disk.ext4');
  if (diskStages.length > 1) return refuse(`the disk of target ${t.name} holds ${diskStages.length} ext4 filesystems; a patch updates a disk with one`);
  const between = [...ancestors(g, [final])].filter((id) => id !== osNode && descendants(g, [osNode]).has(id));
  const bootPaths = new Set<string>();
  for (const id of between) {
    if (id === ext4Node) continue;
    for (const e of g.graph.inEdges(id)) {
      if (g.graph.source(e) !== osNode) continue;
      const { stage } = g.stage(id);
      const reads = BOOT_READERS[stage.rule];
      if (!reads || g.graph.getEdgeAttributes(e).kind !== 'input') {
        return refuse(`${id} (${stage.rule}) reads the OS tree, and imgmake cannot tell which of its files: a patch could leave it stale`);
      }
      for (const p of reads(stage.options)) bootPaths.add(p);
    }
  }
  const osKey = keys.get(osNode)!.key;
  return ok({
    target: t.name,
    file,
    kind,
    osNode,
    osKey,
    ext4Node,
    partition: ext4.options['partition'] as PartitionRef,
    mtime: ext4.options['mtime'] === 'keep' ? 'keep' : 'clamp',
    ...(compression ? { compression } : {}),
    shapeKey: shapeKey(g, keys, final, osNode, new Set(between)),
    bootPaths: [...bootPaths].sort(),
  });
}

/** The source node of `node`'s pipeline input `name`, if it is a tree. */
function inputNode(g: BuildGraph, node: NodeId, name: string): NodeId | undefined {
  for (const e of g.graph.inEdges(node)) {
    const a = g.graph.getEdgeAttributes(e);
    if (a.kind === 'input' && a.name === name && g.graph.getNodeAttributes(g.graph.source(e)).kind === 'stage') return g.graph.source(e) as NodeId;
  }
  return undefined;
}

/**
 * `node`'s key object again, with the OS node's key as "OS" and each node of `between` by its
 * own shape key: what stays the same when only the OS tree changes.
 */
function shapeKey(g: BuildGraph, keys: Keys, node: NodeId, osNode: NodeId, between: Set<NodeId>, memo = new Map<NodeId, string>()): string {
  const known = memo.get(node);
  if (known) return known;
  const object = { ...keys.get(node)!.object };
  const sub = (key: CacheKey | null | 'host'): string | null => {
    if (key === null || key === 'host') return key;
    if (key === keys.get(osNode)!.key) return 'OS';
    for (const id of between) if (keys.get(id)!.key === key) return shapeKey(g, keys, id, osNode, between, memo);
    return key;
  };
  const inputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object.inputs)) inputs[k] = 'tree' in v ? { tree: sub(v.tree) } : v;
  const s = sha256(canonicalJson({ ...object, parent: sub(object.parent), buildroot: sub(object.buildroot), inputs }));
  memo.set(node, s);
  return s;
}
