/**
 * ostree.deploy through the real sandbox and the host's ostree: a commit made by ostree.commit
 * (from a small prepared tree) deployed into an empty tree; `ostree admin status` on the result
 * lists one deployment of that commit, the syslinux config GRUB reads names its kernel with the
 * kernel arguments (kargs, then kargs_append split at spaces) and ostree=, and /etc is merged
 * from /usr/etc.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 60_000 };

/** A tree as ostree.layout and ostree.kernel leave it, with an os-release (ostree names entries from it). */
function preparedTree(tree: string, motd = 'one\n'): void {
  for (const d of ['usr/etc', 'usr/bin', 'usr/lib/modules/6.1.0-9-amd64', 'var', 'sysroot', 'boot', 'tmp', 'proc', 'sys', 'dev', 'run']) mkdirSync(join(tree, d), { recursive: true });
  writeFileSync(join(tree, 'usr/etc/motd'), motd);
  writeFileSync(join(tree, 'usr/lib/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
  symlinkSync('../usr/lib/os-release', join(tree, 'usr/etc/os-release'));
  writeFileSync(join(tree, 'usr/lib/modules/6.1.0-9-amd64/vmlinuz'), 'kernel\n');
  writeFileSync(join(tree, 'usr/lib/modules/6.1.0-9-amd64/initramfs.img'), 'initrd\n');
  symlinkSync('sysroot/ostree', join(tree, 'ostree'));
}

test('a commit deployed into an empty tree: one deployment, /etc from /usr/etc, a syslinux entry with the kernel arguments', T, async () => {
  const scratch = tempDir('imgmake-ostree-deploy-');
  try {
    const t = join(scratch.dir, 'tree');
    preparedTree(t);
    let commit = '';
    await withRule('ostree.commit', { subject: 'one' }, { inputs: { tree: { kind: 'tree', path: t } } }, (r) => {
      assertOk(r);
      commit = JSON.parse(readFileSync(join(r.tree, 'ostree-commit.json'), 'utf8')).commit;
      mkdirSync(join(scratch.dir, 'commit'));
      copyFileSync(join(r.tree, 'ostree-repo.tar'), join(scratch.dir, 'commit/ostree-repo.tar'));
    });
    const kargs = ['root=UUID=0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d', 'rw', 'console=ttyS0,115200'];
    await withRule('ostree.deploy', { kargs, kargs_append: ' quiet  loglevel=3' }, { inputs: { commit: { kind: 'tree', path: join(scratch.dir, 'commit') } } }, (r) => {
      assertOk(r);
      const status = execFileSync('ostree', ['admin', 'status', `--sysroot=${r.tree}`], { encoding: 'utf8' });
      assert.equal(status.match(/^[* ] debian [0-9a-f]{64}\.\d+/gm)?.length, 1, status);
      assert.match(status, new RegExp(`debian ${commit}\\.0`));
      assert.match(status, /origin refspec: debian\/12\/x86_64\/edge/);
      const deployment = join(r.tree, `ostree/deploy/debian/deploy/${commit}.0`);
      assert.equal(readFileSync(join(deployment, 'etc/motd'), 'utf8'), 'one\n', '/etc merged from /usr/etc');
      assert.equal(readFileSync(join(deployment, 'usr/lib/modules/6.1.0-9-amd64/vmlinuz'), 'utf8'), 'kernel\n');
      const cfg = readFileSync(join(r.tree, 'boot/syslinux/syslinux.cfg'), 'utf8');
      assert.match(cfg, /^DEFAULT Debian GNU\/Linux 12 \(bookworm\) \(ostree:0\)$/m);
      assert.match(cfg, /^\tKERNEL \/boot\/ostree\/debian-[0-9a-f]{64}\/vmlinuz-6\.1\.0-9-amd64$/m);
      assert.match(cfg, /^\tAPPEND root=UUID=0f6a9c4e-5b1d-4e2a-8c3f-7d9e0a1b2c3d rw console=ttyS0,115200 quiet loglevel=3 ostree=\/ostree\/boot\.1\/debian\/[0-9a-f]{64}\/0$/m);
      const kernel = /KERNEL \/boot\/(\S+)/.exec(cfg)![1]!;
      assert.equal(readFileSync(join(r.tree, 'boot', kernel), 'utf8'), 'kernel\n');
      assert.equal(readlinkSync(join(r.tree, 'boot/loader')), 'loader.1');
      assert.ok(existsSync(join(r.tree, 'ostree/deploy/debian/var')));
      assert.doesNotMatch(execFileSync('lsattr', ['-d', deployment], { encoding: 'utf8' }).split(' ')[0]!, /i/, 'no immutable flag in a cached tree');
    });
    await withRule('ostree.deploy', { kargs, ref: 'other/ref' }, { inputs: { commit: { kind: 'tree', path: join(scratch.dir, 'commit') } } }, (r) =>
      assertFails(r, 'the repository has no ref other/ref', 'debian/12/x86_64/edge'),
    );
    await withRule('ostree.deploy', { kargs }, { inputs: { commit: { kind: 'tree', path: t } } }, (r) => assertFails(r, 'the commit input holds no ostree repository'));
  } finally {
    scratch.cleanup();
  }
  assert.notDeepEqual(await schemaErrors('ostree.deploy', {}), [], 'kargs are required');
  assert.notDeepEqual(await schemaErrors('ostree.deploy', { kargs: ['a b'] }), []);
  assert.notDeepEqual(await schemaErrors('ostree.deploy', { kargs: [], kargs_append: 'a "b"' }), []);
  assert.notDeepEqual(await schemaErrors('ostree.deploy', { kargs: [], os: 'Debian' }), []);
});
