import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  repos: unknown[];
  packages: string[];
  arch: string;
  releasever: string;
  dbpath: string;
}

/**
 * rpm itself, not dnf: the input is exactly the locked set, so there is nothing left to
 * resolve, and rpm orders the transaction (Requires(pre) first) and runs the scriptlets
 * chrooted in the tree. dnf --installroot would resolve again and leave its history database,
 * cache and logs in the tree. The signatures were checked when the files were verified
 * (src/packages/rpm/verify.ts), against keys this stage never sees: hence --nosignature.
 */
const install: RuleInvoke<Options> = (options, ctx) => {
  const rpms = ctx.inputs['rpms'];
  if (!rpms) throw new Error('rpm.install needs the `rpms` input, which imgmake binds from imgmake.lock');
  const db = q(options.dbpath);
  return {
    ...shell(ctx, [
      'export HOME=/tmp',
      `set -- ${q(rpms.path)}/*.rpm`,
      '[ -e "$1" ] || die "rpm.install: the rpms input holds no .rpm file"',
      // What must be installed afterwards: every locked file's NEVRA.
      `rpm --dbpath /tmp/rpmdb-none --nosignature -qp --qf '%{NEVRA}\\n' "$@" | sort > /tmp/want`,
      `mkdir -p .${db}`,
      // Debian's rpm warns that alien exists: true, and beside the point in a buildroot.
      'rc=0',
      `rpm --root ${q(ctx.tree)} --dbpath ${db} --nosignature -i "$@" > /tmp/rpm.log 2>&1 || rc=$?`,
      "grep -v -e '^rpm: RPM should not be used' -e '^rpm: However assuming' /tmp/rpm.log >&2 || true",
      '[ "$rc" = 0 ] || die "rpm.install: rpm failed (exit $rc): a package or one of its scriptlets, see above"',
      `rpm --root ${q(ctx.tree)} --dbpath ${db} -qa --qf '%{NEVRA}\\n' | sort > /tmp/have`,
      'missing=$(comm -23 /tmp/want /tmp/have)',
      '[ -z "$missing" ] || die "rpm.install: not installed (see the rpm errors above):" $missing',
      // rpm's sqlite database ends with its write-ahead log checkpointed and truncated; the
      // empty log and the shared-memory index (bytes that differ run to run) are dropped:
      // sqlite makes both again on the next open.
      `if [ -f .${db}/rpmdb.sqlite-wal ] && [ ! -s .${db}/rpmdb.sqlite-wal ]; then rm -f .${db}/rpmdb.sqlite-wal .${db}/rpmdb.sqlite-shm; fi`,
      // Everything written now (scriptlets, the database) gets SOURCE_DATE_EPOCH.
      'find . -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +',
      'touch --no-dereference --date="@$SOURCE_DATE_EPOCH" .',
    ]),
    apiFilesystems: true,
  };
};

export default install;
