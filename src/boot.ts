/**
 * boot: starts QEMU on an exported disk image, headless, its serial console on the terminal.
 *
 *     image ─► a throw-away qcow2 overlay (the exported image is never written)
 *           ─► qemu-system-x86_64 -machine q35 (UEFI from Debian's OVMF, or SeaBIOS)
 *              accel: KVM when a probe guest really runs under it, else TCG
 *
 * `/dev/kvm` can exist and still not run guests (nested virtualisation without the features a
 * guest needs: "KVM internal error. Suberror: 1 / emulation failure"), so the probe starts the
 * real firmware with the real machine and CPU model and waits for its boot manager on the serial
 * console. `qemuArgs` is pure; the rest is process plumbing.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export type Accel = 'kvm' | 'tcg';

export interface QemuSpec {
  /** The disk QEMU writes to: a throw-away overlay over the exported image (none: firmware only). */
  disk?: string;
  /** An ISO image in a read-only CD-ROM drive (a live ISO boots from it, with or without a disk). */
  cdrom?: string;
  firmware: 'uefi' | 'bios';
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  /** A writable copy of OVMF's variable store (uefi). */
  varsFile?: string;
  /** Forward this host port on 127.0.0.1 to the guest's ssh (port 22); no network without it. */
  sshPort?: number;
  /** The serial console on this process's stdio with QEMU's monitor multiplexed (Ctrl-A X quits). */
  interactive: boolean;
}

export function qemuArgs(s: QemuSpec): string[] {
  const a = ['-machine', `q35,accel=${s.accel}`, '-cpu', s.accel === 'kvm' ? 'host' : 'max'];
  a.push('-smp', String(s.cpus), '-m', String(s.memoryMiB));
  a.push('-nodefaults', '-nographic', '-no-reboot');
  a.push('-serial', s.interactive ? 'mon:stdio' : 'stdio');
  if (s.firmware === 'uefi') {
    if (!s.varsFile) throw new Error('Internal error: UEFI boot without a variable store');
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${s.varsFile}`);
  }
  if (s.disk !== undefined) a.push('-drive', `if=virtio,format=qcow2,file=${s.disk}`);
  if (s.cdrom !== undefined) a.push('-drive', `media=cdrom,readonly=on,format=raw,file=${s.cdrom}`);
  if (s.sshPort !== undefined) a.push('-nic', `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${s.sshPort}-:22`);
  else a.push('-nic', 'none');
  return a;
}

/** What OVMF prints on the serial console once its boot manager runs (in 64-bit mode). */
const PROBE_MARK = 'BdsDxe';

/**
 * Whether a guest really runs with `accel`: starts the UEFI firmware with the boot's own machine
 * and CPU model and no disk, and waits for its boot manager to speak. A real-mode probe is not
 * enough: here a boot sector runs under KVM while OVMF dies with an "emulation failure" or an
 * MSR the CPU model needs.
 */
export async function probeAccel(accel: Accel, timeoutMs = 30_000): Promise<{ ok: boolean; why: string }> {
  if (accel === 'kvm' && !existsSync('/dev/kvm')) return { ok: false, why: 'no /dev/kvm' };
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-probe-'));
  try {
    const varsFile = join(dir, 'OVMF_VARS.fd');
    await copyFile(OVMF_VARS, varsFile);
    const args = qemuArgs({ firmware: 'uefi', accel, memoryMiB: 256, cpus: 1, varsFile, interactive: false });
    const child = execa('qemu-system-x86_64', args, { reject: false, timeout: timeoutMs, stdin: 'ignore', all: true, buffer: { all: true } });
    let seen = false;
    let tail = ''; // the mark may straddle two chunks
    child.all!.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('latin1')).slice(-4096);
      if (!seen && tail.includes(PROBE_MARK)) {
        seen = true;
        child.kill('SIGKILL');
      }
    });
    const r = await child;
    if (seen) return { ok: true, why: `the UEFI firmware runs under ${accel}` };
    if (r.timedOut) return { ok: false, why: `the UEFI firmware did not start under ${accel} within ${timeoutMs / 1000} s` };
    const said = String(r.all ?? '').split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join(' / ');
    return { ok: false, why: `the UEFI firmware failed under ${accel}${said ? `: ${said}` : ` (exit ${r.exitCode ?? r.signal})`}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `auto`: KVM when the probe runs under it, else TCG; says which and why. */
export async function chooseAccel(want: Accel | 'auto'): Promise<{ accel: Accel; why: string }> {
  if (want !== 'auto') return { accel: want, why: 'as asked' };
  const kvm = await probeAccel('kvm');
  return kvm.ok ? { accel: 'kvm', why: kvm.why } : { accel: 'tcg', why: `software emulation: ${kvm.why}` };
}

/** The disk formats boot reads (QEMU's names): the exported image is the overlay's backing file. */
export type DiskFormat = 'qcow2' | 'raw' | 'vmdk' | 'vpc';

export interface BootOptions {
  image: string;
  /** iso: the image goes into a CD-ROM drive as it is (read-only, no overlay) and there is no disk. */
  format: DiskFormat | 'iso';
  firmware: 'uefi' | 'bios';
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  sshPort?: number;
  interactive: boolean;
  signal?: AbortSignal;
}

/** Boots `image` until the guest powers off (or the signal aborts); returns QEMU's exit code. */
export async function boot(o: BootOptions): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'imgmake-boot-'));
  try {
    let disk: string | undefined;
    if (o.format !== 'iso') {
      disk = join(dir, 'disk.qcow2');
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', o.format, '-b', o.image, disk]);
    }
    let varsFile: string | undefined;
    if (o.firmware === 'uefi') {
      varsFile = join(dir, 'OVMF_VARS.fd');
      await copyFile(OVMF_VARS, varsFile);
    }
    const args = qemuArgs({ ...(disk !== undefined ? { disk } : { cdrom: o.image }), firmware: o.firmware, accel: o.accel, memoryMiB: o.memoryMiB, cpus: o.cpus, interactive: o.interactive,
      ...(varsFile ? { varsFile } : {}), ...(o.sshPort !== undefined ? { sshPort: o.sshPort } : {}) });
    const r = await execa('qemu-system-x86_64', args, {
      stdio: 'inherit',
      reject: false,
      ...(o.signal ? { cancelSignal: o.signal, forceKillAfterDelay: 3000 } : {}),
    });
    return r.exitCode ?? 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
