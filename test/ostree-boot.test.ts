/**
 * An ostree disk booted under software emulation, upgraded offline and rolled back (issue 17):
 * the catalog's Debian 12 ostree definition, copied into a project whose `ostree-os` pipeline
 * gains one unit that reports on the serial console at every boot and drives the test:
 *
 *   boot 1  commit 1 deployed: `ostree admin status` lists one deployment, /usr is read-only,
 *           /etc writable; the blueprint user (users.firstboot, as a blueprint's user maps on an
 *           ostree type) was added by its unit: its SSH key in /var/home/edge, in /usr only as
 *           the unit's data; commit 2 (another hostname, commit 1 as its parent) arrives on a
 *           second disk (a small ext4 image holding its repository): `ostree pull-local` from
 *           it, `ostree admin upgrade`, reboot
 *   boot 2  commit 2 booted: its hostname, two deployments, the user's unit not run again (the
 *           same data); the rollback: ostree 2022.7 has no
 *           `admin rollback` (that is rpm-ostree's), so the previous commit is deployed again
 *           (`ostree admin deploy CHECKSUM`, kernel arguments carried over), reboot
 *   boot 3  commit 1 booted again (its hostname), two deployments (it and commit 2); power off
 *
 * QEMU runs with -no-reboot, so each boot is one QEMU run on the same throw-away overlay.
 * The cache is the ostree test's ($IMGMAKE_OSTREE_TEST_CACHE, else /var/tmp/imgmake-ostree-test):
 * the package stage and dracut are shared with test/ostree-e2e.test.ts; the lock is the one the
 * catalog build of that cache wrote, when there is one.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { imgmake, ran, repoRoot, stageEvents } from './helpers/cli.js';
import { OVMF_CODE, OVMF_VARS, qemuArgs } from '../src/boot.js';

const CACHE = process.env['IMGMAKE_OSTREE_TEST_CACHE'] ?? '/var/tmp/imgmake-ostree-test';

/** Runs at every boot (as root, after multi-user.target) and prints one line the test reads. */
const CHECK = `#!/bin/sh
state=/var/lib/ostree-check
mkdir -p "$state"
n=$(( $(cat "$state/boots" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/boots"
status=$(ostree admin status)
printf '%s\\n' "$status"
deployments=$(printf '%s\\n' "$status" | grep -c -E '^[* ] debian [0-9a-f]{64}')
booted=$(printf '%s\\n' "$status" | sed -n 's/^\\* debian \\([0-9a-f]*\\)\\..*/\\1/p')
if touch /usr/.ostree-check 2>/dev/null; then usr=rw; else usr=ro; fi
if touch /etc/.ostree-check && rm /etc/.ostree-check; then etc=rw; else etc=ro; fi
# The blueprint user (users.firstboot): applied by its unit at the first boot only; the key in
# the home under /var, and in /usr only as the unit's read-only data.
users=$(systemctl is-active imgmake-users.service)
key=$(cut -d' ' -f3 /home/edge/.ssh/authorized_keys 2>/dev/null)
home=$(stat -c %U:%a /var/home/edge 2>/dev/null)
baked=$(grep -rl edge@boot-test /usr/etc /usr/share/factory /usr/lib/imgmake 2>/dev/null | tr '\\n' ,)
echo "OSTREE-CHECK boot=$n hostname=$(hostname) deployments=$deployments booted=$booted usr=$usr etc=$etc users=$users key=$key home=$home baked=$baked end"
if [ "$n" = 1 ] && [ -b /dev/vdb ]; then
  mkdir -p /run/update && mount -o ro /dev/vdb /run/update &&
    ostree pull-local --repo=/ostree/repo /run/update/repo debian/12/x86_64/edge &&
    ostree admin upgrade && echo "OSTREE-CHECK-UPGRADED" && exec systemctl reboot
elif [ "$n" = 2 ]; then
  # ostree 2022.7 has no rollback command (rpm-ostree's): deploy the previous commit again.
  previous=$(printf '%s\\n' "$status" | sed -n 's/^  debian \\([0-9a-f]*\\)\\..*/\\1/p')
  ostree admin deploy --os=debian "$previous" && echo "OSTREE-CHECK-ROLLED-BACK to $previous" && exec systemctl reboot
fi
exec systemctl poweroff
`;

