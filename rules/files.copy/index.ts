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
  const tarExtract = ['tar', '--numeric-owner', '--no-overwrite-dir', '-p', ...(fromProject ? [] : ['--xattrs', "--xattrs-include='*'"]), '-C "$d" -xf -'].join(' ');
  return [
    `src=${src}`,
    `[ -e "$src" ] || [ -L "$src" ] || die ${q(`items[${i}]: ${item.from}: no such file or directory in the input`)}`,
    `if [ -d "$src" ] && [ ! -L "$src" ]; then`,
    `  d=$(in_tree ${to} follow)`,
    `  [ -e "$d" ] || mkdir -p "$d"`,
    `  [ -d "$d" ] || die ${q(`${item.to}: exists and is not a directory (copying folder ${item.from})`)}`,
    `  ${tarCreate} | ${tarExtract}`,
    item.mode ? `  chmod ${item.mode} "$d"` : '',
    `else`,
    `  dst=$(parent_dir ${to})`,
    `  [ ! -d "$dst" ] || [ -L "$dst" ] || die ${q(`${item.to}: is a directory (copying file ${item.from}); name the file itself`)}`,
    `  tmp=$(dirname "$dst")/.imgmake-new.$$`,
    fromProject ? `  cp -P --preserve=mode "$src" "$tmp"; touch -h -d @"$SOURCE_DATE_EPOCH" "$tmp"` : `  cp -P --preserve=all "$src" "$tmp"`,
    owner ? `  chown -h ${owner} "$tmp"` : '',
    item.mode ? `  chmod ${item.mode} "$tmp"` : '',
    `  mv -f "$tmp" "$dst"`,
    `fi`,
    `: copied ${what}`,
  ]
    .filter(Boolean)
    .join('\n');
}

export default copy;
