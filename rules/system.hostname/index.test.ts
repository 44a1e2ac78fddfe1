/**
 * system.hostname on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOk, perms, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

const lines = (tree: string, rel: string): string[] => readFileSync(join(tree, rel), 'utf8').split('\n');

test('writes /etc/hostname and creates /etc/hosts with the localhost entries and 127.0.1.1', T, async () => {
  await withRule('system.hostname', { hostname: 'box' }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/hostname'), 'utf8'), 'box\n');
    const st = lstatSync(join(r.tree, 'etc/hostname'));
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.uid, 0);
    const hosts = lines(r.tree, 'etc/hosts');
    assert.equal(hosts[0], '127.0.0.1\tlocalhost');
    assert.equal(hosts[1], '127.0.1.1\tbox');
    assert.ok(hosts.some((l) => /^::1\s+localhost\b/.test(l)), hosts.join('\n'));
    assert.equal(hosts.at(-1), '', 'ends with a newline');
    assert.equal(perms(lstatSync(join(r.tree, 'etc/hosts')).mode), 0o644);
  });
});

test('an existing /etc/hosts keeps its other lines; an old 127.0.1.1 line is replaced, only one remains', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc/hostname'), 'old\n');
    writeFileSync(
      join(tree, 'etc/hosts'),
      '# static table\n127.0.0.1 localhost\n127.0.1.1 old old.example\n10.0.0.5\tdb\n127.0.1.1\tstale\n::1 localhost\n',
    );
  };
  await withRule('system.hostname', { hostname: 'new' }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/hostname'), 'utf8'), 'new\n');
    assert.deepEqual(lines(r.tree, 'etc/hosts'), ['# static table', '127.0.0.1 localhost', '127.0.1.1\tnew', '10.0.0.5\tdb', '::1 localhost', '']);
  });
});

test('an /etc/hosts without a 127.0.0.1 line gets the entry at the end', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc/hosts'), '::1 localhost\n');
  };
  await withRule('system.hostname', { hostname: 'h1' }, { tree: setup }, (r) => {
    assertOk(r);
    assert.deepEqual(lines(r.tree, 'etc/hosts'), ['::1 localhost', '127.0.1.1\th1', '']);
  });
});

test('an FQDN maps both the full and the short name', T, async () => {
  await withRule('system.hostname', { hostname: 'web.example.test' }, {}, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/hostname'), 'utf8'), 'web.example.test\n');
    const entries = lines(r.tree, 'etc/hosts').filter((l) => l.startsWith('127.0.1.1'));
    assert.deepEqual(entries, ['127.0.1.1\tweb.example.test web']);
  });
});

test('a symlinked /etc/hostname and /etc/hosts are replaced by files; a linked hosts file is read', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'usr/share'), { recursive: true });
    writeFileSync(join(tree, 'usr/share/hosts'), '127.0.0.1 localhost\n192.168.1.1 gw\n');
    symlinkSync('/usr/share/hosts', join(tree, 'etc/hosts'));
    symlinkSync('/proc/sys/kernel/hostname', join(tree, 'etc/hostname'));
  };
  await withRule('system.hostname', { hostname: 'linked' }, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/hostname')).isFile());
    assert.equal(readFileSync(join(r.tree, 'etc/hostname'), 'utf8'), 'linked\n');
    assert.ok(lstatSync(join(r.tree, 'etc/hosts')).isFile());
    assert.deepEqual(lines(r.tree, 'etc/hosts'), ['127.0.0.1 localhost', '127.0.1.1\tlinked', '192.168.1.1 gw', '']);
    assert.equal(readFileSync(join(r.tree, 'usr/share/hosts'), 'utf8'), '127.0.0.1 localhost\n192.168.1.1 gw\n');
  });
});

test('the schema rejects names that are not RFC 1123 host names', T, async () => {
  for (const bad of ['bad_name', '-x', 'x-', 'a..b', '', 'has space', 'a'.repeat(64), 'semi;colon']) {
    assert.notDeepEqual(await schemaErrors('system.hostname', { hostname: bad }), [], bad);
  }
  for (const good of ['x', 'web-1', 'web.example.test', 'A1', 'a'.repeat(63)]) {
    assert.deepEqual(await schemaErrors('system.hostname', { hostname: good }), [], good);
  }
});
