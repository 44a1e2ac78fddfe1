// Run a command in imgmake's sandbox, using /work/main's own bwrapArgs (plain directories only).
// usage: node sbx.mjs [--net] [--root DIR] [--tree DIR] [--input NAME=DIR]... [--bind SRC:DEST]... [--robind SRC:DEST]... [--env K=V]... -- argv...
import { bwrapArgs } from '/work/main/dist/src/sandbox/spec.js';
import { spawnSync } from 'node:child_process';
const a = process.argv.slice(2);
let chrootMounts = false;
const spec = { buildroot: { kind: 'host' }, inputs: [], binds: [], env: {}, argv: [] };
while (a.length) {
  const k = a.shift();
  if (k === '--') { spec.argv = a.splice(0); break; }
  const v = k === '--net' ? null : a.shift();
  if (k === '--net') spec.network = true;
  else if (k === '--root') spec.buildroot = { kind: 'tree', mount: { kind: 'dir', path: v } };
  else if (k === '--tree') spec.tree = { mount: { kind: 'dir', path: v }, writable: true };
  else if (k === '--input') { const [n, d] = v.split('='); spec.inputs.push({ name: n, mount: { kind: 'dir', path: d } }); }
  else if (k === '--bind' || k === '--robind') { const [s, d] = v.split(':'); spec.binds.push({ src: s, dest: d, writable: k === '--bind' }); }
  else if (k === '--chroot-mounts') { chrootMounts = true; a.unshift(v); }
  else if (k === '--env') { const i = v.indexOf('='); spec.env[v.slice(0, i)] = v.slice(i + 1); }
  else throw new Error('bad arg ' + k);
}
const args = bwrapArgs(spec);
// FIX (finding): bwrap creates the parent /etc of --ro-bind-try files with mode 0700, so non-root
// users (apt's _apt, sshd...) cannot read /etc/passwd, /etc/resolv.conf. Create it 0755 first.
const i = args.indexOf('--ro-bind-try');
if (i >= 0 && !process.env.SBX_NOFIX) args.splice(i, 0, '--perms', '0755', '--dir', '/etc');
// PROPOSAL: a stage that chroots into its tree (apt.install) gets the sandbox's own minimal /dev
// and /proc mounted INTO the tree by bwrap (which mounts before dropping caps). The tree bind is
// nodev, so device nodes a stage mknods there cannot be opened: /dev/null must come from bwrap.
if (chrootMounts) { const j = args.indexOf('/run/imgmake/tree') + 1; args.splice(j, 0, '--dev', '/run/imgmake/tree/dev', '--proc', '/run/imgmake/tree/proc'); }
if (process.env.SBX_DEBUG) console.error('bwrap', args.join(' '));
const r = spawnSync('bwrap', args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
