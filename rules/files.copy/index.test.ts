/**
 * files.copy on a temporary tree through the real sandbox, with project files, project folders
 * and pipeline trees bound as inputs the way the scheduler binds them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, runRule, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';

const T = { timeout: 30_000 };
const HAVE_SETFATTR = spawnSync('setfattr', ['--version']).status === 0;
const OLD = new Date('2001-09-09T01:46:40Z'); // 1e9 s

/** Host-side inputs, removed after `fn`. */
async function withInputs(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-rule-input-');
  try {
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

function getXattr(path: string, name: string): string | undefined {
  const r = spawnSync('getfattr', ['--only-values', '-n', name, path], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

test('a project file lands owned by root, with mtime SOURCE_DATE_EPOCH, keeping its exec bit', T, async () => {
  await withInputs(async (dir) => {
    const f = join(dir, 'tool.sh');
    writeFileSync(f, '#!/bin/sh\necho tool\n');
    chmodSync(f, 0o755);
    chownSync(f, 1000, 1000);
    await withRule('files.copy', { items: [{ from: 'tool', to: '/usr/local/bin/tool' }] }, { inputs: { tool: { kind: 'file', path: f } } }, (r) => {
      assertOk(r);
      const p = join(r.tree, 'usr/local/bin/tool');
      const st = lstatSync(p);
      assert.ok(st.isFile());
      assert.equal(readFileSync(p, 'utf8'), '#!/bin/sh\necho tool\n');
      assert.equal(st.uid, 0);
      assert.equal(st.gid, 0);
      assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
      assert.equal(perms(st.mode), 0o755);
      assert.equal(perms(lstatSync(join(r.tree, 'usr/local/bin')).mode), 0o755);
      assert.deepEqual(readdirSync(join(r.tree, 'usr/local/bin')), ['tool'], 'no temp file left behind');
    });
  });
});

test('a project file with mode and owner options; it replaces a symlink to a directory at the destination', T, async () => {
  await withInputs(async (dir) => {
    const f = join(dir, 'motd');
    writeFileSync(f, 'welcome\n');
    const setup = (tree: string) => {
      mkdirSync(join(tree, 'etc'));
      mkdirSync(join(tree, 'var'));
      symlinkSync('../var', join(tree, 'etc/motd'));
    };
    const options = { items: [{ from: 'motd', to: '/etc/motd', mode: '0640', owner: '0:42' }] };
    await withRule('files.copy', options, { tree: setup, inputs: { motd: { kind: 'file', path: f } } }, (r) => {
      assertOk(r);
      const st = lstatSync(join(r.tree, 'etc/motd'));
      assert.ok(st.isFile(), 'the link is replaced by the file');
      assert.equal(readFileSync(join(r.tree, 'etc/motd'), 'utf8'), 'welcome\n');
      assert.equal(perms(st.mode), 0o640);
      assert.equal(st.gid, 42);
      assert.deepEqual(readdirSync(join(r.tree, 'var')), []);
    });
  });
});

test('a project folder is merged into an existing directory, whose own mode and owner are kept', T, async () => {
  await withInputs(async (dir) => {
    const src = join(dir, 'skel');
    mkdirSync(join(src, 'sub'), { recursive: true });
    chmodSync(src, 0o777);
    writeFileSync(join(src, '.bashrc'), 'alias ll="ls -l"\n');
    writeFileSync(join(src, 'sub/run.sh'), 'echo\n', { mode: 0o755 });
    for (const p of [src, join(src, 'sub'), join(src, '.bashrc'), join(src, 'sub/run.sh')]) chownSync(p, 1000, 1000);
    const setup = (tree: string) => {
      mkdirSync(join(tree, 'etc/skel'), { recursive: true });
      chmodSync(join(tree, 'etc/skel'), 0o700);
      chownSync(join(tree, 'etc/skel'), 3, 4);
      writeFileSync(join(tree, 'etc/skel/.profile'), 'existing\n');
    };
    await withRule('files.copy', { items: [{ from: 'skel', to: '/etc/skel' }] }, { tree: setup, inputs: { skel: { kind: 'dir', path: src } } }, (r) => {
      assertOk(r);
      const d = lstatSync(join(r.tree, 'etc/skel'));
      assert.equal(perms(d.mode), 0o700, 'the destination keeps its mode');
      assert.equal(d.uid, 3, 'the destination keeps its owner');
      assert.equal(d.gid, 4);
      assert.equal(readFileSync(join(r.tree, 'etc/skel/.profile'), 'utf8'), 'existing\n', 'merged, not replaced');
      assert.equal(readFileSync(join(r.tree, 'etc/skel/.bashrc'), 'utf8'), 'alias ll="ls -l"\n');
      for (const rel of ['.bashrc', 'sub', 'sub/run.sh']) {
        const st = lstatSync(join(r.tree, 'etc/skel', rel));
        assert.equal(st.uid, 0, rel);
        assert.equal(st.gid, 0, rel);
        assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000, rel);
      }
      assert.equal(perms(lstatSync(join(r.tree, 'etc/skel/sub/run.sh')).mode), 0o755);
    });
  });
});

test('a pipeline tree keeps owners, modes, mtimes, hardlinks and xattrs', T, async () => {
  await withInputs(async (dir) => {
    const base = join(dir, 'base');
    mkdirSync(join(base, 'sub/deep'), { recursive: true });
    writeFileSync(join(base, 'owned'), 'owned\n', { mode: 0o640 });
    chownSync(join(base, 'owned'), 1234, 5678);
    writeFileSync(join(base, 'a'), 'shared\n');
    linkSync(join(base, 'a'), join(base, 'sub/b'));
    writeFileSync(join(base, 'sub/deep/file'), 'deep\n');
    chownSync(join(base, 'sub/deep'), 9, 9);
    chmodSync(join(base, 'sub/deep'), 0o750);
    symlinkSync('/etc/passwd', join(base, 'link'));
    utimesSync(join(base, 'owned'), OLD, OLD);
    if (HAVE_SETFATTR) execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(base, 'owned')]);
    await withRule('files.copy', { items: [{ from: 'base', to: '/opt/base' }] }, { inputs: { base: { kind: 'tree', path: base } } }, (r) => {
      assertOk(r);
      const root = join(r.tree, 'opt/base');
      const owned = lstatSync(join(root, 'owned'));
      assert.equal(owned.uid, 1234);
      assert.equal(owned.gid, 5678);
      assert.equal(perms(owned.mode), 0o640);
      assert.equal(owned.mtimeMs, OLD.getTime());
      const a = lstatSync(join(root, 'a'));
      const b = lstatSync(join(root, 'sub/b'));
      assert.equal(a.ino, b.ino, 'the hardlink pair is one inode');
      assert.equal(a.nlink, 2);
      const deep = lstatSync(join(root, 'sub/deep'));
      assert.equal(deep.uid, 9);
      assert.equal(perms(deep.mode), 0o750);
      assert.equal(readFileSync(join(root, 'sub/deep/file'), 'utf8'), 'deep\n');
      assert.ok(lstatSync(join(root, 'link')).isSymbolicLink());
      if (HAVE_SETFATTR) assert.equal(getXattr(join(root, 'owned'), 'user.note'), 'kept');
    });
  });
});

test('from NAME/PATH copies a folder or a file inside the input; a file from a tree keeps its owner and xattrs', T, async () => {
  await withInputs(async (dir) => {
    const base = join(dir, 'base');
    mkdirSync(join(base, 'etc/app'), { recursive: true });
    writeFileSync(join(base, 'etc/app/one'), '1\n');
    writeFileSync(join(base, 'etc/app/two'), '2\n', { mode: 0o600 });
    chownSync(join(base, 'etc/app/two'), 77, 78);
    writeFileSync(join(base, 'etc/other'), 'not copied\n');
    if (HAVE_SETFATTR) execFileSync('setfattr', ['-n', 'user.x', '-v', 'y', join(base, 'etc/app/two')]);
    const options = {
      items: [
        { from: 'base/etc/app', to: '/srv/app' },
        { from: 'base/etc/app/two/', to: '/srv/two' },
      ],
    };
    await withRule('files.copy', options, { inputs: { base: { kind: 'tree', path: base } } }, (r) => {
      assertOk(r);
      assert.deepEqual(readdirSync(join(r.tree, 'srv')).sort(), ['app', 'two']);
      assert.deepEqual(readdirSync(join(r.tree, 'srv/app')).sort(), ['one', 'two']);
      const two = lstatSync(join(r.tree, 'srv/two'));
      assert.ok(two.isFile());
      assert.equal(readFileSync(join(r.tree, 'srv/two'), 'utf8'), '2\n');
      assert.equal(two.uid, 77);
      assert.equal(two.gid, 78);
      assert.equal(perms(two.mode), 0o600);
      if (HAVE_SETFATTR) assert.equal(getXattr(join(r.tree, 'srv/two'), 'user.x'), 'y');
    });
  });
});

test('mode and owner options apply to a tree folder: owner to everything copied, mode to the destination', T, async () => {
  await withInputs(async (dir) => {
    const base = join(dir, 'base');
    mkdirSync(join(base, 'sub'), { recursive: true });
    writeFileSync(join(base, 'sub/f'), 'f\n');
    chownSync(join(base, 'sub/f'), 1, 2);
    const options = { items: [{ from: 'base', to: '/data', mode: '0750', owner: '500:600' }] };
    await withRule('files.copy', options, { inputs: { base: { kind: 'tree', path: base } } }, (r) => {
      assertOk(r);
      assert.equal(perms(lstatSync(join(r.tree, 'data')).mode), 0o750);
      for (const rel of ['data/sub', 'data/sub/f']) {
        const st = lstatSync(join(r.tree, rel));
        assert.equal(st.uid, 500, rel);
        assert.equal(st.gid, 600, rel);
      }
    });
  });
});

test('a missing path inside an input fails, naming it', T, async () => {
  await withInputs(async (dir) => {
    mkdirSync(join(dir, 'base'));
    await withRule('files.copy', { items: [{ from: 'base/nope', to: '/x' }] }, { inputs: { base: { kind: 'tree', path: join(dir, 'base') } } }, (r) => {
      assertFails(r, 'base/nope');
    });
  });
});

test('an unknown input name makes invoke throw, naming the known inputs', T, async () => {
  await withInputs(async (dir) => {
    writeFileSync(join(dir, 'f'), '');
    mkdirSync(join(dir, 'd'));
    const inputs = { motd: { kind: 'file' as const, path: join(dir, 'f') }, base: { kind: 'tree' as const, path: join(dir, 'd') } };
    await assert.rejects(
      runRule('files.copy', { items: [{ from: 'nope/etc', to: '/etc' }] }, { inputs }),
      (e: Error) => /"nope\/etc" names no input/.test(e.message) && /motd, base/.test(e.message),
    );
    await assert.rejects(runRule('files.copy', { items: [{ from: 'nope', to: '/etc' }] }), /it has no inputs/);
  });
});

test("a folder merged into a directory follows the tree's relative directory links instead of replacing them", T, async () => {
  await withInputs(async (dir) => {
    const src = join(dir, 'overlay');
    mkdirSync(join(src, 'lib/systemd'), { recursive: true });
    writeFileSync(join(src, 'lib/systemd/extra.conf'), 'extra\n');
    mkdirSync(join(src, 'etc'));
    writeFileSync(join(src, 'etc/new'), 'new\n');
    // A merged-/usr layout one level down: /sysroot/lib -> usr/lib.
    const setup = (tree: string) => {
      mkdirSync(join(tree, 'sysroot/usr/lib/systemd'), { recursive: true });
      writeFileSync(join(tree, 'sysroot/usr/lib/systemd/existing'), 'existing\n');
      symlinkSync('usr/lib', join(tree, 'sysroot/lib'));
    };
    await withRule('files.copy', { items: [{ from: 'overlay', to: '/sysroot' }] }, { tree: setup, inputs: { overlay: { kind: 'dir', path: src } } }, (r) => {
      assertOk(r);
      assert.ok(lstatSync(join(r.tree, 'sysroot/lib')).isSymbolicLink(), 'lib -> usr/lib is still a link');
      assert.equal(readFileSync(join(r.tree, 'sysroot/usr/lib/systemd/extra.conf'), 'utf8'), 'extra\n');
      assert.equal(readFileSync(join(r.tree, 'sysroot/usr/lib/systemd/existing'), 'utf8'), 'existing\n');
      assert.equal(readFileSync(join(r.tree, 'sysroot/etc/new'), 'utf8'), 'new\n');
    });
  });
});

test('a folder whose directory meets an absolute directory link in the tree fails clearly instead of writing outside the tree', T, async () => {
  await withInputs(async (dir) => {
    const src = join(dir, 'overlay');
    mkdirSync(join(src, 'run'), { recursive: true });
    writeFileSync(join(src, 'run/marker'), 'm\n');
    const setup = (tree: string) => {
      mkdirSync(join(tree, 'var'));
      mkdirSync(join(tree, 'run'));
      symlinkSync('/run', join(tree, 'var/run'));
    };
    await withRule('files.copy', { items: [{ from: 'overlay', to: '/var' }] }, { tree: setup, inputs: { overlay: { kind: 'dir', path: src } } }, (r) => {
      assertFails(r, '/var/run', 'absolute');
      assert.ok(lstatSync(join(r.tree, 'var/run')).isSymbolicLink(), 'the link is kept');
    });
  });
});

test('a project folder copied to / is merged into the root of the tree, which keeps its mode', T, async () => {
  await withInputs(async (dir) => {
    const src = join(dir, 'overlay');
    mkdirSync(join(src, 'etc'), { recursive: true });
    chmodSync(src, 0o700);
    writeFileSync(join(src, 'etc/issue'), 'Welcome\n');
    const setup = (tree: string) => {
      mkdirSync(join(tree, 'etc'));
      writeFileSync(join(tree, 'etc/os-release'), 'ID=test\n');
    };
    await withRule('files.copy', { items: [{ from: 'overlay', to: '/' }] }, { tree: setup, inputs: { overlay: { kind: 'dir', path: src } } }, (r) => {
      assertOk(r);
      assert.equal(readFileSync(join(r.tree, 'etc/issue'), 'utf8'), 'Welcome\n');
      assert.equal(readFileSync(join(r.tree, 'etc/os-release'), 'utf8'), 'ID=test\n');
      assert.notEqual(perms(lstatSync(r.tree).mode), 0o700, 'the root keeps its own mode');
    });
  });
});
