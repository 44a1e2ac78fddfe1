#!/usr/bin/env bash
# Installs what imgmake needs on a Debian 12 machine: the Debian packages it runs (bubblewrap
# for the sandbox, util-linux's unshare and mount for overlayfs, GNU tar and friends) and the
# npm packages (npm ci also compiles the TypeScript). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(bubblewrap util-linux mount tar gzip zstd coreutils findutils attr libcap2-bin debian-archive-keyring qemu-utils qemu-system-x86 ovmf
  fdisk e2fsprogs dosfstools mtools grub-efi-amd64-bin grub-pc-bin file
  mmdebstrap apt-utils nginx docker-registry openssl
  rpm createrepo-c gnupg busybox-static
  locales ca-certificates xkb-data python3
  squashfs-tools xorriso
  xz-utils skopeo umoci podman ostree) # disk.*, grub.*; apt.install; nginx and a registry for the fetch and remote tests; the RPM test world (rpmbuild, rpmsign, createrepo_c, a static busybox); the host root that system.locale-gen, system.ca-certificates and system.keyboard tests chroot into; python3 (crypt) checks the password hashes; archive.squashfs and disk.iso's tests; image types: raw.xz, the oci type's tests (skopeo inspect, umoci unpack, podman run where it can); the ostree.* rule tests and the ostree tests read repositories with it (never dracut or ostree-boot on the host: dracut replaces initramfs-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build
fi
