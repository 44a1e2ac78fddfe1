#!/bin/bash
# mkosi, Debian's package (14-2 in bookworm), asked for the image examples/debian-12 makes: Debian
# 12 with the same packages, GPT with an ESP (100 MiB), a BIOS boot partition (1 MiB) and an ext4
# root, UEFI and BIOS boot, qcow2, the given hostname.
#
#   bench/mkosi.sh PROJECT_DIR WORK_DIR HOSTNAME [incremental]      (as root)
#
# `incremental` reuses the package-installed image cached by a previous run in WORK_DIR (mkosi's
# --incremental): what a hostname edit costs it. Uses the host's mkosi when installed, otherwise
# unpacks the mkosi and debootstrap packages (apt-get download) into WORK_DIR/pkg and runs them
# from there: installing mkosi's dependencies would upgrade the host's systemd (systemd-container).
# The mirror is the first one of the host's apt sources (MIRROR=URL to choose another).
# Exits non-zero with mkosi's own error as the last line of stderr when it cannot build.
set -euo pipefail
project=$(realpath "$1") work=$2 hostname=$3 mode=${4:-}
mkdir -p "$work"
work=$(realpath "$work")
mirror=${MIRROR:-$(awk '/^URIs:/ { print $2; exit } /^deb / { print $2; exit }' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2> /dev/null || true)}
packages=$(awk '/^  distro:/ { d = 1 } d && /^ +packages:$/ { p = 1; next } p && /^ +- [a-z0-9][a-z0-9.+-]*$/ { print $2; next } p { exit }' \
  "$project/distro/bookworm.yaml" | paste -sd, -)
if command -v mkosi > /dev/null; then
  mkosi=(mkosi)
else
  pkg=$work/pkg
  if [ ! -d "$pkg/root" ]; then
    mkdir -p "$pkg" && (cd "$pkg" && apt-get download mkosi debootstrap > download.log 2>&1) \
      || { echo "mkosi: apt-get download mkosi debootstrap failed" >&2; exit 1; }
    for d in "$pkg"/*.deb; do dpkg-deb -x "$d" "$pkg/root"; done
  fi
  export PYTHONPATH=$pkg/root/usr/lib/python3/dist-packages DEBOOTSTRAP_DIR=$pkg/root/usr/share/debootstrap PATH=$pkg/root/usr/sbin:$PATH
  mkosi=(python3 -m mkosi)
fi
cd "$work"
set +e
"${mkosi[@]}" --distribution debian --release bookworm --mirror "$mirror" --package "$packages" \
  --format gpt_ext4 --bootable --bios-size 1M --esp-size 100M --root-size 2900M --qcow2 \
  --kernel-command-line console=ttyS0,115200 --hostname "$hostname" \
  --cache "$work/packages" ${mode:+--incremental} --output "$work/image.qcow2" --force build > "$work/mkosi.log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  # mkosi's own message: the first error line that is not Python's traceback.
  grep -E "^(‣ Error|mount:|subprocess\.CalledProcessError|.*: command not found)" "$work/mkosi.log" | head -n 1 >&2 \
    || tail -n 1 "$work/mkosi.log" >&2
  exit $rc
fi
