/**
 * `imgmake boot TARGET`: boots the disk image that `imgmake build TARGET` exported to
 * out/TARGET/ (it does not build: boot what was built, or say to build it first).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { boot, chooseAccel, type Accel, type DiskFormat } from '../boot.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';

export interface BootCommandOptions {
  bios?: boolean;
  accel?: string;
  memory?: string;
  cpus?: string;
  sshPort?: string;
  image?: string;
}

const IMAGE = /\.(qcow2|raw|img|vmdk|vhd|iso)$/;

/** QEMU's name of an image's format, from its file name (a fixed VHD has no header to probe). */
export function imageFormat(name: string): DiskFormat | 'iso' {
  if (name.endsWith('.iso')) return 'iso';
  if (name.endsWith('.qcow2')) return 'qcow2';
  if (name.endsWith('.vmdk')) return 'vmdk';
  if (name.endsWith('.vhd')) return 'vpc';
  return 'raw';
}

/** The image to boot in `dir`: `name` when given, else the one qcow2 (or raw, vmdk, vhd, or ISO) file there. */
export async function findImage(dir: string, target: string, name?: string): Promise<Result<{ path: string; format: DiskFormat | 'iso' }, Diagnostic>> {
  let files: string[];
  try {
    files = (await readdir(dir)).sort();
  } catch {
    return fail(diagnostic('usage', `target ${target} has not been built: there is no ${dir}`, undefined, `run imgmake build ${target} first`));
  }
  const images = files.filter((f) => IMAGE.test(f));
  const pick = name ?? images.find((f) => f.endsWith('.qcow2')) ?? images[0];
  if (!pick || !files.includes(pick)) {
    const what = name ? `no ${name} in ${dir}` : `no disk image (.qcow2, .raw, .img, .vmdk, .vhd) or ISO (.iso) in ${dir}`;
    return fail(diagnostic('usage', what, undefined, images.length ? `it holds ${images.join(', ')}: name one with --image` : `export a disk image from target ${target}`));
  }
  return ok({ path: join(dir, pick), format: imageFormat(pick) });
}

function positive(flag: string, v: string | undefined, dflt: number): number | Diagnostic {
  if (v === undefined) return dflt;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : diagnostic('usage', `${flag} ${v}: not a positive whole number`, undefined, `write ${flag} ${dflt}`);
}

export async function bootCommand(
  target: string,
  outDir: string,
  o: BootCommandOptions,
  say: (line: string) => void,
  signal: AbortSignal,
): Promise<Result<number, Diagnostic[]>> {
  const accelWanted = o.accel ?? 'auto';
  if (!['auto', 'kvm', 'tcg'].includes(accelWanted)) return fail([diagnostic('usage', `--accel ${accelWanted}: not auto, kvm or tcg`, undefined, 'leave it out: imgmake probes KVM and falls back to tcg')]);
  const memory = positive('--memory', o.memory, 1024);
  const cpus = positive('--cpus', o.cpus, 2);
  const ssh = o.sshPort === undefined ? undefined : positive('--ssh-port', o.sshPort, 2222);
  for (const v of [memory, cpus, ssh]) if (typeof v === 'object') return fail([v]);
  const image = await findImage(join(outDir, target), target, o.image);
  if (!image.ok) return fail([image.error]);
  const { accel, why } = await chooseAccel(accelWanted as Accel | 'auto');
  const firmware = o.bios ? 'bios' : 'uefi';
  say(`imgmake: booting ${image.value.path} (${firmware}, ${accel}: ${why}); the image itself is not written${process.stdin.isTTY ? '; Ctrl-A X quits' : ''}`);
  const code = await boot({
    image: image.value.path,
    format: image.value.format,
    firmware,
    accel,
    memoryMiB: memory as number,
    cpus: cpus as number,
    ...(typeof ssh === 'number' ? { sshPort: ssh } : {}),
    interactive: Boolean(process.stdin.isTTY),
    signal,
  });
  return ok(code);
}