const UNIT = `[Unit]
Description=imgmake's ostree boot test
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/libexec/ostree-check
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`;

/** The blueprint user's key (its comment is what the console shows). */
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3m2c4b8h1 edge@boot-test';

/** The stages the test adds to ostree-os (after the timezone, before the layout). */
const CHECK_STAGE = `      - name: check
        rule: files.write
        options:
          files:
            - { path: /usr/libexec/ostree-check, mode: "0755", content: ${JSON.stringify(CHECK)} }
      - name: check-unit
        rule: systemd.units
        options:
          units: [{ name: ostree-check.service, content: ${JSON.stringify(UNIT)} }]
          enable: [ostree-check.service]
      # What a blueprint's [[customizations.user]] maps to on an ostree type.
      - name: users
        rule: users.firstboot
        options:
          users: [{ name: edge, groups: [sudo], ssh_keys: ["${KEY}"] }]
`;

/** One QEMU run until the guest powers off or reboots (-no-reboot); the serial console's text. */
function qemu(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((done, reject) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      done(out);
    });
  });
}

function check(console: string, boot: number): Record<string, string> {
  const line = new RegExp(`OSTREE-CHECK (boot=${boot} .*) end`).exec(console)?.[1];
  assert.ok(line, `no OSTREE-CHECK line for boot ${boot} on the console:\n${console.slice(-4000)}`);
  return Object.fromEntries(line.split(' ').map((kv) => kv.split('=') as [string, string]));
}

