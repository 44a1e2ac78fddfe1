/**
 * files.write on a temporary tree through the real sandbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

test('writes the content exactly, 0644 root by default, creating parent directories 0755', T, async () => {
  await withRule('files.write', { files: [{ path: '/etc/app/conf.d/main.conf', content: 'key = value\n' }] }, {}, (r) => {
    assertOk(r);
    const p = join(r.tree, 'etc/app/conf.d/main.conf');
    assert.equal(readFileSync(p, 'utf8'), 'key = value\n');
    const st = lstatSync(p);
    assert.ok(st.isFile());
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, 0);
    for (const d of ['etc', 'etc/app', 'etc/app/conf.d']) {
      const ds = lstatSync(join(r.tree, d));
      assert.ok(ds.isDirectory(), d);
      assert.equal(perms(ds.mode), 0o755, d);
      assert.equal(ds.uid, 0, d);
    }
    assert.deepEqual(readdirSync(join(r.tree, 'etc/app/conf.d')), ['main.conf'], 'no temp file left behind');
  });
});

test('a custom mode and numeric owner apply; several files in one stage', T, async () => {
  const options = {
    files: [
      { path: '/home/user/.secret', content: 's3cret', mode: '0600', owner: '1000:1000' },
      { path: '/usr/local/bin/hello', content: '#!/bin/sh\necho hi\n', mode: '4755', owner: '0:50' },
    ],
  };
  await withRule('files.write', options, {}, (r) => {
    assertOk(r);
    const a = lstatSync(join(r.tree, 'home/user/.secret'));
    assert.equal(perms(a.mode), 0o600);
    assert.equal(a.uid, 1000);
    assert.equal(a.gid, 1000);
    const b = lstatSync(join(r.tree, 'usr/local/bin/hello'));
    assert.equal(perms(b.mode), 0o4755, 'the set-uid bit survives the chown');
    assert.equal(b.gid, 50);
  });
});

test('content with quotes, $vars, backslashes, unicode and no trailing newline is byte-exact', T, async () => {
  const content = `it's "quoted" $HOME \${x} $(echo no) \`no\` \\n \\\\ back\\slash\ttab\r\n€ ∑ 🐧\n\n  end without newline %s %d`;
  await withRule('files.write', { files: [{ path: '/etc/tricky', content }, { path: '/etc/empty', content: '' }] }, {}, (r) => {
    assertOk(r);
    assert.deepEqual(readFileSync(join(r.tree, 'etc/tricky')), Buffer.from(content, 'utf8'));
    assert.equal(lstatSync(join(r.tree, 'etc/empty')).size, 0);
  });
});

test('an existing file is replaced whole', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc/motd'), 'a much longer old content that must vanish\n', { mode: 0o666 });
  };
  await withRule('files.write', { files: [{ path: '/etc/motd', content: 'new\n' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'etc/motd'), 'utf8'), 'new\n');
    assert.equal(perms(lstatSync(join(r.tree, 'etc/motd')).mode), 0o644);
  });
});

test('a symlink at the path (absolute, to a host path) is replaced by a file; the host file is untouched', T, async () => {
  const host = tempDir('imgmake-rule-host-');
  try {
    const hostFile = join(host.dir, 'resolv.conf');
    writeFileSync(hostFile, 'host content\n');
    const setup = (tree: string) => {
      mkdirSync(join(tree, 'etc'));
      symlinkSync(hostFile, join(tree, 'etc/resolv.conf'));
    };
    await withRule('files.write', { files: [{ path: '/etc/resolv.conf', content: 'nameserver 10.0.0.1\n' }] }, { tree: setup }, (r) => {
      assertOk(r);
      const st = lstatSync(join(r.tree, 'etc/resolv.conf'));
      assert.ok(st.isFile(), 'a regular file now, not a link');
      assert.equal(readFileSync(join(r.tree, 'etc/resolv.conf'), 'utf8'), 'nameserver 10.0.0.1\n');
      assert.equal(readFileSync(hostFile, 'utf8'), 'host content\n');
    });
  } finally {
    host.cleanup();
  }
});

test('a relative symlink at the path is replaced; its target in the tree is untouched', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'elsewhere'));
    writeFileSync(join(tree, 'elsewhere/resolv.conf'), 'original\n');
    symlinkSync('../elsewhere/resolv.conf', join(tree, 'etc/resolv.conf'));
  };
  await withRule('files.write', { files: [{ path: '/etc/resolv.conf', content: 'new\n' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/resolv.conf')).isFile());
    assert.equal(readFileSync(join(r.tree, 'etc/resolv.conf'), 'utf8'), 'new\n');
    assert.equal(readFileSync(join(r.tree, 'elsewhere/resolv.conf'), 'utf8'), 'original\n');
  });
});

test('a symlink to a directory at the path is replaced by the file, not written into the directory', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'var'));
    symlinkSync('../var', join(tree, 'etc/motd'));
    symlinkSync('/tmp', join(tree, 'etc/issue'));
  };
  const options = { files: [{ path: '/etc/motd', content: 'motd\n' }, { path: '/etc/issue', content: 'issue\n' }] };
  await withRule('files.write', options, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/motd')).isFile());
    assert.equal(readFileSync(join(r.tree, 'etc/motd'), 'utf8'), 'motd\n');
    assert.ok(lstatSync(join(r.tree, 'etc/issue')).isFile());
    assert.equal(readFileSync(join(r.tree, 'etc/issue'), 'utf8'), 'issue\n');
    assert.deepEqual(readdirSync(join(r.tree, 'var')), []);
  });
});

test('a symlinked parent directory is resolved inside the tree', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'usr/lib/os'), { recursive: true });
    mkdirSync(join(tree, 'etc'));
    symlinkSync('/usr/lib/os', join(tree, 'etc/os.d'));
  };
  await withRule('files.write', { files: [{ path: '/etc/os.d/release', content: 'ID=test\n' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'usr/lib/os/release'), 'utf8'), 'ID=test\n');
    assert.equal(readlinkSync(join(r.tree, 'etc/os.d')), '/usr/lib/os');
  });
});

test('a relative link that climbs above the root stays in the tree, as in a chroot', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    symlinkSync('../../../../../../srv', join(tree, 'etc/up'));
  };
  await withRule('files.write', { files: [{ path: '/etc/up/file', content: 'inside\n' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readFileSync(join(r.tree, 'srv/file'), 'utf8'), 'inside\n');
  });
});

test('a symlink loop on the way fails with a message', T, async () => {
  const setup = (tree: string) => symlinkSync('loop', join(tree, 'loop'));
  await withRule('files.write', { files: [{ path: '/loop/file', content: 'x' }] }, { tree: setup }, (r) => {
    assertFails(r, '/loop/file: too many levels of symbolic links');
  });
});

test('a directory at the path fails', T, async () => {
  const setup = (tree: string) => mkdirSync(join(tree, 'etc/motd'), { recursive: true });
  await withRule('files.write', { files: [{ path: '/etc/motd', content: 'x' }] }, { tree: setup }, (r) => {
    assertFails(r, '/etc/motd', 'is a directory');
    assert.ok(lstatSync(join(r.tree, 'etc/motd')).isDirectory());
  });
});

test('the schema requires content and an absolute path', T, async () => {
  assert.notDeepEqual(await schemaErrors('files.write', { files: [{ path: '/etc/x' }] }), []);
  assert.notDeepEqual(await schemaErrors('files.write', { files: [{ path: 'etc/x', content: '' }] }), []);
  assert.notDeepEqual(await schemaErrors('files.write', { files: [{ path: '/etc/x', content: '', mode: 'rw' }] }), []);
});
