/**
 * system.locale on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

test('writes LANG to /etc/default/locale, 0644 root; without a keymap no vconsole.conf', T, async () => {
  await withRule('system.locale', { language: 'en_US.UTF-8' }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/default/locale'), 'utf8'), 'LANG=en_US.UTF-8\n');
    const st = lstatSync(join(r.tree, 'etc/default/locale'));
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.uid, 0);
    assert.equal(existsSync(join(r.tree, 'etc/vconsole.conf')), false);
  });
});

test('a keymap writes KEYMAP to /etc/vconsole.conf; existing files are replaced', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc/default'), { recursive: true });
    writeFileSync(join(tree, 'etc/default/locale'), 'LANG=C\nLC_ALL=C\n');
    mkdirSync(join(tree, 'usr/lib'), { recursive: true });
    writeFileSync(join(tree, 'usr/lib/vconsole.conf'), 'KEYMAP=us\n');
    symlinkSync('../usr/lib/vconsole.conf', join(tree, 'etc/vconsole.conf'));
  };
  await withRule('system.locale', { language: 'de_DE.UTF-8', keymap: 'de-latin1' }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/default/locale'), 'utf8'), 'LANG=de_DE.UTF-8\n');
    assert.ok(lstatSync(join(r.tree, 'etc/vconsole.conf')).isFile());
    assert.equal(readFileSync(join(r.tree, 'etc/vconsole.conf'), 'utf8'), 'KEYMAP=de-latin1\n');
    assert.equal(readFileSync(join(r.tree, 'usr/lib/vconsole.conf'), 'utf8'), 'KEYMAP=us\n', 'the link target is untouched');
  });
});

test('the schema rejects names with spaces or shell characters', T, async () => {
  assert.notDeepEqual(await schemaErrors('system.locale', { language: 'en US' }), []);
  assert.notDeepEqual(await schemaErrors('system.locale', { language: 'C.UTF-8', keymap: 'us;reboot' }), []);
  assert.notDeepEqual(await schemaErrors('system.locale', { keymap: 'us' }), []);
  assert.deepEqual(await schemaErrors('system.locale', { language: 'sr_RS.UTF-8@latin', keymap: 'de-latin1' }), []);
});
