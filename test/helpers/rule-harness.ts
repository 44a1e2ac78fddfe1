/**
 * Runs one built-in rule the way the scheduler does (src/schedule.ts, `runStage`), on a plain
 * temporary tree and through the real bubblewrap sandbox: validate the options with the rule's
 * schema (filling defaults), `invoke` it against the sandbox paths, write its files to a run
 * directory, and run the command with the tree read-write at /run/imgmake/tree.
 *
 * It does not touch a store, compute keys or mount overlays: the tree is one host directory
 * that tests inspect afterwards with lstat/readFile/readlink.
 *
 *     const r = await runRule('files.write', { files: [{ path: '/etc/motd', content: 'hi\n' }] });
 *     try {
 *       assertOk(r);
 *       assert.equal(readFileSync(join(r.tree, 'etc/motd'), 'utf8'), 'hi\n');
 *     } finally {
 *       r.cleanup();
 *     }
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorObject } from 'ajv';
import { loadRules, type Rule, type RuleContext, type RuleInvocation, type RuleRegistry } from '../../src/rule.js';
import { bwrapSandbox } from '../../src/sandbox/run.js';
import { SANDBOX_INPUTS, SANDBOX_RUN, SANDBOX_TREE, type SandboxSpec } from '../../src/sandbox/spec.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import type { RuleName } from '../../src/ids.js';
import { tempDir } from './sandbox-fixtures.js';

export { tempDir } from './sandbox-fixtures.js';

/** An input as a stage binds it: a project file or folder, or (kind 'tree') another pipeline's tree. */
export interface HarnessInput {
  kind: 'tree' | 'file' | 'dir';
  /** The host path bound read-only at /run/imgmake/inputs/NAME. */
  path: string;
}

export interface RunRuleOptions {
  /**
   * The tree the rule acts on: a callback that fills a fresh empty directory (run as root on the
   * host, before the sandbox starts), or an existing directory the caller owns and removes.
   */
  tree?: ((dir: string) => unknown) | string;
  inputs?: Record<string, HarnessInput>;
  /** A buildroot tree the sandbox runs on, instead of the host's /usr (rpm.install runs the buildroot's rpm). */
  buildroot?: string;
}

export interface RuleRun {
  /** Schema errors of the options; when there are any, nothing ran and `exitCode` is null. */
  errors: ErrorObject[];
  /** The options after validation, defaults filled in. */
  options: Record<string, unknown>;
  exitCode: number | null;
  /** Everything the command wrote to stdout and stderr. */
  log: string;
  /** The host directory that was the tree. */
  tree: string;
  invocation?: RuleInvocation;
  /** Removes the temp dirs this run made (not a caller-owned tree). */
  cleanup: () => void;
}

let registry: Promise<RuleRegistry> | undefined;

/** The built-in rule `name`, loaded once per test process. */
export async function getRule(name: string): Promise<Rule> {
  registry ??= loadRules();
  const rule = (await registry).get(name as RuleName);
  if (!rule) throw new Error(`no built-in rule ${name}`);
  return rule;
}

/** The schema errors `options` get from rule `name` (none: valid). Does not run anything. */
export async function schemaErrors(name: string, options: unknown): Promise<ErrorObject[]> {
  const rule = await getRule(name);
  return rule.validate(structuredClone(options)) ? [] : [...(rule.validate.errors ?? [])];
}

/**
 * Validates `options`, invokes rule `name` and runs it in the sandbox. A rule whose `invoke`
 * throws makes this reject, with its temp dirs already removed.
 */
export async function runRule(name: string, options: unknown, opts: RunRuleOptions = {}): Promise<RuleRun> {
  const rule = await getRule(name);
  const work = tempDir('imgmake-rule-test-');
  let tree: string;
  if (typeof opts.tree === 'string') {
    tree = opts.tree;
  } else {
    tree = join(work.dir, 'tree');
    mkdirSync(tree);
  }
  try {
    const filled = structuredClone(options) as Record<string, unknown>;
    if (!rule.validate(filled)) {
      return { errors: [...(rule.validate.errors ?? [])], options: filled, exitCode: null, log: '', tree, cleanup: work.cleanup };
    }
    if (typeof opts.tree === 'function') await opts.tree(tree);

    // As schedule.ts: inputs at /run/imgmake/inputs/NAME, the rule's files in the run dir (0755).
    const inputs: SandboxSpec['inputs'] = [];
    const ctxInputs: RuleContext['inputs'] = {};
    for (const [inputName, input] of Object.entries(opts.inputs ?? {})) {
      inputs.push({ name: inputName, mount: { kind: input.kind === 'file' ? 'file' : 'dir', path: input.path } });
      ctxInputs[inputName] = { path: `${SANDBOX_INPUTS}/${inputName}`, kind: input.kind };
    }
    const runDir = join(work.dir, 'run');
    mkdirSync(runDir);
    const invocation = await rule.invoke(structuredClone(filled), { tree: SANDBOX_TREE, inputs: ctxInputs, run: SANDBOX_RUN });
    for (const [file, content] of Object.entries(invocation.files ?? {})) {
      writeFileSync(join(runDir, file), content, { mode: 0o755 });
    }
    const spec: SandboxSpec = {
      buildroot: opts.buildroot ? { kind: 'tree', mount: { kind: 'dir', path: opts.buildroot } } : { kind: 'host' },
      tree: { mount: { kind: 'dir', path: tree }, writable: true, ...(invocation.apiFilesystems ? { apiFilesystems: true } : {}) },
      inputs,
      runDir,
      argv: invocation.argv,
      env: { SOURCE_DATE_EPOCH, TREE: SANDBOX_TREE, INPUTS: SANDBOX_INPUTS },
    };
    const logFile = join(work.dir, 'log');
    writeFileSync(logFile, '');
    const r = await bwrapSandbox.run(spec, { logFile });
    const log = readFileSync(logFile, 'utf8');
    return { errors: [], options: filled, exitCode: r.exitCode, log, tree, invocation, cleanup: work.cleanup };
  } catch (e) {
    work.cleanup();
    throw e;
  }
}

/** Asserts the options were valid and the rule exited 0; the message carries the log. */
export function assertOk(r: RuleRun): void {
  assert.deepEqual(r.errors, [], `options rejected by the schema: ${JSON.stringify(r.errors)}`);
  assert.equal(r.exitCode, 0, `rule exited ${r.exitCode}; log:\n${r.log}`);
}

/** Asserts the rule ran and failed, and that its log mentions every one of `needles`. */
export function assertFails(r: RuleRun, ...needles: string[]): void {
  assert.deepEqual(r.errors, [], `options rejected by the schema: ${JSON.stringify(r.errors)}`);
  assert.notEqual(r.exitCode, 0, `rule succeeded but should have failed; log:\n${r.log}`);
  assert.notEqual(r.exitCode, null, `rule was killed; log:\n${r.log}`);
  for (const n of needles) assert.ok(r.log.includes(n), `log should mention ${JSON.stringify(n)}; log:\n${r.log}`);
}

/** Runs `fn` with a fresh run of the rule and always cleans up afterwards. */
export async function withRule(
  name: string,
  options: unknown,
  opts: RunRuleOptions,
  fn: (r: RuleRun) => void | Promise<void>,
): Promise<void> {
  const r = await runRule(name, options, opts);
  try {
    await fn(r);
  } finally {
    r.cleanup();
  }
}

/** The permission bits (with set-id and sticky bits) of a mode. */
export function perms(mode: number): number {
  return mode & 0o7777;
}
