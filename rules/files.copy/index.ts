import type { RuleContext, RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Item {
  from: string;
  to: string;
  mode?: string;
  owner?: string;
}

interface Options {
  items: Item[];
}

const copy: RuleInvoke<Options> = (options, ctx) => shell(ctx, options.items.map((item, i) => copyItem(item, i, ctx)));

function copyItem(item: Item, i: number, ctx: RuleContext): string {
  const slash = item.from.indexOf('/');
  const name = slash < 0 ? item.from : item.from.slice(0, slash);
  const sub = slash < 0 ? '' : item.from.slice(slash).replace(/\/+$/, '');
  const input = ctx.inputs[name];
  if (!input) {
    const known = Object.keys(ctx.inputs);
    throw new Error(
      `items[${i}].from "${item.from}" names no input of this stage; ` +
        (known.length ? `its inputs are: ${known.join(', ')}` : 'it has no inputs: declare one under `inputs:`'),
    );
  }
  const fromProject = input.kind !== 'tree';
  const owner = item.owner ?? (fromProject ? '0:0' : undefined);
  const [uid, gid] = owner?.split(':') ?? [];
  const src = q(`${input.path}${sub}`);
  const to = q(item.to);
  const what = q(item.from);
  // A folder: a tar pipe merges it, keeps hardlinks, and can rewrite owners and times on the way.
  const tarCreate = [
    'tar',
    '--numeric-owner',
    ...(owner ? [`--owner=${uid}`, `--group=${gid}`] : []),
    ...(fromProject ? ['--mtime=@"$SOURCE_DATE_EPOCH"'] : ['--xattrs', "--xattrs-include='*'"]),
    '-C "$src" -cf - .',
  ].join(' ');
  // --keep-directory-symlink: a folder meeting the tree's `lib -> usr/lib` goes through the link
  // (as in_tree would resolve it) instead of replacing it with a directory.
  const tarExtract = ['tar', '--numeric-owner', '--no-overwrite-dir', '--keep-directory-symlink', '-p', ...(fromProject ? [] : ['--xattrs', "--xattrs-include='*'"]), '-C "$d" -xf -'].join(' ');
  return [
    `src=${src}`,
    `[ -e "$src" ] || [ -L "$src" ] || die ${q(`items[${i}]: ${item.from}: no such file or directory in the input`)}`,
    `if [ -d "$src" ] && [ ! -L "$src" ]; then`,
    `  d=$(in_tree ${to} follow)`,
    `  [ -e "$d" ] || mkdir -p "$d"`,
    `  [ -d "$d" ] || die ${q(`${item.to}: exists and is not a directory (copying folder ${item.from})`)}`,
    // tar follows a directory link through the sandbox's `/`, not the tree's: refuse an absolute one.
    `  (cd "$src" && find . -mindepth 1 -type d) | while IFS= read -r rel; do`,
    `    l="$d/\${rel#./}"; [ -L "$l" ] || continue`,
    `    case $(readlink "$l") in /*) die ${q(item.to.replace(/\/+$/, ''))}"/\${rel#./}: the tree has a link to $(readlink "$l") there, an absolute path a folder copy cannot follow (copying folder "${what}"); copy to the link's target instead" ;; esac`,
    `  done`,
    // dash has no pipefail: the reading side records its own failure.
    `  { ${tarCreate} || echo failed > /tmp/copy-failed; } | ${tarExtract}`,
    `  [ ! -e /tmp/copy-failed ] || die ${q(`items[${i}]: reading ${item.from} failed`)}`,
    item.mode ? `  chmod ${item.mode} "$d"` : '',
    `else`,
    `  dst=$(parent_dir ${to})`,
    `  [ ! -d "$dst" ] || [ -L "$dst" ] || die ${q(`${item.to}: is a directory (copying file ${item.from}); name the file itself`)}`,
    `  tmp=$(dirname "$dst")/.imgmake-new.$$`,
    fromProject ? `  cp -P --preserve=mode "$src" "$tmp"; touch -h -d @"$SOURCE_DATE_EPOCH" "$tmp"` : `  cp -P --preserve=all "$src" "$tmp"`,
    owner ? `  chown -h ${owner} "$tmp"` : '',
    item.mode ? `  chmod ${item.mode} "$tmp"` : '',
    `  mv -f -T "$tmp" "$dst"`, // -T: a link to a directory is replaced, not moved into
    `fi`,
    `: copied ${what}`,
  ]
    .filter(Boolean)
    .join('\n');
}

export default copy;
