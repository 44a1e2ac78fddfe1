/**
 * Rules: the stage implementations in `rules/`, one folder each.
 *
 *     rules/files.mkdir/
 *       rule.json       summary, description, the JSON-Schema of `options`, the inputs it takes
 *       index.ts        default export: (options, ctx) => RuleInvocation   (pure)
 *       index.test.ts   its own test, run on a temporary tree through the real sandbox
 *
 * A rule never validates its options (load did, with YAML positions) and never talks to
 * another rule: everything it needs arrives in its options and inputs. Its `index.ts` turns
 * validated options into the command the sandbox runs (usually a shell script using the
 * buildroot's tools); the engine runs it with the tree read-write at `ctx.tree`.
 *
 * The rule's digest covers the code that runs when its stages run: its folder and the shared
 * files it imports, reads or sources, as compiled (rule-code.ts), so editing a rule invalidates
 * every tree it built (osbuild#1099) and editing a disk helper invalidates only disk stages.
 *
 * This module finds, describes and digests rules; it does not run them (schedule.ts does).
 */
import { readdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ValidateFunction } from 'ajv';
import type { Digest, RuleName } from './ids.js';
import { fileHasher, ruleCode, type RuleCode, type RulesRoot } from './rule-code.js';
import { packageRoot } from './package-root.js';
import { importOutside } from './import-outside.js';

export type { RuleCode, RulesRoot } from './rule-code.js';

/** Where a rule's command finds things inside the sandbox. */
export interface RuleContext {
  /** The tree being built, read-write: `/run/imgmake/tree`. */
  tree: string;
  /** Each named input, read-only: `/run/imgmake/inputs/NAME` (a directory, or a file). */
  inputs: Record<string, { path: string; kind: 'tree' | 'file' | 'dir' }>;
  /** Read-only directory holding `RuleInvocation.files`: `/run/imgmake/run`. */
  run: string;
}

export interface RuleInvocation {
  /** The command, run inside the sandbox with the tree as the working directory. */
  argv: string[];
  /** Files written to `ctx.run` before the command starts (a script, inline content). */
  files?: Record<string, string | Uint8Array>;
  /** A private /dev and /proc inside the tree, for a command that chroots into it (a package manager). */
  apiFilesystems?: boolean;
}

export type RuleInvoke<O = Record<string, unknown>> = (options: O, ctx: RuleContext) => RuleInvocation;

/** One named input a rule takes, as `rule.json` declares it. */
export interface InputSpec {
  description: string;
  required?: boolean;
  /** Which kinds of input may be bound to it (default: both). */
  kinds?: ('pipeline' | 'file')[];
}

/** `rule.json`. */
export interface RuleSchema {
  summary: string;
  description?: string;
  /** JSON-Schema (draft-07) of the stage's `options`. */
  options: Record<string, unknown>;
  /** Named inputs. `"*"` accepts inputs of any name (files.copy). */
  inputs?: Record<string, InputSpec>;
  /**
   * The package format the stage installs (a name in src/packages/formats.ts). imgmake resolves
   * its options' package set into imgmake.lock, fetches the artifacts, and binds them as the
   * format's input, whose digest (the locked set) is in the key (docs/packages.md).
   */
  lock?: string;
  /**
   * The stage only converts or packs a tree the cache keeps (a disk format, an archive): as a
   * target's last stage, its file goes to out/TARGET instead of into the cache (src/deliver.ts).
   */
  deliver?: boolean;
}

export interface Rule {
  name: RuleName;
  /** Absolute path of the rule's folder. */
  dir: string;
  schema: RuleSchema;
  /**
   * The files of the code that runs for the rule's stages (rule-code.ts). Reading it throws a
   * RuleCodeError when that code cannot be told (its compiled code is missing).
   */
  code: RuleCode;
  /** `code.digest`: part of every key the rule's stages get. */
  digest: Digest;
  /** ajv validator for `options`; fills in defaults (mutates its argument). */
  validate: ValidateFunction;
  invoke(options: Record<string, unknown>, ctx: RuleContext): Promise<RuleInvocation>;
}

