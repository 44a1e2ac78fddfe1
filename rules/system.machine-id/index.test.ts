/**
 * system.machine-id on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

test('an existing machine ID is emptied, 0444 root; dbus\'s copy becomes a link to it', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'var/lib/dbus'), { recursive: true });
    writeFileSync(join(tree, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n', { mode: 0o644 });
    writeFileSync(join(tree, 'var/lib/dbus/machine-id'), '0123456789abcdef0123456789abcdef\n');
  };
  await withRule('system.machine-id', {}, { tree: setup }, (r) => {
    assertOk(r);
    assert.deepEqual(r.options, { mode: 'first-boot' });
    const st = lstatSync(join(r.tree, 'etc/machine-id'));
    assert.ok(st.isFile());
    assert.equal(st.size, 0);
    assert.equal(perms(st.mode), 0o444);
    assert.equal(st.uid, 0);
    assert.equal(readlinkSync(join(r.tree, 'var/lib/dbus/machine-id')), '/etc/machine-id');
  });
});

test('a tree without /var/lib/dbus gets only the empty /etc/machine-id', T, async () => {
  await withRule('system.machine-id', { mode: 'first-boot' }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/machine-id'), 'utf8'), '');
    assert.equal(existsSync(join(r.tree, 'var')), false);
  });
});

test('an empty /var/lib/dbus gets the link; a symlinked /etc/machine-id is replaced, its target kept', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'var/lib/dbus'), { recursive: true });
    writeFileSync(join(tree, 'var/lib/dbus/id'), 'abc\n');
    symlinkSync('/var/lib/dbus/id', join(tree, 'etc/machine-id'));
  };
  await withRule('system.machine-id', {}, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/machine-id')).isFile());
    assert.equal(lstatSync(join(r.tree, 'etc/machine-id')).size, 0);
    assert.equal(readFileSync(join(r.tree, 'var/lib/dbus/id'), 'utf8'), 'abc\n');
    assert.equal(readlinkSync(join(r.tree, 'var/lib/dbus/machine-id')), '/etc/machine-id');
  });
});

test('a directory at /var/lib/dbus/machine-id fails', T, async () => {
  const setup = (tree: string) => mkdirSync(join(tree, 'var/lib/dbus/machine-id'), { recursive: true });
  await withRule('system.machine-id', {}, { tree: setup }, (r) => assertFails(r, '/var/lib/dbus/machine-id', 'is a directory'));
});

test('the schema knows only the first-boot mode', T, async () => {
  assert.notDeepEqual(await schemaErrors('system.machine-id', { mode: 'fixed' }), []);
  assert.notDeepEqual(await schemaErrors('system.machine-id', { id: 'x' }), []);
});
