/**
 * Runs a built-in rule the way rule-harness.ts's `runRule` does (validate, invoke, write the
 * run dir, run through the real bubblewrap sandbox on a plain temporary tree), but with a
 * buildroot TREE as the sandbox's root instead of the host's /usr: rpm.install runs the
 * buildroot's rpm, never the host's. Returns the same RuleRun, so assertOk/assertFails apply.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRule, tempDir, type HarnessInput, type RuleRun } from './rule-harness.js';
import { bwrapSandbox } from '../../src/sandbox/run.js';
import { SANDBOX_INPUTS, SANDBOX_RUN, SANDBOX_TREE, type SandboxSpec } from '../../src/sandbox/spec.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import type { RuleContext } from '../../src/rule.js';

export async function runRuleInBuildroot(buildroot: string, name: string, options: unknown, inputs: Record<string, HarnessInput> = {}): Promise<RuleRun> {
  const rule = await getRule(name);
  const work = tempDir('imgmake-rule-test-');
  const tree = join(work.dir, 'tree');
  mkdirSync(tree);
  try {
    const filled = structuredClone(options) as Record<string, unknown>;
    if (!rule.validate(filled)) return { errors: [...(rule.validate.errors ?? [])], options: filled, exitCode: null, log: '', tree, cleanup: work.cleanup };
    const specInputs: SandboxSpec['inputs'] = [];
    const ctxInputs: RuleContext['inputs'] = {};
    for (const [n, i] of Object.entries(inputs)) {
      specInputs.push({ name: n, mount: { kind: i.kind === 'file' ? 'file' : 'dir', path: i.path } });
      ctxInputs[n] = { path: `${SANDBOX_INPUTS}/${n}`, kind: i.kind };
    }
    const runDir = join(work.dir, 'run');
    mkdirSync(runDir);
    const invocation = await rule.invoke(structuredClone(filled), { tree: SANDBOX_TREE, inputs: ctxInputs, run: SANDBOX_RUN });
    for (const [file, content] of Object.entries(invocation.files ?? {})) writeFileSync(join(runDir, file), content, { mode: 0o755 });
    const spec: SandboxSpec = {
      buildroot: { kind: 'tree', mount: { kind: 'dir', path: buildroot } },
      tree: { mount: { kind: 'dir', path: tree }, writable: true, ...(invocation.apiFilesystems ? { apiFilesystems: true } : {}) },
      inputs: specInputs,
      runDir,
      argv: invocation.argv,
      env: { SOURCE_DATE_EPOCH, TREE: SANDBOX_TREE, INPUTS: SANDBOX_INPUTS },
    };
    const logFile = join(work.dir, 'log');
    writeFileSync(logFile, '');
    const r = await bwrapSandbox.run(spec, { logFile });
    return { errors: [], options: filled, exitCode: r.exitCode, log: readFileSync(logFile, 'utf8'), tree, invocation, cleanup: work.cleanup };
  } catch (e) {
    work.cleanup();
    throw e;
  }
}