test('ostree-qcow2 boots with one deployment, /usr read-only, /etc writable; an offline upgrade from a second disk boots commit 2; a rollback boots commit 1', { timeout: 3_600_000 }, async (t) => {
  const project = `${CACHE}-boot-project`;
  rmSync(project, { recursive: true, force: true });
  cpSync(join(repoRoot, 'catalog', 'debian-12'), project, { recursive: true });
  const file = join(project, 'x86_64.yaml');
  const lock = join(CACHE, 'catalog', 'debian-12-x86_64-plain', 'imgmake.lock');
  if (existsSync(lock)) copyFileSync(lock, join(project, 'imgmake.lock'));
  const part = join(project, 'ostree.yaml');
  const yaml = readFileSync(part, 'utf8');
  assert.ok(yaml.includes('\n  ostree-tree:\n'));
  writeFileSync(part, yaml.replace('\n  ostree-tree:\n', `${CHECK_STAGE}\n  ostree-tree:\n`));
  const env = { IMGMAKE_CACHE: CACHE };

  let started = Date.now();
  const one = await imgmake(['--json', '-f', file, 'build', 'ostree-qcow2', 'ostree-commit'], { env });
  assert.equal(one.code, 0, one.stderr + one.stdout.slice(-3000));
  t.diagnostic(`commit 1 and its disk: ${Date.now() - started} ms, ran ${ran(one).length} stages`);
  // The package stage is the catalog's own (ostree-e2e's, a catalog build's): the same key. It
  // may have run here: the two files run side by side, and after a change to the package rule
  // the first of them on this cache builds it.
  mkdirSync(`${CACHE}-work`, { recursive: true });
  const shared = await imgmake(['--json', 'plan', 'ostree-commit'], { cwd: `${CACHE}-work`, env });
  assert.equal(shared.code, 0, shared.stderr);
  const catalogKey = shared.events.find((e) => e.type === 'plan-stage' && e.node === 'ostree-distro.packages')?.key;
  assert.ok(catalogKey, 'the catalog plans ostree-distro.packages');
  assert.equal(stageEvents(one).find((e) => e.node === 'ostree-distro.packages')?.key, catalogKey, 'the package stage is the shared one');
  const c1 = JSON.parse(readFileSync(join(project, 'out', 'ostree-commit', 'ostree-commit.json'), 'utf8')).commit as string;
  copyFileSync(join(project, 'out', 'ostree-commit', 'ostree-repo.tar'), join(project, 'commit1.tar'));
  const work = join(project, 'run');
  mkdirSync(work);
  const disk = join(work, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(project, 'out', 'ostree-qcow2', 'disk.qcow2'), disk]);

  // Commit 2: another hostname, commit 1 as its parent (a project names it as an input).
  writeFileSync(part, readFileSync(part, 'utf8').replace('inputs: { tree: { pipeline: ostree-tree } }', 'inputs: { tree: { pipeline: ostree-tree }, parent: { file: commit1.tar } }'));
  started = Date.now();
  const two = await imgmake(['--json', '-f', file, '--var', 'hostname=edge-two', 'build', 'ostree-commit'], { env });
  assert.equal(two.code, 0, two.stderr + two.stdout.slice(-3000));
  t.diagnostic(`commit 2: ${Date.now() - started} ms, ran ${ran(two).join(' ')}`);
  const c2 = JSON.parse(readFileSync(join(project, 'out', 'ostree-commit', 'ostree-commit.json'), 'utf8'));
  assert.equal(c2.parent, c1);
  // The update disk: an ext4 filesystem holding commit 2's repository at /repo.
  const update = join(work, 'update');
  mkdirSync(join(update, 'repo'), { recursive: true });
  execFileSync('tar', ['-xf', join(project, 'out', 'ostree-commit', 'ostree-repo.tar'), '-C', join(update, 'repo')]);
  execFileSync('mkfs.ext4', ['-q', '-d', update, join(work, 'update.img'), '1G']);

  const vars = join(work, 'OVMF_VARS.fd');
  copyFileSync(OVMF_VARS, vars);
  void OVMF_CODE;
  const args = [...qemuArgs({ disk, firmware: 'uefi', accel: 'tcg', memoryMiB: 1024, cpus: 2, interactive: false, varsFile: vars }), '-drive', `if=virtio,format=raw,readonly=on,file=${join(work, 'update.img')}`];
  const boots: Record<string, string>[] = [];
  for (const n of [1, 2, 3]) {
    const booting = Date.now();
    const console = await qemu(args, 900_000);
    t.diagnostic(`boot ${n}: ${Date.now() - booting} ms`);
    writeFileSync(join(work, `console-${n}.log`), console);
    boots.push(check(console, n));
    if (n === 1) assert.match(console, /OSTREE-CHECK-UPGRADED/, console.slice(-4000));
    if (n === 2) assert.match(console, /OSTREE-CHECK-ROLLED-BACK/, console.slice(-4000));
  }
  const [b1, b2, b3] = boots as [Record<string, string>, Record<string, string>, Record<string, string>];
  assert.deepEqual([b1['hostname'], b1['deployments'], b1['booted'], b1['usr'], b1['etc']], ['debian', '1', c1, 'ro', 'rw'], 'boot 1: commit 1, alone');
  // The blueprint user at the first boot: its key in its home under /var, nowhere in /usr but
  // the unit's data; the later boots (commit 2 has the same users) do not run the unit again.
  assert.deepEqual([b1['users'], b1['key'], b1['home'], b1['baked']], ['active', 'edge@boot-test', 'edge:700', '/usr/lib/imgmake/users/keys-0,'], 'boot 1: the user applied at first boot');
  assert.deepEqual([b2['users'], b2['key'], b3['users'], b3['key']], ['inactive', 'edge@boot-test', 'inactive', 'edge@boot-test'], 'boots 2 and 3: the same data, not applied again');
  assert.deepEqual([b2['hostname'], b2['deployments'], b2['booted']], ['edge-two', '2', c2.commit], 'boot 2: the upgrade, both deployments listed');
  assert.deepEqual([b3['hostname'], b3['deployments'], b3['booted']], ['debian', '2', c1], 'boot 3: the rollback to commit 1');
  rmSync(work, { recursive: true, force: true });
});
