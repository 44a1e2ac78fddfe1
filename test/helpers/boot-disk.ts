/**
 * The smallest bootable disk: a boot sector that prints a line on the first serial port, then
 * triple-faults (QEMU runs with -no-reboot, so it exits). Boots in a second under TCG.
 */
// mov ds,0; cld; si=msg; dx=COM1; print until NUL; lidt [zero-limit]; int3 → triple fault.
const BOOT_SECTOR = '\\061\\300\\216\\330\\374\\276\\037\\174\\272\\370\\003\\254\\204\\300\\164\\003\\356\\353\\370\\017\\001\\036\\031\\174\\314\\000\\000\\000\\000\\000\\000';
/** A definition whose target `disk` is a 1 MiB BIOS disk that prints MESSAGE on COM1 and stops. */
export const diskProject = (message: string): string => `version: 1
pipelines:
  disk:
    stages:
      - rule: shell.run
        options:
          script: |
            printf '${BOOT_SECTOR}${message}\\r\\n\\000' > disk.raw
            truncate -s 510 disk.raw
            printf '\\125\\252' >> disk.raw
            truncate -s 1M disk.raw
targets:
  disk:
    pipeline: disk
    export: [disk.raw]
`;
