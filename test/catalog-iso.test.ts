/**
 * The catalog's live ISO end to end: `imgmake build iso` (no blueprint, no imgmake.yaml), then
 * `imgmake boot iso` twice — UEFI (OVMF) and BIOS (SeaBIOS), software emulation, the ISO in a
 * CD-ROM drive and no disk at all — each until the system's login prompt on the serial console.
 * Then the ISO stages run again (`--from live.fstab`: the live initramfs, the squashfs, xorriso)
 * and give the same bytes; and the qcow2 of the same tree plans no package stage.
 *
 * The cache is shared with the other catalog tests ($IMGMAKE_CATALOG_TEST_CACHE, else
 * /var/tmp/imgmake-catalog-test): the first run installs Debian (minutes), later ones reuse it.
 * Measured here under load (2 cores, load 10–12, other guests running): 14.6 min in all with
 * the OS tree cached — UEFI boot to login 179 s, BIOS 142 s, the ISO stages' rerun ~9 min (most
 * of it update-initramfs, ~20 s on an idle machine).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { imgmake, ran, startImgmake } from './helpers/cli.js';

const CACHE = process.env['IMGMAKE_CATALOG_TEST_CACHE'] ?? '/var/tmp/imgmake-catalog-test';
const work = `${CACHE}-iso`;
const env = { IMGMAKE_CACHE: CACHE };

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** `imgmake boot iso ARGS` until `login:` on the console (then SIGTERM, which stops QEMU). */
async function bootToLogin(t: TestContext, label: string, args: string[]): Promise<string> {
  const started = Date.now();
  const child = startImgmake(['boot', 'iso', '--memory', '1024', '--accel', 'tcg', ...args], { cwd: work, env });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = once(child, 'exit');
  const seen = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 900_000);
    child.stdout!.on('data', (c: Buffer) => {
      out = (out + c.toString('latin1')).slice(-200_000);
      if (/ login: /.test(out)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve(/ login: /.test(out));
    });
  });
  const ms = Date.now() - started;
  child.kill('SIGTERM');
  await exited;
  assert.ok(seen, `${label}: no login prompt on the console after ${ms} ms:\n${err}\n${out.slice(-4000)}`);
  t.diagnostic(`${label}: login prompt after ${ms} ms`);
  return out;
}

test('catalog: the live ISO boots from a CD-ROM with no disk to a login prompt, UEFI and BIOS; its stages rerun to the same bytes', { timeout: 3_600_000 }, async (t) => {
  mkdirSync(work, { recursive: true });
  const started = Date.now();
  const built = await imgmake(['--json', 'build', 'iso'], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr + built.stdout.slice(-3000));
  t.diagnostic(`build: ${Date.now() - started} ms, ran ${ran(built).length} stages: ${ran(built).join(' ')}`);
  const iso = join(work, 'out', 'iso', 'live.iso');
  assert.ok(statSync(iso).size > 100 * 1024 * 1024, 'an ISO holding a Debian system');
  const first = await sha256(iso);

  for (const [label, args] of [['UEFI', []], ['BIOS', ['--bios']]] as const) {
    const console = await bootToLogin(t, label, [...args]);
    // The root came from the ISO's squashfs (the initramfs says which device held it), and
    // GRUB's menu was on the serial console.
    assert.match(console, /imgmake-live: medium \/dev\/sr0/, label);
    assert.match(console, /Debian live/, label);
    assert.match(console, /debian login: /, label);
  }

  // The ISO's own stages again, on the same OS tree: the same bytes.
  const again = await imgmake(['--json', 'build', 'iso', '--locked', '--from', 'live.fstab'], { cwd: work, env });
  assert.equal(again.code, 0, again.stderr + again.stdout.slice(-3000));
  assert.deepEqual(ran(again).sort(), ['iso.0', 'live-squashfs.0', 'live.fstab', 'live.initramfs']);
  assert.equal(await sha256(iso), first, 'the rebuilt ISO differs');

  // Another type of the same tree needs no package stage (its disk tools locked first, if this
  // cache has never built a disk without a blueprint).
  const lock = await imgmake(['lock', '--distro', 'debian-12'], { cwd: work, env });
  assert.equal(lock.code, 0, lock.stderr);
  const plan = await imgmake(['--json', 'plan', 'qcow2'], { cwd: work, env });
  assert.equal(plan.code, 0, plan.stderr);
  const stages = plan.events.filter((e) => e.type === 'plan-stage');
  assert.equal(stages.find((e) => e.node === 'distro.packages')?.status, 'cached');
  assert.equal(stages.find((e) => e.node === 'workload.fstab')?.status, 'cached');
});
