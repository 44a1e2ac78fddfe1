#!/usr/bin/env bash
# What one checkpoint of a tree costs, three ways, on the same tree and filesystem:
#   (a) cp -a        a full copy per checkpoint (osbuild, coreos-assembler)
#   (b) cp -al       a hardlink farm (cheap, but a stage writing in place changes the cache)
#   (c) overlay      the store's way: mount an overlay over the committed layer(s), write one
#                    small file, commit by renaming the upper dir into layers/ (src/store/local.ts)
# plus (c) with bubblewrap around the write (the real per-stage path) and (c) over 10 layers.
# Prints a table: wall time (median and fastest of --runs runs), CPU time (user + system, median;
# what the step costs whatever else the machine is doing), disk used by what the checkpoint adds.
# See docs/store.md for the figures and what they mean.
#
# Usage (as root: overlayfs is mounted in a private mount namespace, as the sandbox does):
#   bench/store-bench.sh                      a generated tree: 30,000 files, ~300 MB
#   bench/store-bench.sh --files 15000 --mb 660
#   bench/store-bench.sh --tree /usr/share    a copy of a real tree
#   options: --runs N (3)  --dir PARENT (/var/tmp; must be the filesystem a cache would be on)
# Everything lives in one temporary directory, removed on exit (also on Ctrl-C).
set -euo pipefail

files=30000
mb=300
tree=
runs=3
parent=${TMPDIR:-/var/tmp}
while (($#)); do
  case $1 in
    --files) files=$2; shift 2 ;;
    --mb) mb=$2; shift 2 ;;
    --tree) tree=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "store-bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if ((EUID != 0)); then echo "store-bench: run as root (overlayfs mounts, like the sandbox)" >&2; exit 2; fi
for cmd in unshare mount bwrap node du; do
  command -v "$cmd" >/dev/null || { echo "store-bench: $cmd is missing (scripts/setup.sh)" >&2; exit 2; }
done

work=$(mktemp -d "$parent/imgmake-store-bench.XXXXXX")
# No mount outlives its namespace, so removing the directory is the whole cleanup (bash runs the
# EXIT trap on Ctrl-C and on kill too).
trap 'rm -rf --one-file-system "$work"' EXIT
layers=$work/cache/layers
mkdir -p "$layers" "$work/cache/work" "$work/copies"

key() { head -c 32 /dev/urandom | sha256sum | cut -c1-64; }
bytes() { du -sB1 "$@" | tail -n 1 | cut -f1; }
human() { numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; }
# Each measurement starts on a quiet filesystem: the previous step's writeback and the discards
# of its removal (this disk is mounted with `discard`) would otherwise land in the next timing.
settle() { sync -f "$work"; }

# ---- the tree, committed as the store's first layer --------------------------------------------
base=$(key)
src=$layers/$base
if [[ -n $tree ]]; then
  echo "store-bench: copying $tree" >&2
  cp -a "$tree" "$src"
else
  echo "store-bench: generating $files files, ~$mb MB" >&2
  # Log-normal sizes (median ~1.5 KiB, a few MiB-sized files), scaled to the total; 20 files a
  # directory two levels deep; 3% symlinks; deterministic layout, random content.
  node - "$src" "$files" "$mb" <<'EOF'
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
const [root, nText, mbText] = process.argv.slice(2);
const n = Number(nText), total = Number(mbText) * 1024 * 1024;
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const gauss = () => Math.sqrt(-2 * Math.log(rnd() || 1e-9)) * Math.cos(2 * Math.PI * rnd());
const raw = Array.from({ length: n }, () => Math.min(64 * 2 ** 20, Math.exp(Math.log(1536) + 2 * gauss())));
const scale = total / raw.reduce((a, b) => a + b, 0);
const pool = crypto.randomBytes(8 * 2 ** 20);
fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
fs.writeFileSync(path.join(root, 'etc', 'hostname'), 'bench\n');
for (let i = 0; i < n; i++) {
  const dir = path.join(root, 'usr', `d${Math.floor(i / 400)}`, `s${Math.floor(i / 20) % 20}`);
  if (i % 20 === 0) fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, `f${i}`);
  if (i % 33 === 32) { fs.symlinkSync(`f${i - 1}`, p); continue; }
  let left = Math.max(1, Math.round(raw[i] * scale));
  const fd = fs.openSync(p, 'w');
  while (left > 0) { const k = Math.min(left, pool.length); const off = Math.floor(rnd() * (pool.length - k)); fs.writeSync(fd, pool, off, k); left -= k; }
  fs.closeSync(fd);
}
EOF
fi
sync -f "$src"
entries=$(find "$src" | wc -l)
size=$(bytes "$src")
mkdir -p "$src/etc"

