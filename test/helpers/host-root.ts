/**
 * A Debian root to chroot into, made from this host's own installation in a fraction of a
 * second: the host's /usr under an overlay (the host's files are the read-only lower layer, a
 * temp upper dir takes every write), a few non-secret files of /etc copied, and the merged-/usr
 * links. For rule tests of rules that run the tree's own tools chrooted (system.locale-gen runs
 * locale-gen, system.ca-certificates update-ca-certificates), where a tree from the Debian
 * package stage would take minutes. The host is Debian 12 (scripts/setup.sh installs locales,
 * ca-certificates and openssl, which these tests need).
 *
 * Nothing of /etc that could hold a secret is copied: no shadow, ssh host keys or private keys;
 * nor /etc/ca-certificates/update.d (the host's hooks, such as Java's keystore, are not the image's).
 * Not for concurrent use of one tree; `cleanup` unmounts before it removes anything.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './sandbox-fixtures.js';

const ETC = ['ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'passwd', 'group', 'nsswitch.conf', 'ca-certificates.conf', 'ssl/certs', 'ssl/openssl.cnf', 'locale.alias'];

export function hostRoot(): { tree: string; cleanup: () => void } {
  const t = tempDir('imgmake-host-root-');
  const tree = join(t.dir, 'tree');
  const upper = join(t.dir, 'upper');
  const work = join(t.dir, 'work');
  for (const d of [tree, upper, work, join(tree, 'usr'), join(tree, 'var/lib'), join(tree, 'tmp'), join(tree, 'etc/ssl')]) mkdirSync(d, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/usr,upperdir=${upper},workdir=${work}`, join(tree, 'usr')]);
  for (const name of ETC) {
    if (existsSync(`/etc/${name}`)) cpSync(`/etc/${name}`, join(tree, 'etc', name), { recursive: true, verbatimSymlinks: true });
  }
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(tree, d));
  return {
    tree,
    cleanup: () => {
      execFileSync('umount', [join(tree, 'usr')]);
      t.cleanup();
    },
  };
}
