/**
 * files.symlink on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

test('creates links with the exact target, absolute, relative, dangling or starting with a dash; parents 0755 root', T, async () => {
  const options = {
    links: [
      { path: '/etc/localtime', target: '/usr/share/zoneinfo/Etc/UTC' },
      { path: '/usr/lib/a/b/libx.so', target: '../../libx.so.1' },
      { path: '/lib/dangling', target: 'does not exist/ with spaces & $x' },
      { path: '/etc/dash', target: '-s' },
      { path: '/etc/dashdash', target: '--help' },
    ],
  };
  await withRule('files.symlink', options, {}, (r) => {
    assertOk(r);
    assert.equal(readlinkSync(join(r.tree, 'etc/localtime')), '/usr/share/zoneinfo/Etc/UTC');
    assert.equal(readlinkSync(join(r.tree, 'usr/lib/a/b/libx.so')), '../../libx.so.1');
    assert.equal(readlinkSync(join(r.tree, 'lib/dangling')), 'does not exist/ with spaces & $x');
    assert.equal(readlinkSync(join(r.tree, 'etc/dash')), '-s', 'a target starting with a dash is not an option');
    assert.equal(readlinkSync(join(r.tree, 'etc/dashdash')), '--help');
    const parent = lstatSync(join(r.tree, 'usr/lib/a/b'));
    assert.equal(perms(parent.mode), 0o755);
    assert.equal(parent.uid, 0);
  });
});

test('replaces an existing link, a link to a directory, and a file; never writes through them', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'var/cache'), { recursive: true });
    writeFileSync(join(tree, 'etc/target'), 'keep\n');
    symlinkSync('target', join(tree, 'etc/old-link'));
    symlinkSync('../var/cache', join(tree, 'etc/dir-link'));
    writeFileSync(join(tree, 'etc/file'), 'replaced\n');
  };
  const options = {
    links: [
      { path: '/etc/old-link', target: '/new/one' },
      { path: '/etc/dir-link', target: '/new/two' },
      { path: '/etc/file', target: 'three' },
    ],
  };
  await withRule('files.symlink', options, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readlinkSync(join(r.tree, 'etc/old-link')), '/new/one');
    assert.equal(readlinkSync(join(r.tree, 'etc/dir-link')), '/new/two');
    assert.equal(readlinkSync(join(r.tree, 'etc/file')), 'three');
    assert.equal(readFileSync(join(r.tree, 'etc/target'), 'utf8'), 'keep\n');
    assert.deepEqual(readdirSync(join(r.tree, 'var/cache')), []);
    assert.deepEqual(readdirSync(join(r.tree, 'etc')).sort(), ['dir-link', 'file', 'old-link', 'target'], 'no temp file left behind');
  });
});

test('a symlinked parent is resolved inside the tree', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(tree, 'lib'));
    symlinkSync('/usr/lib/systemd', join(tree, 'lib/systemd'));
  };
  await withRule('files.symlink', { links: [{ path: '/lib/systemd/system/default.target', target: 'multi-user.target' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readlinkSync(join(r.tree, 'usr/lib/systemd/system/default.target')), 'multi-user.target');
  });
});

test('a real directory at the path fails with a clear message and is kept', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc/conf.d'), { recursive: true });
    writeFileSync(join(tree, 'etc/conf.d/x'), 'x');
  };
  await withRule('files.symlink', { links: [{ path: '/etc/conf.d', target: '/elsewhere' }] }, { tree: setup }, (r) => {
    assertFails(r, '/etc/conf.d: is a directory; a symlink cannot replace it');
    assert.ok(lstatSync(join(r.tree, 'etc/conf.d')).isDirectory());
    assert.equal(readFileSync(join(r.tree, 'etc/conf.d/x'), 'utf8'), 'x');
  });
});

test('the schema requires an absolute path and a non-empty target', T, async () => {
  assert.notDeepEqual(await schemaErrors('files.symlink', { links: [{ path: 'etc/x', target: 'y' }] }), []);
  assert.notDeepEqual(await schemaErrors('files.symlink', { links: [{ path: '/etc/x', target: '' }] }), []);
  assert.notDeepEqual(await schemaErrors('files.symlink', { links: [] }), []);
});
