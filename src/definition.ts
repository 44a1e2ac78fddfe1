/**
 * The Definition: `imgmake.yaml` loaded, includes and variables resolved, every stage's
 * options validated against its rule's schema (defaults applied), every value keeping the
 * place it was written. `load.ts` produces it; everything after load reads only this.
 */
import type { RemoteUrl } from './remote/url.js';
import type { Loc } from './diagnostic.js';
import type { PipelineName, RuleName } from './ids.js';
import type { PackageInput } from './packages/input.js';

export interface Definition {
  /** Absolute path of the root definition file. */
  file: string;
  /** Directory of the root file: project-relative paths in events and keys are relative to it. */
  dir: string;
  /** Every file the definition was read from (root first, then includes): what watch watches. */
  files: string[];
  /** Variables after overrides, as strings. */
  vars: Record<string, string>;
  /** In the order they were written (includes first). */
  pipelines: Map<PipelineName, PipelineDef>;
  targets: Map<string, TargetDef>;
  /**
   * What `imgmake build` builds when no target is named: the target marked `default: true`, else
   * the first target of the top-level file, else the first of its includes' (like make's first).
   */
  defaultTarget?: string;
  /**
   * `cache: { max_size: 10G, remote: URL }`: the cache is collected to this many bytes after
   * each build; the remote cache builds use unless `--remote`/`IMGMAKE_REMOTE` say otherwise
   * (`${…}` substituted, checked at load; credentials never come from here).
   */
  cache?: { maxSize?: number; remote?: RemoteUrl };
  /**
   * Folders outside the project that includes and `file:` inputs may read (`--allow-path`),
   * as real paths; absent when none. Shown by build and plan, so that it is never silent.
   */
  allowed?: string[];
}

export interface PipelineDef {
  name: PipelineName;
  loc: Loc;
  /** The pipeline whose tree is the buildroot of this one's stages; absent: the host's /usr. */
  build?: { pipeline: PipelineName; loc: Loc };
  /**
   * The pipeline whose tree this one starts from (its first stage's parent is that pipeline's
   * last stage); absent: an empty tree.
   */
  base?: { pipeline: PipelineName; loc: Loc };
  stages: StageDef[];
}

export interface StageDef {
  pipeline: PipelineName;
  /** Position in the pipeline, from 0. */
  index: number;
  /** `name:` if given, else the index as a string: the STAGE of `PIPELINE.STAGE`. */
  id: string;
  rule: RuleName;
  ruleLoc: Loc;
  /** Validated against the rule's schema, defaults applied: exactly what goes into the key. */
  options: Record<string, unknown>;
  /** Where each option was written, by top-level option name (for `plan`'s reasons). */
  optionLocs: Record<string, Loc>;
  inputs: InputDef[];
  loc: Loc;
}

export type InputDef =
  | { name: string; loc: Loc; kind: 'pipeline'; pipeline: PipelineName }
  | {
      name: string;
      loc: Loc;
      kind: 'file';
      /**
       * Real path on the host (no symlink in it): a file or a directory of the project, checked
       * at load to be inside `root`, and checked again just before it is bound into a sandbox.
       */
      path: string;
      /** The folder it must stay in: the project folder, or an --allow-path folder. */
      root: string;
      /** Relative to the definition's directory, `/`-separated: what the key and events name. */
      rel: string;
    }
  /**
   * The locked artifacts of a stage whose rule installs packages (rule.json names a format):
   * added by imgmake from imgmake.lock, never written in a definition. Bound as a directory of
   * the artifacts and the format's extra files; its key is the format's digest of the locked
   * set (packages/format.ts).
   */
  | ({ loc: Loc; kind: 'packages' } & PackageInput);

export interface TargetDef {
  name: string;
  loc: Loc;
  pipeline: PipelineName;
  /** Paths inside the pipeline's tree to copy to `out/TARGET/`; empty: the whole tree. */
  export: string[];
  /** `default: true`: the target `imgmake build` (plan, watch) builds when none is named. */
  default?: true;
}
