/**
 * ostree.deploy: the physical root of an ostree disk, made in a tree. `ostree admin` runs with
 * `--sysroot=.` on the stage's tree; nothing is booted, mounted or probed on the host.
 *
 * Boot entries go through ostree's syslinux backend because it is the one of ostree 2022.7 that
 * writes a file GRUB can read as it is (GRUB's `syslinux_configfile`): the BLS entries need
 * blscfg, which Debian's GRUB lacks, and the grub2 backend runs grub-mkconfig in the image.
 *
 * It does not write the disk (disk.ext4 does, from this tree) or GRUB (grub.efi, grub.bios).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  os: string;
  ref: string;
  kargs: string[];
  /** More, space-separated (a blueprint's kernel.append). */
  kargs_append: string;
  filename: string;
}

const deploy: RuleInvoke<Options> = (options, ctx) => {
  const input = ctx.inputs['commit'];
  if (!input) throw new Error('ostree.deploy needs its `commit` input: the repository to deploy from');
  const ref = q(options.ref);
  const os = q(options.os);
  return shell(ctx, [
    `command -v ostree > /dev/null || die 'the buildroot has no ostree: install the ostree package in it'`,
    `[ -z "$(ls -A . | grep -v -x -e dev -e proc)" ] || die 'ostree.deploy makes a physical root: it must be the first stage of a pipeline without base:'`,
    `src=${q(input.path)}`,
    `if [ -d "$src" ] && [ -f "$src/${options.filename}" ]; then src="$src/${options.filename}"; fi`,
    `if [ -f "$src" ]; then`,
    `  mkdir /tmp/src && tar -xf "$src" -C /tmp/src 2> /tmp/tar.log || { cat /tmp/tar.log >&2; die 'the commit input is not a tarball of an ostree repository'; }`,
    `  src=/tmp/src`,
    `fi`,
    `[ -f "$src/config" ] || die ${q(`the commit input holds no ostree repository (neither ${options.filename} nor a repository folder)`)}`,
    `ostree admin init-fs --modern . > /dev/null`,
    `ostree admin os-init --sysroot=. ${os} > /dev/null`,
    `ostree config --repo=ostree/repo set sysroot.bootloader syslinux`,
    // The syslinux backend rewrites the file the link names, which must exist before the first deploy.
    `mkdir -p boot/syslinux boot/loader.0`,
    `: > boot/loader.0/syslinux.cfg`,
    `ln -s loader.0 boot/loader`,
    `ln -s ../loader/syslinux.cfg boot/syslinux/syslinux.cfg`,
    // REF's history as commit objects (a parent may be metadata only: --ostree-parent URL), then
    // the commit's content: what the device deploys, and `ostree log` on it shows.
    `ostree pull-local --repo=ostree/repo --commit-metadata-only --depth=-1 "$src" ${ref} > /tmp/pull.log 2>&1 || { cat /tmp/pull.log >&2; die ${q(`the repository has no ref ${options.ref}`)}"; its refs: $(ostree refs --repo="$src" | tr '\\n' ' ')"; }`,
    `ostree pull-local --repo=ostree/repo "$src" ${ref} > /tmp/pull.log 2>&1 || { cat /tmp/pull.log >&2; die ${q(`pulling ${options.ref}'s content failed (above)`)}; }`,
    `ostree admin deploy --sysroot=. --os=${os} ${[...options.kargs, ...options.kargs_append.split(' ').filter((k) => k !== '')].map((k) => `--karg=${q(k)}`).join(' ')} ${ref} > /tmp/deploy.log 2>&1 || { cat /tmp/deploy.log >&2; die 'ostree admin deploy failed'; }`,
    `for d in ostree/deploy/*/deploy/*.0; do chattr -i "$d" 2>/dev/null || true; done`,
    `if lsattr -d ostree/deploy/*/deploy/*.0 2>/dev/null | grep -q '^[^ ]*i'; then die 'a deployment kept its immutable flag, which would make the cached tree undeletable'; fi`,
    `ostree admin status --sysroot=. > /tmp/status 2>&1 || { cat /tmp/status >&2; die 'ostree admin status cannot read the new sysroot'; }`,
    `cat /tmp/status`,
    `grep -q 'ostree=/ostree/boot' boot/syslinux/syslinux.cfg || die 'ostree wrote no boot entry in /boot/syslinux/syslinux.cfg'`,
    `find . -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +`,
  ]);
};

export default deploy;