export type RuleRegistry = ReadonlyMap<RuleName, Rule>;

export { packageRoot };

/** The rules that ship with imgmake. */
export const builtinRulesDir = join(packageRoot, 'rules');

/** The rules that ship with imgmake and where `tsc` compiles them. */
export const builtinRules: RulesRoot = { dir: builtinRulesDir, compiled: join(packageRoot, 'dist', 'rules') };

/**
 * Schemas are not checked against JSON-Schema's meta-schema on each run (compiling that costs a
 * build ~90 ms); test/rules-schemas.test.ts checks every rule's schema instead. ajv is required
 * here, on the first validator made, not imported with this module: `imgmake rules`, `targets`
 * and whatever validates nothing need not load its sixty modules.
 */
export function newAjv(o: { validateSchema?: boolean } = {}) {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
  return new Ajv({ allErrors: true, useDefaults: true, strict: false, validateSchema: o.validateSchema ?? false });
}

const RULE_NAME = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

/**
 * Loads every rule folder of the given roots; a later root may not redefine a name. A folder
 * given as a path is compiled into the package's `dist/` when it is inside the package.
 * A rule's schema (rule.json), code digest and options validator are read and made on first
 * use: a build reads and compiles only the rules its definition names (every rule would cost a
 * no-op build ~200 ms), and ajv is loaded by the first validator.
 */
export async function loadRules(roots: (RulesRoot | string)[] = [builtinRules]): Promise<RuleRegistry> {
  let ajv: ReturnType<typeof newAjv> | undefined;
  const hash = fileHasher();
  const rules = new Map<RuleName, Rule>();
  for (const given of roots) {
    const root = typeof given === 'string' ? rootOf(given) : given;
    for (const entry of (await readdir(root.dir, { withFileTypes: true })).sort(byName)) {
      if (!entry.isDirectory() || !RULE_NAME.test(entry.name)) continue;
      const ruleDir = join(root.dir, entry.name);
      const schemaPath = join(ruleDir, 'rule.json');
      if (!existsSync(schemaPath)) continue;
      const name = entry.name as RuleName;
      if (rules.has(name)) throw new Error(`rule ${name} is defined twice: ${rules.get(name)!.dir} and ${ruleDir}`);
      const implementation = implementationPath(root, ruleDir);
      let schema: RuleSchema | undefined;
      let code: RuleCode | undefined;
      let validate: ValidateFunction | undefined;
      let loaded: RuleInvoke | undefined;
      rules.set(name, {
        name,
        dir: ruleDir,
        get schema() {
          return (schema ??= JSON.parse(readFileSync(schemaPath, 'utf8')) as RuleSchema);
        },
        get code() {
          return (code ??= ruleCode({ name, dir: ruleDir, implementation, root, hash }));
        },
        get digest() {
          return this.code.digest;
        },
        get validate() {
          return (validate ??= (ajv ??= newAjv()).compile(this.schema.options));
        },
        async invoke(options, ctx) {
          loaded ??= ((await importOutside(pathToFileURL(implementation).href)) as { default: RuleInvoke }).default;
          return loaded(options, ctx);
        },
      });
    }
  }
  return rules;
}

/** A rules folder given by path: inside the package, tsc compiles it into `dist/` beside the rest. */
function rootOf(dir: string): RulesRoot {
  const rel = relative(packageRoot, resolve(dir));
  return rel.startsWith('..') || isAbsolute(rel) ? { dir: resolve(dir) } : { dir: resolve(dir), compiled: join(packageRoot, 'dist', rel) };
}

/** `rules/x.y/` runs as its compiled `index.js`; a folder with its own index.js runs that. */
function implementationPath(root: RulesRoot, ruleDir: string): string {
  const own = join(ruleDir, 'index.js');
  if (existsSync(own) || !root.compiled) return own;
  return join(root.compiled, relative(root.dir, ruleDir), 'index.js');
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
