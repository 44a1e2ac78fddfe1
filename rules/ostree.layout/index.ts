/**
 * ostree.layout: the tree preparation rpm-ostree does before a commit, for an apt-installed
 * tree. A deployment's /usr is read-only and shared by every deployment of its commit, /etc is
 * merged from /usr/etc at each deploy, and /var is one directory shared by all deployments and
 * never touched by ostree: so whatever the packages put in /var (dpkg's database, /var/lib
 * directories with their owners) must come back at boot from /usr, which tmpfiles.d does.
 *
 * It does not move the kernel (ostree.kernel) and does not commit (ostree.commit).
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  factory: string;
  tmpfiles: string;
}

/** The state directories an ostree system keeps in /var: image path → name under /var, mode when the tree has none. */
export const STATE_LINKS: [path: string, varName: string, target: string][] = [
  ['/home', 'home', 'var/home'],
  ['/root', 'roothome', 'var/roothome'],
  ['/opt', 'opt', 'var/opt'],
  ['/srv', 'srv', 'var/srv'],
  ['/mnt', 'mnt', 'var/mnt'],
  ['/usr/local', 'usrlocal', '../var/usrlocal'],
];

/**
 * From `find -printf '%P\t%y %m %U %G\t%l\n'` of /var (sorted: a directory before its entries) to tmpfiles.d lines; `known` holds
 * the paths other tmpfiles.d files declare (one per line, first), which are left to them.
 */
const TMPFILES_AWK = `
BEGIN { FS = "\\t" }
FNR == NR { known[$0] = 1; next }
{
  rel = $1; split($2, f, " "); type = f[1]; mode = f[2]; uid = f[3]; gid = f[4]; path = "/var/" rel
  while (length(mode) < 4) mode = "0" mode
  if (path ~ /[[:space:]\\\\%]/) { print "ostree.layout: " path ": whitespace, a backslash or % in a /var path cannot be written in tmpfiles.d" > "/dev/stderr"; bad = 1; next }
  if (path in known) next
  if (type == "d") printf "d %s %s %s %s -\\n", path, mode, uid, gid
  else if (type == "l") printf "L %s - - - - %s\\n", path, $3
  else if (type == "f") printf "C %s - - - - %s/%s\\n", path, factory, rel
  else { print "ostree.layout: " path ": a " (type == "p" ? "FIFO" : type == "s" ? "socket" : "device node") " in /var cannot be kept in a commit" > "/dev/stderr"; bad = 1 }
}
END { exit bad }
`;

const layout: RuleInvoke<Options> = (options, ctx) => {
  const factory = options.factory;
  return shell(ctx, [
    `[ -d ./usr ] && [ ! -L ./usr ] || die 'the tree has no /usr directory: ostree.layout acts on an installed OS tree'`,
    `[ ! -e ./usr/etc ] && [ ! -L ./usr/etc ] || die '/usr/etc exists already: the tree was prepared for ostree (ostree.layout runs once)'`,
    `[ -d ./etc ] && [ ! -L ./etc ] || die 'the tree has no /etc directory'`,
    `[ ! -e ./var ] || { [ -d ./var ] && [ ! -L ./var ]; } || die '/var is not a directory'`,
    `mkdir -p ./var`,
    // 1. State directories into /var, each replaced by a link; their own mode and owner kept.
    ...STATE_LINKS.flatMap(([path, name, target]) => [
      `p=.${path}; v=./var/${name}`,
      `if [ -d "$p" ] && [ ! -L "$p" ] && [ -d "$v" ] && [ ! -L "$v" ]; then`,
      // Both there (Debian's base-files makes /var/opt and /opt): the entries join /var's.
      `  for e in "$p"/* "$p"/.[!.]* "$p"/..?*; do`,
      `    [ -e "$e" ] || [ -L "$e" ] || continue`,
      `    [ ! -e "$v/\${e##*/}" ] && [ ! -L "$v/\${e##*/}" ] || die "${path}/\${e##*/} and /var/${name}/\${e##*/} both exist"`,
      `    mv "$e" "$v/"`,
      `  done`,
      `  rmdir "$p"`,
      `elif [ -d "$p" ] && [ ! -L "$p" ]; then`,
      `  [ ! -e "$v" ] && [ ! -L "$v" ] || die ${q(`/var/${name} exists and is not a directory; ${path} cannot move there`)}`,
      `  mv -T "$p" "$v"`,
      `elif [ -e "$p" ] || [ -L "$p" ]; then`,
      `  rm -f "$p"`,
      `  [ -d "$v" ] || mkdir -m ${name === 'roothome' ? '0700' : '0755'} "$v"`,
      `else`,
      `  [ -d "$v" ] || mkdir -m ${name === 'roothome' ? '0700' : '0755'} "$v"`,
      `fi`,
      `ln -s ${q(target)} "$p"`,
    ]),
    // 2. /etc is the commit's /usr/etc.
    `mv -T ./etc ./usr/etc`,
    // 3. /var: one tmpfiles.d line per entry, its contents kept in the factory.
    // Never empty (awk's FNR == NR would then read the listing as known paths).
    `{ echo '#'; cat ./usr/lib/tmpfiles.d/*.conf ./usr/etc/tmpfiles.d/*.conf 2>/dev/null | awk '$1 !~ /^#/ && NF >= 2 { print $2 }'; } > /tmp/known`,
    `(cd ./var && find . -mindepth 1 -printf '%P\\t%y %m %U %G\\t%l\\n') | LC_ALL=C sort > /tmp/var.list`,
    `: > /tmp/lines`,
    `awk -v factory=${q(factory)} '${TMPFILES_AWK.replaceAll("'", `'\\''`)}' /tmp/known /tmp/var.list > /tmp/lines || die 'ostree.layout: /var holds entries tmpfiles.d cannot recreate (above)'`,
    `out=$(parent_dir ${q(options.tmpfiles)})`,
    `{ echo '# Made by imgmake (ostree.layout): what the image held in /var, recreated at boot.'; echo ${q(`# Files are copied from ${factory}; entries already there are left as they are.`)}; cat /tmp/lines; } > "$out"`,
    `chmod 0644 "$out"`,
    `f=$(parent_dir ${q(factory)})`,
    `[ ! -e "$f" ] || die ${q(`${factory} exists already`)}`,
    `mv -T ./var "$f"`,
    `mkdir -m 0755 ./var`,
    // 4. Where ostree mounts the physical root, and its repository through it.
    `[ ! -e ./sysroot ] || [ -d ./sysroot ] || die '/sysroot exists and is not a directory'`,
    `mkdir -p -m 0755 ./sysroot`,
    `[ -z "$(ls -A ./sysroot)" ] || die '/sysroot is not empty'`,
    `[ ! -e ./ostree ] || [ -L ./ostree ] || die '/ostree exists and is not a symlink'`,
    `rm -f ./ostree`,
    `ln -s sysroot/ostree ./ostree`,
    `touch -h -d "@$SOURCE_DATE_EPOCH" . ./var ./sysroot ./ostree ./usr ./usr/share "$out" "$f" "$(dirname "$f")" ${STATE_LINKS.map(([p]) => q(`.${p}`)).join(' ')}`,
    `echo "ostree.layout: /etc in /usr/etc; $(wc -l < /tmp/lines) tmpfiles.d lines in ${options.tmpfiles}; /var's contents in ${factory}"`,
  ]);
};

export default layout;
