import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  units: { name: string; content: string }[];
  enable: string[];
  disable: string[];
  mask: string[];
  default_target?: string;
}

// Read from the source folder (the compiled module lives in dist/), as sh.ts reads the prelude.
const source = (file: string): string => readFileSync(fileURLToPath(new URL(`../../../rules/systemd.units/${file}`, import.meta.url)), 'utf8');
const INSTALL_AWK = source('install.awk');
const UNITS_SH = source('units.sh');

/** What cannot be asked at once: the order below would make one of the two silently win. */
function checkConflicts(o: Options): void {
  const clash = (a: string[], b: string[], what: string) => {
    const both = a.filter((n) => b.includes(n));
    if (both.length > 0) throw new Error(`systemd.units: ${both.join(', ')} ${both.length > 1 ? 'are' : 'is'} listed in both ${what}`);
  };
  clash(o.enable, o.disable, 'enable and disable');
  clash(o.enable, o.mask, 'enable and mask');
  clash(o.disable, o.mask, 'disable and mask');
  clash(o.units.map((u) => u.name), o.mask, 'units and mask (masking would replace the written file)');
  const names = o.units.map((u) => u.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`systemd.units: unit ${dup} is written twice`);
  if (o.default_target === 'default.target') throw new Error('systemd.units: default_target names the link itself; give the target it should point to');
}

const units: RuleInvoke<Options> = (options, ctx) => {
  checkConflicts(options);
  // Order: files first (so they can be enabled), then disable, enable, mask, default target.
  const body = [
    `RUN=${q(ctx.run)}`,
    `. "$RUN/units.sh"`,
    ...options.units.map((u, i) => `put ${q(`${ctx.run}/unit-${i}`)} ${q(`/etc/systemd/system/${u.name}`)} 0644 0:0`),
    ...(options.disable.length > 0 ? [`unit_disable ${options.disable.map(q).join(' ')}`] : []),
    ...(options.enable.length > 0 ? [`unit_enable ${options.enable.map(q).join(' ')}`] : []),
    ...options.mask.map((n) => `unit_mask ${q(n)}`),
    ...(options.default_target ? [`unit_default ${q(options.default_target)}`] : []),
  ];
  return shell(ctx, body, {
    'install.awk': INSTALL_AWK,
    'units.sh': UNITS_SH,
    ...Object.fromEntries(options.units.map((u, i) => [`unit-${i}`, u.content])),
  });
};

export default units;
