/**
 * A stand-in for an imgmake process: runs one sandbox from the spec in IMGMAKE_TEST_SPEC (JSON)
 * and exits with its code. The die-with-parent test kills this process with SIGKILL mid-run.
 * The spec travels in the environment so that this process's own command line does not carry
 * the test's marker.
 */
import { bwrapSandbox } from '../../src/sandbox/run.js';
import type { SandboxSpec } from '../../src/sandbox/spec.js';

const spec = JSON.parse(process.env['IMGMAKE_TEST_SPEC'] ?? 'null') as SandboxSpec | null;
const logFile = process.env['IMGMAKE_TEST_LOG'];
if (!spec || !logFile) {
  process.stderr.write('sandbox-child: IMGMAKE_TEST_SPEC and IMGMAKE_TEST_LOG are required\n');
  process.exit(2);
}
const r = await bwrapSandbox.run(spec, { logFile });
process.exit(r.exitCode ?? 1);