OPTS=redirect_dir=off,metacopy=off,index=off,xino=off

# One checkpoint the store's way: a work dir, an overlay over `lowers` mounted in a private mount
# namespace, one small file written, the upper renamed into layers/. Sets `made` to its key.
overlay_checkpoint() {
  local lowers=$1 with_bwrap=$2 k w
  k=$(key)
  made=$k
  w=$work/cache/work/$$-$k
  mkdir -p "$w/upper" "$w/work" "$w/merged"
  local write="echo checkpoint > $w/merged/etc/motd"
  if [[ $with_bwrap == yes ]]; then
    write="bwrap --die-with-parent --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
      --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp --bind $w/merged /run/imgmake/tree \
      --chdir /run/imgmake/tree -- /bin/sh -c 'echo checkpoint > etc/motd'"
  fi
  unshare --mount --propagation private -- /bin/sh -c \
    "set -e; cd '$layers'; mount -t overlay imgmake -o 'lowerdir=$lowers,upperdir=$w/upper,workdir=$w/work,$OPTS' '$w/merged'; $write"
  mv -T "$w/upper" "$layers/$k"
  rm -rf "$w"
}

# Ten small layers over the base, as ten earlier stages would leave (for the deep-stack row).
deep=$base
for _ in $(seq 9); do
  k=$(key)
  mkdir -p "$layers/$k/etc"
  echo "$k" > "$layers/$k/etc/stage"
  deep="$k:$deep"
done

declare -A times cpu disk
# measure NAME CMD...: runs CMD in this shell, adds its wall and CPU milliseconds to NAME's lists.
measure() {
  local name=$1 TIMEFORMAT='@@ %3R %3U %3S' real user sys
  shift
  { time "$@" 2>&3; } 3>&2 2>"$work/time"
  read -r _ real user sys < <(grep '^@@' "$work/time")
  times[$name]+="$((10#${real/./})) "
  cpu[$name]+="$((10#${user/./} + 10#${sys/./})) "
}

for r in $(seq "$runs"); do
  echo "store-bench: run $r/$runs" >&2
  c=$work/copies/a$r
  settle; measure a cp -a "$src" "$c"
  disk[a]=$(bytes "$c")
  # What dropping that checkpoint later costs (GC): the removal, and the discards it triggers.
  measure a_rm eval 'rm -rf "$c"; sync -f "$work"'

  settle; measure a_sync eval 'cp -a "$src" "$c"; sync -f "$c"'
  disk[a_sync]=$(bytes "$c")
  rm -rf "$c"

  # du counts an inode once across its arguments: the second line is what the farm adds.
  settle; measure b cp -al "$src" "$c"
  disk[b]=$(du -sB1 "$src" "$c" | tail -n 1 | cut -f1)
  rm -rf "$c"

  settle; measure c overlay_checkpoint "$base" no
  disk[c]=$(bytes "$layers/$made")
  measure c_rm eval 'rm -rf "${layers:?}/$made"; sync -f "$work"'

  settle; measure c_bwrap overlay_checkpoint "$base" yes
  disk[c_bwrap]=$(bytes "$layers/$made")
  rm -rf "${layers:?}/$made"

  settle; measure c_deep overlay_checkpoint "$deep" yes
  disk[c_deep]=$(bytes "$layers/$made")
  rm -rf "${layers:?}/$made"
done

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fastest() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | head -n 1; }

echo
echo "tree: $entries entries, $(human "$size") on disk ($(df --output=fstype "$work" | tail -n 1 | tr -d ' '), $(uname -r), $(nproc) cores); $runs runs; $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-48s %10s %10s %10s %12s\n' 'one checkpoint of the tree' 'median ms' 'best ms' 'CPU ms' 'disk added'
row() {
  local d=-
  [[ $2 == *_rm ]] || d=$(human "${disk[$2]}")
  printf '%-48s %10s %10s %10s %12s\n' "$1" "$(median "${times[$2]}")" "$(fastest "${times[$2]}")" "$(median "${cpu[$2]}")" "$d"
}
row '(a) cp -a' a
row '(a) cp -a, then sync -f (data on disk)' a_sync
row '(a) removing that copy again (rm -rf, sync -f)' a_rm
row '(b) cp -al (hardlink farm)' b
row '(c) overlay: mount, write 1 file, rename' c
row '(c) removing that layer again (rm -rf, sync -f)' c_rm
row '(c) same, the write in bubblewrap' c_bwrap
row '(c) same, bubblewrap, over 10 layers' c_deep
