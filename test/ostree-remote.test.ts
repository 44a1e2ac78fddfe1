/**
 * `--ostree-parent URL`'s fetch (src/catalog/ostree-remote.ts) against a real nginx on loopback
 * serving a repository the host's ostree made: the ref's history comes as commit objects only,
 * in a folder whose digest is a function of the commit (two fetches into two places agree; a
 * new commit on the server gives another); the host's ostree reads that folder's history and
 * a commit on top of it; what cannot be fetched fails with the URL that failed and writes
 * nothing. The CLI's use of it (a build with a URL parent, cached the second time) is in
 * test/ostree-e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitParent, fetchOstreeParent } from '../src/catalog/ostree-remote.js';
import { digestPath } from '../src/key.js';
import { freePort, startNginx } from './helpers/nginx.js';

const REF = 'debian/12/x86_64/edge';

function ostree(repo: string, ...args: string[]): string {
  return execFileSync('ostree', [`--repo=${repo}`, ...args], { encoding: 'utf8' }).trim();
}

/** A commit of a one-file tree on REF of `repo` (an archive repository, made when missing). */
function commit(repo: string, tree: string, text: string): string {
  if (!existsSync(repo)) ostree(repo, 'init', '--mode=archive');
  mkdirSync(join(tree, 'usr/etc'), { recursive: true });
  writeFileSync(join(tree, 'usr/etc/motd'), text);
  return ostree(repo, 'commit', `--branch=${REF}`, `--subject=${text.trim()}`, `--tree=dir=${tree}`);
}

