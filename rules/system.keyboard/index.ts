/**
 * system.keyboard: Debian's /etc/default/keyboard, checked against the tree's own XKB data so a
 * layout the image cannot load fails the build rather than the console at boot.
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  layout: string;
  variant?: string;
  model: string;
}

const keyboard: RuleInvoke<Options> = (o, ctx) =>
  shell(
    ctx,
    [
      `sym=$(in_tree ${q(`/usr/share/X11/xkb/symbols/${o.layout}`)} follow)`,
      `[ -d "$(in_tree /usr/share/X11/xkb/symbols follow)" ] || die "system.keyboard: /usr/share/X11/xkb/symbols is missing from the tree: install console-setup (or xkb-data) in an earlier stage"`,
      `[ -f "$sym" ] || die ${q(`system.keyboard: no XKB layout ${o.layout} in the tree's /usr/share/X11/xkb/symbols`)}`,
      ...(o.variant
        ? [
            `grep -q ${q(`^[^/]*xkb_symbols "${o.variant}"`)} "$sym" || die "system.keyboard: layout ${o.layout} has no variant ${o.variant}; it has: $(sed -n 's/^[^/]*xkb_symbols "\\([^"]*\\)".*/\\1/p' "$sym" | tr '\\n' ' ')"`,
          ]
        : []),
      `put ${q(`${ctx.run}/keyboard`)} /etc/default/keyboard 0644 0:0`,
    ],
    {
      keyboard: `# Written by imgmake (system.keyboard). See keyboard(5).\nXKBMODEL="${o.model}"\nXKBLAYOUT="${o.layout}"\nXKBVARIANT="${o.variant ?? ''}"\nXKBOPTIONS=""\nBACKSPACE="guess"\n`,
    },
  );

export default keyboard;
