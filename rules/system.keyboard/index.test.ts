/**
 * system.keyboard through the real sandbox on a Debian root made from the host's /usr (which has
 * xkb-data): /etc/default/keyboard written; a layout or variant the tree's XKB data lacks fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';
import { hostRoot } from '../../test/helpers/host-root.js';

const T = { timeout: 60_000 };

test('a layout and variant of the tree\'s XKB data → /etc/default/keyboard; unknown ones fail naming what exists', T, async () => {
  const root = hostRoot();
  try {
    await withRule('system.keyboard', { layout: 'de', variant: 'nodeadkeys' }, { tree: root.tree }, (r) => {
      assertOk(r);
      const f = join(r.tree, 'etc/default/keyboard');
      assert.equal(readFileSync(f, 'utf8'), '# Written by imgmake (system.keyboard). See keyboard(5).\nXKBMODEL="pc105"\nXKBLAYOUT="de"\nXKBVARIANT="nodeadkeys"\nXKBOPTIONS=""\nBACKSPACE="guess"\n');
      assert.equal(perms(lstatSync(f).mode), 0o644);
    });
    await withRule('system.keyboard', { layout: 'de', variant: 'nosuch' }, { tree: root.tree }, (r) => assertFails(r, 'layout de has no variant nosuch; it has: ', 'nodeadkeys'));
    await withRule('system.keyboard', { layout: 'qq' }, { tree: root.tree }, (r) => assertFails(r, 'no XKB layout qq'));
  } finally {
    root.cleanup();
  }
  await withRule('system.keyboard', { layout: 'us' }, {}, (r) => assertFails(r, 'install console-setup'));
  assert.notDeepEqual(await schemaErrors('system.keyboard', { layout: '../us' }), []);
  assert.notDeepEqual(await schemaErrors('system.keyboard', { layout: 'us', variant: 'a"b' }), []);
});
