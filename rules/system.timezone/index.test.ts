/**
 * system.timezone on a temporary tree through the real sandbox. Zones are checked against the
 * tree's zoneinfo when it has one, else against the buildroot's (here the host's /usr).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };
const HOST_HAS_BERLIN = existsSync('/usr/share/zoneinfo/Europe/Berlin');

/** A tree with its own, tiny zoneinfo database: only Etc/UTC. */
function fakeTzdata(tree: string): void {
  mkdirSync(join(tree, 'usr/share/zoneinfo/Etc'), { recursive: true });
  writeFileSync(join(tree, 'usr/share/zoneinfo/Etc/UTC'), 'TZif2 fake');
}

test('links /etc/localtime to the zone and writes /etc/timezone', { ...T, skip: !HOST_HAS_BERLIN && 'the host has no tzdata' }, async () => {
  await withRule('system.timezone', { timezone: 'Europe/Berlin' }, {}, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/localtime')).isSymbolicLink());
    assert.equal(readlinkSync(join(r.tree, 'etc/localtime')), '/usr/share/zoneinfo/Europe/Berlin');
    assert.equal(readFileSync(join(r.tree, 'etc/timezone'), 'utf8'), 'Europe/Berlin\n');
    const st = lstatSync(join(r.tree, 'etc/timezone'));
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.uid, 0);
  });
});

test('an existing /etc/localtime file and /etc/timezone are replaced', { ...T, skip: !HOST_HAS_BERLIN && 'the host has no tzdata' }, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc/localtime'), 'a copied zone file');
    writeFileSync(join(tree, 'etc/timezone'), 'America/New_York\n');
  };
  await withRule('system.timezone', { timezone: 'Europe/Berlin' }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readlinkSync(join(r.tree, 'etc/localtime')), '/usr/share/zoneinfo/Europe/Berlin');
    assert.equal(readFileSync(join(r.tree, 'etc/timezone'), 'utf8'), 'Europe/Berlin\n');
  });
});

test('an unknown zone fails with "unknown timezone" and writes nothing', T, async () => {
  await withRule('system.timezone', { timezone: 'Mars/Olympus' }, {}, (r) => {
    assertFails(r, 'unknown timezone', 'Mars/Olympus');
    assert.equal(existsSync(join(r.tree, 'etc/localtime')), false);
    assert.equal(existsSync(join(r.tree, 'etc/timezone')), false);
  });
});

test('a zone directory (Europe) is not a zone', { ...T, skip: !HOST_HAS_BERLIN && 'the host has no tzdata' }, async () => {
  await withRule('system.timezone', { timezone: 'Europe' }, {}, (r) => {
    assertFails(r, 'unknown timezone');
  });
});

test("the tree's own zoneinfo decides: a zone only the host has fails, one the tree has works", { ...T, skip: !HOST_HAS_BERLIN && 'the host has no tzdata' }, async () => {
  await withRule('system.timezone', { timezone: 'Europe/Berlin' }, { tree: fakeTzdata }, (r) => {
    assertFails(r, 'unknown timezone', 'Europe/Berlin');
    assert.equal(existsSync(join(r.tree, 'etc/localtime')), false);
  });
  await withRule('system.timezone', { timezone: 'Etc/UTC' }, { tree: fakeTzdata }, (r) => {
    assertOk(r);
    assert.equal(readlinkSync(join(r.tree, 'etc/localtime')), '/usr/share/zoneinfo/Etc/UTC');
    assert.equal(readFileSync(join(r.tree, 'etc/timezone'), 'utf8'), 'Etc/UTC\n');
  });
});

test('the schema rejects names that could leave the zoneinfo directory', T, async () => {
  for (const bad of ['../etc/passwd', '/Europe/Berlin', 'Europe/../Berlin', 'Europe/Berlin;ls', '', 'Europe//Berlin']) {
    assert.notDeepEqual(await schemaErrors('system.timezone', { timezone: bad }), [], bad);
  }
  for (const good of ['UTC', 'Etc/GMT+5', 'America/Argentina/Buenos_Aires']) {
    assert.deepEqual(await schemaErrors('system.timezone', { timezone: good }), [], good);
  }
});