test('an HTTP repository\'s history → a folder of its commit objects, keyed by content; ostree reads it and commits on top', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-ostree-remote-'));
  chmodSync(dir, 0o755); // nginx's worker runs as an unprivileged user
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const nginx = await startNginx(join(dir, 'nginx'));
  t.after(() => nginx.stop());
  const served = join(nginx.www, 'repo');
  const c1 = commit(served, join(dir, 'tree'), 'one\n');
  const c2 = commit(served, join(dir, 'tree'), 'two\n');
  execFileSync('chmod', ['-R', 'a+rX', nginx.www]);
  const url = `http://127.0.0.1:${nginx.port}/repo`;

  // The GVariant parent field, checked against ostree's own reading.
  const object = (c: string) => readFileSync(join(served, 'objects', c.slice(0, 2), `${c.slice(2)}.commit`));
  assert.deepEqual(commitParent(object(c2)), { ok: true, value: c1 });
  assert.deepEqual(commitParent(object(c1)), { ok: true, value: null });
  assert.equal(commitParent(Buffer.from([1])).ok, false);

  const a = await fetchOstreeParent({ url, ref: REF, parentsDir: join(dir, 'a') });
  assert.ok(a.ok, JSON.stringify(a));
  assert.deepEqual({ commit: a.value.commit, commits: a.value.commits, fetched: a.value.fetched }, { commit: c2, commits: [c2, c1], fetched: true });
  assert.equal(a.value.dir, join(dir, 'a', c2));
  assert.equal(ostree(a.value.dir, 'rev-parse', REF), c2);
  assert.match(ostree(a.value.dir, 'log', REF), new RegExp(`commit ${c2}[\\s\\S]*two[\\s\\S]*commit ${c1}[\\s\\S]*one`));
  assert.deepEqual(readdirSync(join(a.value.dir, 'state')).sort(), [`${c1}.commitpartial`, `${c2}.commitpartial`].sort());
  assert.deepEqual(readdirSync(join(dir, 'a')), [c2], 'no temporary folder left');

  // The same server state: the folder again, not fetched again; fetched elsewhere: the same digest.
  const again = await fetchOstreeParent({ url: `${url}/`, ref: REF, parentsDir: join(dir, 'a') });
  assert.ok(again.ok && !again.value.fetched && again.value.dir === a.value.dir);
  const b = await fetchOstreeParent({ url, ref: REF, parentsDir: join(dir, 'b') });
  assert.ok(b.ok);
  assert.equal(await digestPath(b.value.dir), await digestPath(a.value.dir), 'the folder is a function of the commit');

  // The commit stage's way of reading it (rules/ostree.commit): the history, then a commit on top.
  const out = join(dir, 'out');
  ostree(out, 'init', '--mode=archive');
  execFileSync('ostree', [`--repo=${out}`, 'pull-local', '--commit-metadata-only', '--depth=-1', a.value.dir, REF], { stdio: 'pipe' });
  mkdirSync(join(dir, 'tree3/usr/etc'), { recursive: true });
  writeFileSync(join(dir, 'tree3/usr/etc/motd'), 'three\n');
  const c3 = ostree(out, 'commit', `--branch=${REF}`, `--parent=${c2}`, '--subject=three', `--tree=dir=${join(dir, 'tree3')}`);
  assert.match(ostree(out, 'log', REF), new RegExp(`commit ${c3}[\\s\\S]*commit ${c2}[\\s\\S]*commit ${c1}`));
  execFileSync('ostree', [`--repo=${out}`, 'fsck', '--quiet'], { stdio: 'pipe' });

  // A new commit on the server: another folder, another digest.
  const c4 = commit(served, join(dir, 'tree'), 'four\n');
  execFileSync('chmod', ['-R', 'a+rX', nginx.www]);
  const moved = await fetchOstreeParent({ url, ref: REF, parentsDir: join(dir, 'a') });
  assert.ok(moved.ok && moved.value.fetched);
  assert.deepEqual(moved.value.commits, [c4, c2, c1]);
  assert.notEqual(await digestPath(moved.value.dir), await digestPath(a.value.dir));

  // A history the server holds only in part ends where it ends; the tip missing is an error.
  rmSync(join(served, 'objects', c1.slice(0, 2), `${c1.slice(2)}.commit`));
  const partial = await fetchOstreeParent({ url, ref: REF, parentsDir: join(dir, 'c') });
  assert.ok(partial.ok);
  assert.deepEqual(partial.value.commits, [c4, c2]);
  rmSync(join(served, 'objects', c4.slice(0, 2), `${c4.slice(2)}.commit`));
  const noTip = await fetchOstreeParent({ url, ref: REF, parentsDir: join(dir, 'd') });
  assert.deepEqual(noTip, { ok: false, error: { message: `the repository has no commit object for ${REF}'s commit ${c4}`, url: `${url}/objects/${c4.slice(0, 2)}/${c4.slice(2)}.commit` } });

  // A commit object whose bytes are not its checksum's: refused.
  const obj = join(served, 'objects', c2.slice(0, 2), `${c2.slice(2)}.commit`);
  writeFileSync(join(served, 'refs/heads', REF), `${c2}\n`);
  writeFileSync(obj, Buffer.concat([readFileSync(obj), Buffer.from([0])]));
  chmodSync(obj, 0o644);
  const tampered = await fetchOstreeParent({ url, ref: REF, parentsDir: join(dir, 'e') });
  assert.ok(!tampered.ok && /sha256 is [0-9a-f]{64}, not the checksum/.test(tampered.error.message), JSON.stringify(tampered));

  // No such ref, no repository, no server: the URL that failed, and nothing written.
  const noRef = await fetchOstreeParent({ url, ref: 'debian/12/x86_64/stable', parentsDir: join(dir, 'f') });
  assert.deepEqual(noRef, { ok: false, error: { message: 'the repository has no ref debian/12/x86_64/stable', url: `${url}/refs/heads/debian/12/x86_64/stable` } });
  const noRepo = await fetchOstreeParent({ url: `http://127.0.0.1:${nginx.port}/nothing`, ref: REF, parentsDir: join(dir, 'f') });
  assert.ok(!noRepo.ok && /no ostree repository there/.test(noRepo.error.message));
  const port = await freePort();
  const down = await fetchOstreeParent({ url: `http://127.0.0.1:${port}/repo`, ref: REF, parentsDir: join(dir, 'f') });
  assert.ok(!down.ok && /^unreachable: .*ECONNREFUSED/.test(down.error.message), JSON.stringify(down));
  for (const d of ['d', 'e', 'f']) assert.ok(!existsSync(join(dir, d)) || readdirSync(join(dir, d)).length === 0, `${d}: nothing written`);
});
