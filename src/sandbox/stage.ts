/**
 * A stage's sandbox as data: its buildroot, its inputs read-only at /run/imgmake/inputs/NAME,
 * the rule's files at /run/imgmake/run and its command, around a writable tree. The scheduler
 * runs stages in it; `imgmake shell` opens the same view on a checkpoint, so what a user sees
 * there is what the stage saw.
 *
 * It makes mount points and files in the work tree's scratch directory (input mount points, the
 * artifact links of a package stage, the rule's files); it does not run anything, mount anything or
 * decide which trees are the stage's (the caller's `treeOf` does).
 */
import { copyFile, link, lstat, mkdir, writeFile } from 'node:fs/promises';
import { recheck } from '../confine.js';
import { join } from 'node:path';
import type { StageDef } from '../definition.js';
import type { PackageInput } from '../packages/input.js';
import { SOURCE_DATE_EPOCH } from '../key.js';
import type { Rule, RuleContext } from '../rule.js';
import type { Store, TreeRecord, WorkTree } from '../store/types.js';
import { SANDBOX_INPUTS, SANDBOX_RUN, SANDBOX_TREE, type SandboxSpec, type TreeMount } from './spec.js';

export interface StageSpecOptions {
  stage: StageDef;
  rule: Rule;
  store: Store;
  /** The writable tree the stage acts on (`store.begin(parent)`). */
  work: WorkTree;
  /** The committed tree at the other end of the stage's buildroot edge or input edge `name`. */
  treeOf: (kind: 'buildroot' | 'input', name?: string) => TreeRecord | undefined;
  /** Fetched artifacts by sha256: what a package stage's package input links. */
  artifacts?: ReadonlyMap<string, string> | undefined;
}

/** The SandboxSpec that runs `stage` on `work`: the exact set-up of a stage. */
export async function stageSpec(o: StageSpecOptions): Promise<SandboxSpec> {
  const { stage, store, work: w } = o;
  const inputs: SandboxSpec['inputs'] = [];
  const ctxInputs: RuleContext['inputs'] = {};
  const inputKeys: Record<string, string> = {};
  for (const input of stage.inputs) {
    let mount: TreeMount;
    let kind: 'tree' | 'file' | 'dir';
    if (input.kind === 'pipeline') {
      const t = o.treeOf('input', input.name)!;
      const mp = join(w.scratch, 'inputs', input.name);
      await mkdir(mp, { recursive: true });
      mount = store.readMount(t, mp);
      kind = 'tree';
      inputKeys[inputKeyEnv(input.name)] = t.key;
    } else if (input.kind === 'packages') {
      mount = { kind: 'dir', path: await linkArtifacts(join(w.scratch, 'inputs', input.name), input, o.artifacts) };
      kind = 'dir';
    } else {
      // Load checked that the path leads into the project; a symlink swapped in since (an
      // export into out/, another process) must not make this bind reach the host.
      const moved = recheck(input.root, input.path);
      if (moved) throw new Error(`input ${input.name} (${input.rel}) changed since the definition was loaded: ${moved}; run the build again`);
      const st = await lstat(input.path);
      if (!st.isDirectory() && !st.isFile()) throw new Error(`input ${input.name} (${input.rel}) is no longer a file or folder`);
      kind = st.isDirectory() ? 'dir' : 'file';
      mount = { kind, path: input.path };
    }
    inputs.push({ name: input.name, mount });
    ctxInputs[input.name] = { path: `${SANDBOX_INPUTS}/${input.name}`, kind };
  }
  const br = o.treeOf('buildroot');
  let buildroot: SandboxSpec['buildroot'] = { kind: 'host' };
  if (br) {
    const mp = join(w.scratch, 'buildroot');
    await mkdir(mp);
    buildroot = { kind: 'tree', mount: store.readMount(br, mp) };
  }
  const runDir = join(w.scratch, 'run');
  await mkdir(runDir);
  const invocation = await o.rule.invoke(structuredClone(stage.options), { tree: SANDBOX_TREE, inputs: ctxInputs, run: SANDBOX_RUN });
  for (const [name, content] of Object.entries(invocation.files ?? {})) {
    await writeFile(join(runDir, name), content, { mode: 0o755 });
  }
  return {
    buildroot,
    tree: { mount: w.mount, writable: true, ...(invocation.apiFilesystems ? { apiFilesystems: true } : {}) },
    inputs,
    runDir,
    argv: invocation.argv,
    env: { SOURCE_DATE_EPOCH, TREE: SANDBOX_TREE, INPUTS: SANDBOX_INPUTS, ...inputKeys },
  };
}

/**
 * The variable holding a pipeline input's cache key: `INPUT_KEY_tree`. A rule may record
 * it (ostree.commit puts it in the commit's metadata); it adds nothing to the key, which already
 * holds each input's key.
 */
export function inputKeyEnv(name: string): string {
  return `INPUT_KEY_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/**
 * A directory of a package stage's locked artifacts, hard-linked from where fetch verified them
 * (copied across filesystems), each under its `file` name, plus the format's extra files (an index
 * override, say).
 */
async function linkArtifacts(dir: string, input: PackageInput, fetched: ReadonlyMap<string, string> | undefined): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const a of input.artifacts) {
    const from = fetched?.get(a.sha256);
    if (!from) throw new Error(`${a.name} ${a.version} was not fetched (sha256 ${a.sha256})`);
    if (a.file.includes('/') || a.file === '.' || a.file === '..') throw new Error(`Internal error: artifact file name ${JSON.stringify(a.file)}`);
    const to = join(dir, a.file);
    await link(from, to).catch((e: NodeJS.ErrnoException) => (e.code === 'EXDEV' ? copyFile(from, to) : Promise.reject(e)));
  }
  for (const [name, content] of Object.entries(input.files)) await writeFile(join(dir, name), content);
  return dir;
}
