/**
 * ostree.commit: the image as an ostree commit, the output of the `ostree-commit` image type and
 * the input of an ostree disk. An archive-mode repository (what an HTTP server serves, and what
 * `ostree pull-local` reads) is made fresh in the stage and packed as one tarball: a tree in the
 * cache holds one file, not ten thousand objects.
 *
 * Reproducible by construction: `--timestamp` is SOURCE_DATE_EPOCH, the metadata is the options
 * and the tree input's cache key, and ostree's content checksums ignore mtimes; so two cold
 * builds of one definition give one commit checksum. The parent, when given, is part of the
 * commit (and its input part of the key). A parent tarball is the new repository as it is; a
 * parent folder gives REF's history as commit objects (`--commit-metadata-only --depth=-1`) and
 * the parent commit's content unless the folder marks it partial (metadata only: what
 * `--ostree-parent URL` fetches, src/catalog/ostree-remote.ts).
 *
 * It does not prepare the tree (ostree.layout, ostree.kernel) or deploy it (ostree.deploy).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  ref: string;
  subject: string;
  body: string;
  version: string;
  metadata: Record<string, string>;
  filename: string;
}

/** The environment variable imgmake sets to a pipeline input's cache key (src/sandbox/stage.ts). */
export const INPUT_KEY_ENV = 'INPUT_KEY_tree';

const commit: RuleInvoke<Options> = (options, ctx) => {
  const tree = ctx.inputs['tree'];
  if (!tree) throw new Error('ostree.commit needs its `tree` input: the ostree-ready tree to commit');
  const parent = ctx.inputs['parent'];
  const ref = q(options.ref);
  const meta = [
    ...(options.version ? [['version', options.version]] : []),
    ...Object.entries(options.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ].map(([k, v]) => `--add-metadata-string=${q(`${k}=${v}`)}`);
  return shell(ctx, [
    `in=${q(tree.path)}`,
    `command -v ostree > /dev/null || die 'the buildroot has no ostree: install the ostree package in it'`,
    `[ -d "$in/usr/etc" ] || die 'the tree input has no /usr/etc: prepare it with ostree.layout first'`,
    `[ ! -e "$in/etc" ] || die 'the tree input has /etc as well as /usr/etc, which ostree refuses to deploy: prepare it with ostree.layout'`,
    `ls "$in"/usr/lib/modules/*/vmlinuz > /dev/null 2>&1 || die 'the tree input has no /usr/lib/modules/VERSION/vmlinuz: move the kernel with ostree.kernel first'`,
    `[ ! -e ./${options.filename} ] || die ${q(`${options.filename} exists already in the tree`)}`,
    `repo=./.ostree-repo`,
    `rm -rf "$repo"`,
    `parent=none`,
    ...(parent
      ? [
          `p=${q(parent.path)}`,
          `if [ -d "$p" ] && [ -f "$p/${options.filename}" ]; then p="$p/${options.filename}"; fi`,
          `if [ -d "$p" ]; then`,
          `  [ -f "$p/config" ] && [ -d "$p/objects" ] || die "the parent input is a folder but no ostree repository (no config and objects) and holds no ${options.filename}"`,
          `  ostree init --repo="$repo" --mode=archive`,
          // The history's commit objects, then the parent's content when the folder has it (a
          // parent fetched over HTTP, or whose own parents were, holds commits marked partial).
          `  ostree pull-local --repo="$repo" --commit-metadata-only --depth=-1 "$p" ${ref} > /tmp/pull.log 2>&1 || { cat /tmp/pull.log >&2; die ${q(`the parent repository has no ref ${options.ref} (or pulling it failed, above)`)}; }`,
          `  tip=$(ostree rev-parse --repo="$p" ${ref})`,
          `  if [ ! -e "$p/state/$tip.commitpartial" ]; then`,
          `    ostree pull-local --repo="$repo" "$p" ${ref} > /tmp/pull.log 2>&1 || { cat /tmp/pull.log >&2; die ${q(`pulling the parent's content from the parent repository failed (above)`)}; }`,
          `  fi`,
          `else`,
          `  mkdir "$repo"`,
          `  tar -xf "$p" -C "$repo" 2> /tmp/tar.log || { cat /tmp/tar.log >&2; die 'the parent input is not a tarball of an ostree repository'; }`,
          `  [ -f "$repo/config" ] || die 'the parent tarball holds no ostree repository (no config at its top)'`,
          `fi`,
          `parent=$(ostree rev-parse --repo="$repo" ${ref} 2>/dev/null) || die ${q(`the parent repository has no ref ${options.ref}; its refs: `)}"$(ostree refs --repo="$repo" | tr '\\n' ' ')"`,
        ]
      : [`ostree init --repo="$repo" --mode=archive`]),
    `set -- ${meta.join(' ')}`,
    `[ -z "\${${INPUT_KEY_ENV}:-}" ] || set -- "$@" "--add-metadata-string=imgmake.key=$${INPUT_KEY_ENV}"`,
    `id=$(ostree commit --repo="$repo" --branch=${ref} --parent="$parent" --subject=${q(options.subject)} --body=${q(options.body)} \\`,
    `  --timestamp="@$SOURCE_DATE_EPOCH" --bootable --fsync=false "$@" --tree=dir="$in" 2> /tmp/commit.log) || { cat /tmp/commit.log >&2; die 'ostree commit failed'; }`,
    `ostree fsck --repo="$repo" --quiet > /tmp/fsck.log 2>&1 || { cat /tmp/fsck.log >&2; die 'ostree fsck of the new repository failed'; }`,
    `rm -rf "$repo/tmp"/* "$repo/tmp/cache"`,
    `tar -C "$repo" --sort=name --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" -cf ./${options.filename} .`,
    `rm -rf "$repo"`,
    `json() { printf '%s' "$1" | sed -e 's/\\\\/\\\\\\\\/g' -e 's/"/\\\\"/g'; }`,
    `[ "$parent" = none ] && pj=null || pj="\\"$parent\\""`,
    `printf '{"ref":"%s","commit":"%s","parent":%s,"subject":"%s","version":"%s","timestamp":%s}\\n' ${ref} "$id" "$pj" "$(json ${q(options.subject)})" ${q(options.version)} "$SOURCE_DATE_EPOCH" > ./ostree-commit.json`,
    `touch -d "@$SOURCE_DATE_EPOCH" ./${options.filename} ./ostree-commit.json`,
    `chmod 0644 ./${options.filename} ./ostree-commit.json`,
    `echo ${q(`ostree.commit: ${options.ref} `)}"= $id (parent $parent), ${options.filename} $(wc -c < ./${options.filename}) bytes"`,
  ]);
};

export default commit;
