/**
 * A small bootable disk for the patch tests (test/patch.test.ts): a GPT disk of 40 MiB with a
 * BIOS boot partition (GRUB), an ESP and an ext4 root made from the `os` pipeline. GRUB's
 * config lives in the root filesystem (/boot/grub/grub.cfg): it prints /etc/message on the
 * serial console and powers off, so a boot shows what the root filesystem holds.
 *
 * `os` is: a base stage (the config, a file tree with owners, modes, links, a hardlink pair,
 * xattrs, a device node, a FIFO), then `extra` (a shell script the test varies: deletions,
 * replacements, new files), then `message` (the edit a test makes).
 */
export interface PatchDiskOptions {
  message: string;
  /** The `extra` stage's script (runs in the tree). */
  extra?: string;
  /** The root partition's size (the disk is 1 + 8 MiB more). */
  rootSize?: string;
  /** GRUB for BIOS reads its modules from the OS tree (which then holds them: `grubFrom`). */
  grubFromTree?: boolean;
  /** The ESP's file. */
  espText?: string;
}

export const ROOT_UUID = '3b0c7b1e-2f4d-4a5e-9c8b-1a2b3c4d5e6f';

export const patchDisk = (o: PatchDiskOptions): string => `version: 1
pipelines:
  os:
    stages:
      - name: base
        rule: shell.run
        options:
          script: |
            set -e
            mkdir -p boot/grub etc usr/bin usr/share/doc home/user dev var/empty opt/gone/deeper
            printf 'serial --unit=0 --speed=115200\\nterminal_input serial\\nterminal_output serial\\necho PATCH-BOOT-BEGIN\\ncat /etc/message\\necho PATCH-BOOT-END\\nhalt\\n' > boot/grub/grub.cfg
            printf 'first\\n' > etc/message
            printf '#!/bin/sh\\necho tool\\n' > usr/bin/tool && chmod 4755 usr/bin/tool
            ln usr/bin/tool usr/bin/tool-hardlink
            ln -s tool usr/bin/tool-link
            ln -s ../../../nowhere/dangling usr/share/doc/dangling
            printf 'secret\\n' > home/user/notes && chmod 0600 home/user/notes && chown -R 1000:1000 home/user
            head -c 300000 /dev/zero | tr '\\0' 'x' > usr/share/doc/big.txt
            setfattr -n user.colour -v blue usr/share/doc/big.txt
            setfattr -n user.dir -v yes usr/share/doc
            mknod dev/null c 1 3 && chmod 0666 dev/null
            mkfifo dev/initctl && chmod 0600 dev/initctl
            printf 'gone\\n' > opt/gone/deeper/file
            printf 'one\\n' > opt/replaced
            mkdir -p opt/dir-to-link && printf 'x\\n' > opt/dir-to-link/x
            chmod 0750 var/empty${o.grubFromTree ? '\n            mkdir -p usr/lib/grub && cp -a /usr/lib/grub/i386-pc usr/lib/grub/' : ''}
      - name: extra
        rule: shell.run
        options:
          script: |
            set -e
            : ${o.extra ? `\n${o.extra.replace(/^/gm, '            ')}` : ''}
      - name: message
        rule: files.write
        options:
          files:
            - { path: /etc/message, content: "${o.message}\\n" }
  esp:
    stages:
      - rule: files.write
        options:
          files:
            - { path: /EFI/BOOT/readme.txt, content: "${o.espText ?? 'the ESP'}\\n" }
  disk:
    stages:
      - name: partition
        rule: disk.partition
        options:
          size: ${o.rootSize ? `${parseInt(o.rootSize, 10) + 10}M` : '40M'}
          label_id: 4f3c1e2a-0b1d-4c5e-9a7b-1d2e3f405162
          partitions:
            - { name: bios, type: bios, size: 1M, uuid: 6a1b2c3d-0000-4000-8000-000000000003 }
            - { name: esp, type: esp, size: 8M, uuid: 6a1b2c3d-0000-4000-8000-000000000001 }
            - { name: root, type: linux, size: rest, uuid: 6a1b2c3d-0000-4000-8000-000000000002 }
      - name: esp
        rule: disk.vfat
        inputs: { tree: { pipeline: esp } }
        options: { partition: esp, volume_id: 1234ABCD, fat_size: 12 }
      - name: bios
        rule: grub.bios
${o.grubFromTree ? '        inputs: { tree: { pipeline: os } }\n' : ''}        options: { config_partition: root, config_directory: /boot/grub, modules: [cat, halt] }
      - name: root
        rule: disk.ext4
        inputs: { tree: { pipeline: os } }
        options: { partition: root, uuid: ${ROOT_UUID} }
  qcow2:
    stages:
      - rule: disk.convert
        inputs: { tree: { pipeline: disk } }
targets:
  raw: { pipeline: disk, export: [disk.raw] }
  qcow2: { pipeline: qcow2, export: [disk.qcow2] }
`;
