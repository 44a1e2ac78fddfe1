import type { RuleInvoke } from '../../src/rule.js';
import { q } from '../_lib/sh.js';
import { diskShell, parseSize } from '../_lib/disk.js';

interface Partition {
  name: string;
  type: string;
  size: string;
  uuid: string;
  start?: string;
}

interface Options {
  filename: string;
  size: string;
  label_id: string;
  partitions: Partition[];
}

/** GPT partition type GUIDs by the names options may use. */
export const PARTITION_TYPES: Record<string, string> = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  bios: '21686148-6449-6E6F-744E-656564454649',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  'root-x86-64': '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  xbootldr: 'BC13C2FF-59E6-4262-A352-B275FD6F7172',
  home: '933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
  swap: '0657FD6D-A4AB-4C6F-8450-1E3E0A0F7A6B',
};

const SECTOR = 512;
/** Partitions start on 1 MiB boundaries; the first usable sector is the first one. */
const ALIGN = 2048;
/** The backup GPT: 32 sectors of entries and the header, after the last usable sector. */
const BACKUP_GPT = 33;

/** A partition as sfdisk gets it, in sectors. */
export interface Placed {
  start: number;
  sectors: number;
  type: string;
  uuid: string;
  name: string;
}

/** Where each partition goes, in 512-byte sectors; throws naming the partition that does not fit. */
export function layout(options: Pick<Options, 'size' | 'partitions'>): { sectors: number; partitions: Placed[] } {
  const bytes = parseSize(options.size);
  if (bytes % SECTOR) throw new Error(`size ${options.size} is not a multiple of ${SECTOR} bytes`);
  const sectors = bytes / SECTOR;
  const lastUsable = sectors - BACKUP_GPT - 1;
  if (lastUsable < ALIGN) throw new Error(`size ${options.size} leaves no room for a partition after the GPT`);
  const placed: Placed[] = [];
  let next = ALIGN;
  options.partitions.forEach((p, i) => {
    const what = `partitions[${i}] (${p.name})`;
    if (options.partitions.findIndex((o) => o.name === p.name) !== i) throw new Error(`${what}: another partition has the name ${JSON.stringify(p.name)}`);
    let start = next;
    if (p.start !== undefined) {
      const b = parseSize(p.start);
      if (b % SECTOR) throw new Error(`${what}: start ${p.start} is not a multiple of ${SECTOR} bytes`);
      start = b / SECTOR;
      if (start < next) throw new Error(`${what}: start ${p.start} overlaps the GPT or the partition before it (the first free sector is ${next}, ${next * SECTOR} bytes)`);
    }
    let count: number;
    if (p.size === 'rest') {
      if (i !== options.partitions.length - 1) throw new Error(`${what}: only the last partition can have size "rest"`);
      const end = Math.floor((lastUsable + 1) / ALIGN) * ALIGN; // exclusive
      count = end - start;
      if (count <= 0) throw new Error(`${what}: no space is left for it on a disk of ${options.size}`);
    } else {
      const b = parseSize(p.size);
      if (b % SECTOR) throw new Error(`${what}: size ${p.size} is not a multiple of ${SECTOR} bytes`);
      count = b / SECTOR;
    }
    if (start + count - 1 > lastUsable) {
      throw new Error(`${what}: ends at sector ${start + count - 1}, past the last usable sector ${lastUsable} of a disk of ${options.size}`);
    }
    placed.push({ start, sectors: count, type: PARTITION_TYPES[p.type] ?? p.type.toUpperCase(), uuid: p.uuid.toUpperCase(), name: p.name });
    next = Math.ceil((start + count) / ALIGN) * ALIGN;
  });
  return { sectors, partitions: placed };
}

const partition: RuleInvoke<Options> = (options, ctx) => {
  const { sectors, partitions } = layout(options);
  const table = [
    'label: gpt',
    `label-id: ${options.label_id.toUpperCase()}`,
    'unit: sectors',
    `first-lba: ${ALIGN}`,
    `sector-size: ${SECTOR}`,
    '',
    ...partitions.map((p) => `start=${p.start}, size=${p.sectors}, type=${p.type}, uuid=${p.uuid}, name="${p.name}"`),
    '',
  ].join('\n');
  const file = q(options.filename);
  return diskShell(
    ctx,
    [
      `f=./${file}`,
      `[ ! -d "$f" ] || [ -L "$f" ] || die ${q(`${options.filename}: is a directory in the tree`)}`,
      // A new sparse file: nothing of an earlier image survives, and holes cost nothing.
      `rm -f "$f"`,
      `truncate -s ${sectors * SECTOR} "$f"`,
      `sfdisk --quiet --no-reread --no-tell-kernel "$f" < ${q(`${ctx.run}/sfdisk.in`)} || die ${q(`${options.filename}: sfdisk failed`)}`,
      `sfdisk --dump "$f"`,
      `disk_done ${file}`,
    ],
    { 'sfdisk.in': table },
  );
};

export default partition;
