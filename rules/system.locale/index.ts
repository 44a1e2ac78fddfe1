import type { RuleInvoke } from '../../src/rule.js';
import { shell } from '../_lib/sh.js';

interface Options {
  language: string;
  keymap?: string;
}

const locale: RuleInvoke<Options> = (options, ctx) =>
  shell(
    ctx,
    [
      `put ${ctx.run}/locale /etc/default/locale 0644 0:0`,
      ...(options.keymap ? [`put ${ctx.run}/vconsole /etc/vconsole.conf 0644 0:0`] : []),
    ],
    {
      locale: `LANG=${options.language}\n`,
      ...(options.keymap ? { vconsole: `KEYMAP=${options.keymap}\n` } : {}),
    },
  );

export default locale;
