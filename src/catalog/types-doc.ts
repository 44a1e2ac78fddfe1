/**
 * The README's table of image types, made from the catalog's index so it cannot go stale:
 * test/readme-types.test.ts compares the README's section (between the markers below) with
 * `renderTypesTable(readCatalog())` and `UPDATE_GOLDEN=1` rewrites it. What the index does not
 * say — what a type is for, how it is made — is in `TYPE_NOTES`, one line per type; a catalog
 * type without a line fails that test (add the line with the type).
 */
import type { CatalogImage } from './index.js';

export const TYPES_BEGIN = '<!-- image-types: generated from catalog/catalog.yaml by src/catalog/types-doc.ts; UPDATE_GOLDEN=1 node test/run.js readme-types -->';
export const TYPES_END = '<!-- image-types: end -->';

/** Type → what it is for and how it is made (markdown, one line). */
export const TYPE_NOTES: Readonly<Record<string, string>> = {
  qcow2: 'QEMU/KVM, OpenStack, libvirt: the disk as qcow2 (`imgmake boot` boots it)',
  raw: 'anything that takes a plain disk (`dd` to a device, cloud uploads): sparse',
  tar: 'the root filesystem as a tarball (pax, xattrs kept), no disk, no bootloader',
  vmdk: 'vSphere, an OVA: stream-optimized VMDK (compressed grains; its CID derived from its content)',
  vhd: 'Azure: fixed-size VHD, virtual size a whole MiB, footer time and ID fixed ([what Azure needs beyond it](docs/image-types.md#azure-vhd))',
  gce: 'Google Compute Engine: `disk.raw` alone in a GNU-format tar.gz (sparse)',
  'raw.xz': 'downloads: the raw disk, xz multi-threaded with a pinned block size',
  'raw.zst': 'downloads: the raw disk, zstd multi-threaded',
  oci: 'podman, docker, a registry: the OS tree without kernel, bootloader or disk, as an OCI archive (`imgmake push`)',
  iso: 'a live ISO: squashfs root, GRUB for UEFI and BIOS, boots without a disk',
  'ostree-commit': 'an edge device\'s update: the tree prepared for ostree, committed to a ref in an archive repository (tarball; `--ostree-parent` for history) ([ostree.md](docs/ostree.md))',
  'ostree-raw': 'an ostree device: the commit deployed on the GPT disk (`/usr` read-only, upgrade and rollback), raw',
  'ostree-qcow2': 'the same ostree disk as qcow2 (`imgmake boot` boots it)',
};

/** The markdown table, one row per image type of each distro × arch, in index order. */
export function renderTypesTable(images: readonly CatalogImage[]): string {
  const rows = ['| distro | arch | type | exports | default disk | for |', '|---|---|---|---|---|---|'];
  for (const img of images) {
    for (const t of img.types) {
      const note = TYPE_NOTES[t.name];
      if (note === undefined) throw new Error(`Internal error: image type "${t.name}" has no line in TYPE_NOTES (src/catalog/types-doc.ts)`);
      rows.push(`| ${img.distro} | ${img.arch} | \`${t.name}\` | \`${t.filename}\` | ${t.size ?? '–'} | ${note} |`);
    }
  }
  return `${TYPES_BEGIN}\n${rows.join('\n')}\n${TYPES_END}`;
}

/** `readme` with its generated section replaced by `table`; undefined when the markers are missing. */
export function replaceTypesTable(readme: string, table: string): string | undefined {
  const a = readme.indexOf(TYPES_BEGIN);
  const b = readme.indexOf(TYPES_END);
  if (a < 0 || b < a) return undefined;
  return readme.slice(0, a) + table + readme.slice(b + TYPES_END.length);
}
