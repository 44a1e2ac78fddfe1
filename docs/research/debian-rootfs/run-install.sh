#!/bin/sh
# usage: run-install.sh TREEDIR REPODIR OVERRIDE VARIANT PKG...  (host side: starts the sandbox)
set -eu
D=$1 R=$2 O=$3; shift 3
rm -rf --one-file-system "$D"; mkdir -p "$D"
# bwrap mounts /dev and /proc over these: create them first, with the clamped mtime, since
# nothing inside the sandbox can reach the directory under a mount point
mkdir "$D/dev" "$D/proc"; touch -d @0 "$D/dev" "$D/proc"
cp "$O" /tmp/proto-rootfs/.override.$$ 
exec node /tmp/proto-rootfs/sbx.mjs --chroot-mounts --env OVERRIDE=/run/imgmake/run/.override.$$ ${MMOPTS:+--env MMOPTS="$MMOPTS"} ${REPRO:+--env REPRO=1} \
  --robind /tmp/proto-rootfs:/run/imgmake/run --input debs="$R" --tree "$D" -- /run/imgmake/run/install-inner.sh "$@"
