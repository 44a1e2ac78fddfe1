/**
 * ostree.commit through the real sandbox and the host's ostree: a prepared tree committed to a
 * ref of an archive repository packed as a tarball; the same tree committed twice (from copies
 * with other host times) gives the same checksum and the same tarball; a second commit with the
 * first's repository as parent (tarball, folder, or a folder of its commit objects only) forms a
 * history `ostree log` shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { assertFails, assertOk, schemaErrors, tempDir, withRule, type RuleRun } from '../../test/helpers/rule-harness.js';

const T = { timeout: 60_000 };

/** A tree as ostree.layout and ostree.kernel leave it (small). */
function prepared(tree: string, o: { motd?: string; time?: Date } = {}): void {
  for (const d of ['usr/etc', 'usr/bin', 'usr/lib/modules/6.1.0-9-amd64', 'var', 'sysroot', 'home-src']) mkdirSync(join(tree, d), { recursive: true });
  writeFileSync(join(tree, 'usr/etc/motd'), o.motd ?? 'one\n');
  writeFileSync(join(tree, 'usr/lib/modules/6.1.0-9-amd64/vmlinuz'), 'kernel\n');
  writeFileSync(join(tree, 'usr/lib/modules/6.1.0-9-amd64/initramfs.img'), 'initrd\n');
  writeFileSync(join(tree, 'usr/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
  chownSync(join(tree, 'home-src'), 1000, 1000);
  execFileSync('ln', ['-s', 'sysroot/ostree', join(tree, 'ostree')]);
  if (o.time) for (const p of ['usr/etc/motd', 'usr/bin/tool', 'usr/etc']) utimesSync(join(tree, p), o.time, o.time);
}

function ostree(repo: string, ...args: string[]): string {
  return execFileSync('ostree', [`--repo=${repo}`, ...args], { encoding: 'utf8' });
}

/** The run's repository tarball unpacked into `dir`; returns the repo path. */
function unpack(r: RuleRun, dir: string): string {
  mkdirSync(dir);
  execFileSync('tar', ['-xf', join(r.tree, 'ostree-repo.tar'), '-C', dir]);
  return dir;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('a prepared tree → an archive repository on the ref, with subject, version, metadata and timestamp; the same tree again → the same commit and tarball', T, async () => {
  const scratch = tempDir('imgmake-ostree-commit-');
  try {
    const a = join(scratch.dir, 'a');
    const b = join(scratch.dir, 'b');
    prepared(a, { time: new Date('2024-05-01T00:00:00Z') });
    prepared(b, { time: new Date('2011-01-01T00:00:00Z') });
    const options = { subject: 'Debian edge', version: '12.1', metadata: { 'imgmake.target': 'ostree-commit' } };
    let first = '';
    let tarball = '';
    await withRule('ostree.commit', options, { inputs: { tree: { kind: 'tree', path: a } } }, (r) => {
      assertOk(r);
      const info = JSON.parse(readFileSync(join(r.tree, 'ostree-commit.json'), 'utf8'));
      assert.equal(info.ref, 'debian/12/x86_64/edge');
      assert.match(info.commit, /^[0-9a-f]{64}$/);
      assert.equal(info.parent, null);
      assert.equal(info.subject, 'Debian edge');
      first = info.commit;
      tarball = sha256(join(r.tree, 'ostree-repo.tar'));
      const repo = unpack(r, join(scratch.dir, 'repo1'));
      assert.match(readFileSync(join(repo, 'config'), 'utf8'), /mode=archive/);
      assert.equal(ostree(repo, 'rev-parse', 'debian/12/x86_64/edge').trim(), first);
      const show = ostree(repo, 'show', first);
      assert.match(show, /Date: {2}1980-01-01 00:00:00 \+0000/);
      assert.match(show, /Version: 12\.1/);
      assert.match(show, /Debian edge/);
      assert.equal(ostree(repo, 'show', '--print-metadata-key=imgmake.target', first).trim(), "'ostree-commit'");
      assert.equal(ostree(repo, 'show', '--print-metadata-key=ostree.linux', first).trim(), "'6.1.0-9-amd64'");
      assert.equal(ostree(repo, 'cat', first, '/usr/etc/motd'), 'one\n');
      assert.match(ostree(repo, 'ls', first, '/home-src'), /^d00755 1000 1000/);
      assert.match(ostree(repo, 'ls', first, '/usr/bin/tool'), /^-00755 0 0/);
      execFileSync('ostree', [`--repo=${repo}`, 'fsck'], { stdio: 'pipe' });
    });
    await withRule('ostree.commit', options, { inputs: { tree: { kind: 'tree', path: b } } }, (r) => {
      assertOk(r);
      assert.equal(JSON.parse(readFileSync(join(r.tree, 'ostree-commit.json'), 'utf8')).commit, first, 'a copy with other mtimes: the same commit');
      assert.equal(sha256(join(r.tree, 'ostree-repo.tar')), tarball, 'and the same tarball');
    });
  } finally {
    scratch.cleanup();
  }
});

test('a second commit with the first repository as parent (tarball, folder, commit objects only): ostree log shows both; another ref in the parent fails', T, async () => {
  const scratch = tempDir('imgmake-ostree-parent-');
  try {
    const one = join(scratch.dir, 'one');
    const two = join(scratch.dir, 'two');
    prepared(one);
    prepared(two, { motd: 'two\n' });
    let c1 = '';
    await withRule('ostree.commit', { subject: 'commit 1' }, { inputs: { tree: { kind: 'tree', path: one } } }, (r) => {
      assertOk(r);
      c1 = JSON.parse(readFileSync(join(r.tree, 'ostree-commit.json'), 'utf8')).commit;
      copyFileSync(join(r.tree, 'ostree-repo.tar'), join(scratch.dir, 'parent.tar'));
      unpack(r, join(scratch.dir, 'parent-dir'));
    });
    const check = (r: RuleRun, name: string) => {
      assertOk(r);
      const info = JSON.parse(readFileSync(join(r.tree, 'ostree-commit.json'), 'utf8'));
      assert.equal(info.parent, c1);
      const repo = unpack(r, join(scratch.dir, name));
      const log = ostree(repo, 'log', 'debian/12/x86_64/edge');
      assert.match(log, new RegExp(`commit ${info.commit}[\\s\\S]*commit 2[\\s\\S]*commit ${c1}[\\s\\S]*commit 1`));
      assert.equal(ostree(repo, 'cat', 'debian/12/x86_64/edge', '/usr/etc/motd'), 'two\n');
      assert.equal(ostree(repo, 'cat', c1, '/usr/etc/motd'), 'one\n');
      return info.commit as string;
    };
    const fromTar = await withParent('ostree.commit', two, { kind: 'file', path: join(scratch.dir, 'parent.tar') }, (r) => check(r, 'from-tar'));
    const fromDir = await withParent('ostree.commit', two, { kind: 'dir', path: join(scratch.dir, 'parent-dir') }, (r) => check(r, 'from-dir'));
    assert.equal(fromTar, fromDir, 'the parent\'s form does not change the commit');
    // A folder of commit objects only (what --ostree-parent URL fetches: each commit marked
    // partial): the history without the parent's content, and the same commit again.
    const meta = join(scratch.dir, 'parent-meta');
    ostree(meta, 'init', '--mode=archive');
    execFileSync('ostree', [`--repo=${meta}`, 'pull-local', '--commit-metadata-only', '--depth=-1', join(scratch.dir, 'parent-dir'), 'debian/12/x86_64/edge'], { stdio: 'pipe' });
    const fromMeta = await withParent('ostree.commit', two, { kind: 'dir', path: meta }, (r) => {
      assertOk(r);
      const info = JSON.parse(readFileSync(join(r.tree, 'ostree-commit.json'), 'utf8'));
      assert.equal(info.parent, c1);
      const repo = unpack(r, join(scratch.dir, 'from-meta'));
      assert.match(ostree(repo, 'log', 'debian/12/x86_64/edge'), new RegExp(`commit ${info.commit}[\\s\\S]*commit ${c1}[\\s\\S]*commit 1`));
      assert.ok(existsSync(join(repo, 'state', `${c1}.commitpartial`)), 'the parent is there as metadata only');
      assert.equal(ostree(repo, 'cat', 'debian/12/x86_64/edge', '/usr/etc/motd'), 'two\n');
      return info.commit as string;
    });
    assert.equal(fromMeta, fromTar, 'a metadata-only parent gives the same commit');
    await withRule('ostree.commit', { ref: 'debian/12/x86_64/stable' }, { inputs: { tree: { kind: 'tree', path: two }, parent: { kind: 'file', path: join(scratch.dir, 'parent.tar') } } }, (r) =>
      assertFails(r, 'the parent repository has no ref debian/12/x86_64/stable', 'debian/12/x86_64/edge'),
    );
    writeFileSync(join(scratch.dir, 'junk.tar'), 'not a tar');
    await withRule('ostree.commit', {}, { inputs: { tree: { kind: 'tree', path: two }, parent: { kind: 'file', path: join(scratch.dir, 'junk.tar') } } }, (r) =>
      assertFails(r, 'the parent input is not a tarball of an ostree repository'),
    );
  } finally {
    scratch.cleanup();
  }
});

async function withParent<R>(rule: string, tree: string, parent: { kind: 'file' | 'dir'; path: string }, fn: (r: RuleRun) => R): Promise<R> {
  let out: R | undefined;
  await withRule(rule, { subject: 'commit 2' }, { inputs: { tree: { kind: 'tree', path: tree }, parent } }, (r) => {
    out = fn(r);
  });
  return out!;
}

test('a tree ostree.layout did not prepare fails, saying which rule to run', T, async () => {
  const scratch = tempDir('imgmake-ostree-unprepared-');
  try {
    const t = join(scratch.dir, 't');
    mkdirSync(join(t, 'etc'), { recursive: true });
    mkdirSync(join(t, 'usr'));
    await withRule('ostree.commit', {}, { inputs: { tree: { kind: 'tree', path: t } } }, (r) => assertFails(r, 'no /usr/etc: prepare it with ostree.layout'));
    mkdirSync(join(t, 'usr/etc'));
    await withRule('ostree.commit', {}, { inputs: { tree: { kind: 'tree', path: t } } }, (r) => assertFails(r, 'has /etc as well as /usr/etc'));
    execFileSync('rm', ['-r', join(t, 'etc')]);
    await withRule('ostree.commit', {}, { inputs: { tree: { kind: 'tree', path: t } } }, (r) => assertFails(r, 'no /usr/lib/modules/VERSION/vmlinuz', 'ostree.kernel'));
  } finally {
    scratch.cleanup();
  }
  for (const bad of [{ ref: '/abs' }, { ref: 'a//b' }, { subject: 'two\nlines' }, { filename: 'repo.tgz' }, { metadata: { 'bad key': 'x' } }]) {
    assert.notDeepEqual(await schemaErrors('ostree.commit', bad), [], JSON.stringify(bad));
  }
});
