/**
 * files.chmod on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

function files(tree: string): void {
  mkdirSync(join(tree, 'etc/app/sub'), { recursive: true });
  writeFileSync(join(tree, 'etc/app/key'), 'k', { mode: 0o644 });
  writeFileSync(join(tree, 'etc/app/sub/deep'), 'd', { mode: 0o644 });
  writeFileSync(join(tree, 'etc/app/run.sh'), '#!/bin/sh\n', { mode: 0o664 });
  writeFileSync(join(tree, 'etc/outside'), 'o', { mode: 0o644 });
  chmodSync(join(tree, 'etc/app/run.sh'), 0o664);
}

const mode = (tree: string, rel: string): number => perms(lstatSync(join(tree, rel)).mode);

test('octal and symbolic modes', T, async () => {
  const options = {
    items: [
      { path: '/etc/app/key', mode: '0600' },
      { path: '/etc/app/run.sh', mode: 'u+x,go-w' },
      { path: '/etc/outside', mode: '4755' },
      { path: '/etc/app/sub', mode: '=rx,u+w' },
    ],
  };
  await withRule('files.chmod', options, { tree: files }, (r) => {
    assertOk(r);
    assert.equal(mode(r.tree, 'etc/app/key'), 0o600);
    assert.equal(mode(r.tree, 'etc/app/run.sh'), 0o744);
    assert.equal(mode(r.tree, 'etc/outside'), 0o4755);
    assert.equal(mode(r.tree, 'etc/app/sub'), 0o755);
    assert.equal(mode(r.tree, 'etc/app/sub/deep'), 0o644, 'not recursive by default');
  });
});

test('a mode starting with a dash (-w) is a mode, not an option', T, async () => {
  await withRule('files.chmod', { items: [{ path: '/etc/app/key', mode: '-w' }] }, { tree: files }, (r) => {
    assertOk(r);
    assert.equal(mode(r.tree, 'etc/app/key'), 0o444);
  });
});

test('recursive applies below a directory, leaves symlinks below it alone and does not follow them', T, async () => {
  const setup = (tree: string) => {
    files(tree);
    symlinkSync('../outside', join(tree, 'etc/app/to-outside'));
  };
  await withRule('files.chmod', { items: [{ path: '/etc/app', mode: 'go-rwx', recursive: true }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(mode(r.tree, 'etc/app'), 0o700);
    assert.equal(mode(r.tree, 'etc/app/sub'), 0o700);
    assert.equal(mode(r.tree, 'etc/app/sub/deep'), 0o600);
    assert.equal(mode(r.tree, 'etc/app/key'), 0o600);
    assert.equal(mode(r.tree, 'etc/outside'), 0o644, 'the link below the path was not followed');
  });
});

test('a symlink at the path is resolved inside the tree', T, async () => {
  const setup = (tree: string) => {
    files(tree);
    mkdirSync(join(tree, 'usr/lib'), { recursive: true });
    symlinkSync('/etc/app/key', join(tree, 'usr/lib/key'));
  };
  await withRule('files.chmod', { items: [{ path: '/usr/lib/key', mode: '0400' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(mode(r.tree, 'etc/app/key'), 0o400);
    assert.ok(lstatSync(join(r.tree, 'usr/lib/key')).isSymbolicLink());
  });
});

test('a missing path fails, naming it; items before it were applied, none after', T, async () => {
  const options = {
    items: [
      { path: '/etc/app/key', mode: '0600' },
      { path: '/etc/missing/file', mode: '0600' },
      { path: '/etc/outside', mode: '0600' },
    ],
  };
  await withRule('files.chmod', options, { tree: files }, (r) => {
    assertFails(r, '/etc/missing/file');
    assert.equal(mode(r.tree, 'etc/app/key'), 0o600);
    assert.equal(mode(r.tree, 'etc/outside'), 0o644);
  });
});

test('the schema takes octal and symbolic modes and rejects others', T, async () => {
  for (const ok of ['644', '0644', '4755', 'u+x', 'a=r,u+w', '-w', 'g+s', 'o+t']) {
    assert.deepEqual(await schemaErrors('files.chmod', { items: [{ path: '/x', mode: ok }] }), [], ok);
  }
  for (const bad of ['999', 'rwxr-xr-x', 'u+x; rm -rf /', '', '0o644']) {
    assert.notDeepEqual(await schemaErrors('files.chmod', { items: [{ path: '/x', mode: bad }] }), [], bad);
  }
});
