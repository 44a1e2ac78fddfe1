// node sandbox-run.mjs INPUT_ROOT OUT_TREE [ENV=VAL...] -- ARGV...
// Runs ARGV exactly as imgmake would: sandboxCommand() of /work/main's compiled spec.js,
// host buildroot, INPUT_ROOT read-only at /run/imgmake/inputs/root, OUT_TREE writable at
// /run/imgmake/tree, this directory read-only at /run/imgmake/run.
import { sandboxCommand } from '/work/main/dist/src/sandbox/spec.js';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
const [input, out, ...rest] = process.argv.slice(2);
const dd = rest.indexOf('--');
const env = Object.fromEntries(rest.slice(0, dd).map((s) => s.split(/=(.*)/s).slice(0, 2)));
const argv = rest.slice(dd + 1);
const spec = {
  buildroot: { kind: 'host' },
  tree: { mount: { kind: 'dir', path: path.resolve(out) }, writable: true },
  inputs: [{ name: 'root', mount: { kind: 'dir', path: path.resolve(input) } }],
  runDir: path.dirname(new URL(import.meta.url).pathname),
  argv, env,
};
const cmd = sandboxCommand(spec);
if (process.env.SHOW) console.error(cmd.file, cmd.args.join(' '));
const r = spawnSync(cmd.file, cmd.args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
