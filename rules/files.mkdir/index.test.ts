/**
 * files.mkdir on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

test('creates nested directories with the mode and numeric owner; missing parents are 0755 root', T, async () => {
  await withRule('files.mkdir', { paths: [{ path: '/srv/app/data', mode: '2750', owner: '1000:1001' }] }, {}, (r) => {
    assertOk(r);
    const st = lstatSync(join(r.tree, 'srv/app/data'));
    assert.ok(st.isDirectory());
    assert.equal(perms(st.mode), 0o2750);
    assert.equal(st.uid, 1000);
    assert.equal(st.gid, 1001);
    for (const parent of ['srv', 'srv/app']) {
      const p = lstatSync(join(r.tree, parent));
      assert.equal(perms(p.mode), 0o755, parent);
      assert.equal(p.uid, 0, parent);
      assert.equal(p.gid, 0, parent);
    }
  });
});

test('defaults: 0755 and 0:0', T, async () => {
  await withRule('files.mkdir', { paths: [{ path: '/opt/x' }] }, {}, (r) => {
    assertOk(r);
    assert.deepEqual(r.options, { paths: [{ path: '/opt/x', mode: '0755', owner: '0:0', parents: true, exist_ok: true }] });
    const st = lstatSync(join(r.tree, 'opt/x'));
    assert.equal(perms(st.mode), 0o755);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, 0);
  });
});

test('an existing directory gets the mode and owner applied, and keeps its content', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'var/lib/app'), { recursive: true, mode: 0o700 });
    writeFileSync(join(tree, 'var/lib/app/keep'), 'x');
  };
  await withRule('files.mkdir', { paths: [{ path: '/var/lib/app', mode: '0775', owner: '42:43' }] }, { tree: setup }, (r) => {
    assertOk(r);
    const st = lstatSync(join(r.tree, 'var/lib/app'));
    assert.equal(perms(st.mode), 0o775);
    assert.equal(st.uid, 42);
    assert.equal(st.gid, 43);
    assert.ok(existsSync(join(r.tree, 'var/lib/app/keep')));
  });
});

test('exist_ok false on an existing directory fails, naming the path, and leaves it alone', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc/already'), { recursive: true, mode: 0o700 });
  };
  await withRule('files.mkdir', { paths: [{ path: '/etc/already', mode: '0755', exist_ok: false }] }, { tree: setup }, (r) => {
    assertFails(r, '/etc/already');
    assert.equal(perms(lstatSync(join(r.tree, 'etc/already')).mode), 0o700);
  });
});

test('parents false with a missing parent fails and creates nothing', T, async () => {
  await withRule('files.mkdir', { paths: [{ path: '/no/such/dir', parents: false }] }, {}, (r) => {
    assertFails(r, '/no/such/dir');
    assert.equal(existsSync(join(r.tree, 'no')), false);
  });
});

test('parents false with an existing parent creates the directory', T, async () => {
  const setup = (tree: string) => mkdirSync(join(tree, 'etc'));
  await withRule('files.mkdir', { paths: [{ path: '/etc/sub', parents: false, mode: '0700' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(perms(lstatSync(join(r.tree, 'etc/sub')).mode), 0o700);
  });
});

test('an existing file at the path fails and the file is kept', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc/conf'), 'content', { mode: 0o600 });
  };
  await withRule('files.mkdir', { paths: [{ path: '/etc/conf' }] }, { tree: setup }, (r) => {
    assertFails(r, '/etc/conf', 'not a directory');
    const st = lstatSync(join(r.tree, 'etc/conf'));
    assert.ok(st.isFile());
    assert.equal(perms(st.mode), 0o600);
  });
});

test('an absolute symlink on the way is resolved inside the tree: /var/run -> /run puts /var/run/foo at run/foo', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'var'));
    mkdirSync(join(tree, 'run'));
    symlinkSync('/run', join(tree, 'var/run'));
  };
  await withRule('files.mkdir', { paths: [{ path: '/var/run/foo', mode: '0710', owner: '7:8' }] }, { tree: setup }, (r) => {
    assertOk(r);
    const st = lstatSync(join(r.tree, 'run/foo'));
    assert.ok(st.isDirectory());
    assert.equal(perms(st.mode), 0o710);
    assert.equal(st.uid, 7);
    assert.ok(lstatSync(join(r.tree, 'var/run')).isSymbolicLink(), 'the link itself is untouched');
  });
});

test('a relative symlink at the path itself is followed inside the tree', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'data/real'), { recursive: true, mode: 0o700 });
    chownSync(join(tree, 'data/real'), 0, 0);
    mkdirSync(join(tree, 'srv'));
    symlinkSync('../data/real', join(tree, 'srv/www'));
  };
  await withRule('files.mkdir', { paths: [{ path: '/srv/www', mode: '0751' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'srv/www')).isSymbolicLink());
    assert.equal(perms(lstatSync(join(r.tree, 'data/real')).mode), 0o751);
  });
});

test('the schema rejects relative paths, bad modes and owner names', T, async () => {
  assert.notDeepEqual(await schemaErrors('files.mkdir', { paths: [{ path: 'etc/x' }] }), []);
  assert.notDeepEqual(await schemaErrors('files.mkdir', { paths: [{ path: '/etc/x', mode: '0999' }] }), []);
  assert.notDeepEqual(await schemaErrors('files.mkdir', { paths: [{ path: '/etc/x', owner: 'root:root' }] }), []);
  assert.deepEqual(await schemaErrors('files.mkdir', { paths: [{ path: '/etc/x', mode: '750', owner: '0:0' }] }), []);
});
