#!/bin/sh
# Runs INSIDE the sandbox, no network, no CAP_SYS_ADMIN. Builds a root filesystem in
# /run/imgmake/tree from ONLY the .debs in /run/imgmake/inputs/debs.
# usage: install-inner.sh VARIANT PKG...   (extra mmdebstrap options via $MMOPTS)
set -eu
VARIANT=$1; shift
T=/run/imgmake/tree
t0=$(date +%s.%N)
mkdir -p /tmp/repo && ln -s /run/imgmake/inputs/debs /tmp/repo/pool
# the mirror's Priority/Section from the lock (an apt-ftparchive override file: PACKAGE PRIORITY SECTION)
(cd /tmp/repo && apt-ftparchive packages pool ${OVERRIDE:+"$OVERRIDE"} > Packages)
t1=$(date +%s.%N)
echo "index: $(echo "$t1 - $t0" | bc) s, $(grep -c '^Package:' /tmp/repo/Packages) packages"
INCLUDE=$(echo "$@" | tr ' ' ,)
mmdebstrap --mode=root --variant="$VARIANT" ${INCLUDE:+--include="$INCLUDE"} \
  --skip=chroot/mount --skip=check/qemu --skip=check/empty \
  --aptopt='Acquire::Languages "none"' \
  --setup-hook='for l in fd stdin stdout stderr; do if [ -L "$1/dev/$l" ]; then rm "$1/dev/$l"; fi; done' \
  ${MMOPTS:-} \
  "" "$T" "deb [trusted=yes] copy:///tmp/repo ./"
t2=$(date +%s.%N)
echo "mmdebstrap: $(echo "$t2 - $t1" | bc) s"
if [ -n "${REPRO:-}" ]; then
  # per-machine secrets that openssh-server's postinst generates: the image must make its own at first boot
  rm -f "$T"/etc/ssh/ssh_host_*_key "$T"/etc/ssh/ssh_host_*_key.pub
  # clamp every mtime newer than SOURCE_DATE_EPOCH (files and dirs written by maintainer scripts,
  # dpkg's database, mmdebstrap's cleanup). -xdev: do not walk into the /dev and /proc mounts.
  find "$T" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
  t3=$(date +%s.%N); echo "repro fixups: $(echo "$t3 - $t2" | bc) s"
fi
