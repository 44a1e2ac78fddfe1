/**
 * Every image type is bit-reproducible: a small tree (the point is the formats, not Debian)
 * made into a partitioned disk, then into each format the catalog ships (qcow2, vmdk, vhd, gce,
 * raw.xz, raw.zst, oci), built cold twice on separate caches a second apart: the exported files
 * are byte-identical. Also: switching type runs only that type's conversion stage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { imgmake, projectWith, ran } from './helpers/cli.js';

const convert = (rule: string, options = '{}'): string => `    stages:\n      - rule: ${rule}\n        inputs: { tree: { pipeline: disk } }\n        options: ${options}\n`;

const PROJECT = `version: 1
pipelines:
  os:
    stages:
      - name: packages
        rule: files.write
        options:
          files:
            - { path: /etc/os-release, content: "ID=tiny\\nPRETTY_NAME=\\"a tiny tree\\"\\n" }
            - { path: /usr/share/doc/tiny/README, content: "${'data '.repeat(2000)}\\n" }
            - { path: /boot/vmlinuz-0, content: "not a kernel" }
  disk:
    stages:
      - rule: disk.partition
        options:
          size: 48M
          label_id: 4f3c1e2a-0b1d-4c5e-9a7b-1d2e3f405162
          partitions: [{ name: root, type: linux, size: rest, uuid: 6a1b2c3d-0000-4000-8000-000000000002 }]
      - rule: disk.ext4
        inputs: { tree: { pipeline: os } }
        options: { partition: root, uuid: 0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d }
  qcow2:
${convert('disk.convert')}  vmdk:
${convert('disk.vmdk')}  vhd:
${convert('disk.vhd', '{ uuid: 3b8e5f2a-6c1d-4a7e-9f0b-2d4c6e8a1b3c }')}  gce:
${convert('disk.gce')}  raw-xz:
${convert('disk.compress', '{ compression: xz }')}  raw-zst:
${convert('disk.compress', '{ compression: zstd }')}  oci:
    stages:
      - rule: archive.oci
        inputs: { tree: { pipeline: os } }
        options: { labels: { org.opencontainers.image.title: tiny } }
targets:
  qcow2: { pipeline: qcow2, export: [disk.qcow2], default: true }
  vmdk: { pipeline: vmdk, export: [disk.vmdk] }
  vhd: { pipeline: vhd, export: [disk.vhd] }
  gce: { pipeline: gce, export: [image.tar.gz] }
  raw.xz: { pipeline: raw-xz, export: [disk.raw.xz] }
  raw.zst: { pipeline: raw-zst, export: [disk.raw.zst] }
  oci: { pipeline: oci, export: [image.oci.tar] }
`;

const TYPES = ['qcow2', 'vmdk', 'vhd', 'gce', 'raw.xz', 'raw.zst', 'oci'];
const STAGE: Record<string, string> = { qcow2: 'qcow2.0', vmdk: 'vmdk.0', vhd: 'vhd.0', gce: 'gce.0', 'raw.xz': 'raw-xz.0', 'raw.zst': 'raw-zst.0', oci: 'oci.0' };

test('each image type: two cold builds on separate caches give the same bytes; a type switch runs one stage', { timeout: 600_000 }, async (t) => {
  const digests: Record<string, string>[] = [];
  for (const run of [0, 1]) {
    const p = await projectWith(PROJECT);
    t.after(p.cleanup);
    const got: Record<string, string> = {};
    for (const [i, type] of TYPES.entries()) {
      const b = await imgmake(['--json', '-f', p.file, 'build', type]);
      assert.equal(b.code, 0, b.stderr + b.stdout.slice(-2000));
      // The first build makes the tree and the disk; every switch after it runs its own stage.
      if (i === 0) assert.ok(ran(b).includes('os.packages') && ran(b).includes('disk.1'), ran(b).join(' '));
      else assert.deepEqual(ran(b), type === 'oci' ? ['oci.0'] : [STAGE[type]], `switching to ${type}`);
      const dir = join(p.dir, 'out', type);
      for (const f of readdirSync(dir)) got[`${type}/${f}`] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
    }
    digests.push(got);
    if (run === 0) await new Promise((r) => setTimeout(r, 1100));
  }
  assert.deepEqual(Object.keys(digests[0]!).sort(), ['gce/image.tar.gz', 'oci/image.oci.tar', 'qcow2/disk.qcow2', 'raw.xz/disk.raw.xz', 'raw.zst/disk.raw.zst', 'vhd/disk.vhd', 'vmdk/disk.vmdk']);
  for (const k of Object.keys(digests[0]!)) assert.equal(digests[1]![k], digests[0]![k], `${k} differs between two cold builds`);
});
