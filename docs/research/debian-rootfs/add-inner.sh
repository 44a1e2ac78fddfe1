#!/bin/sh
# Runs INSIDE the sandbox (tree has /dev,/proc mounted by bwrap): install more packages into an
# existing tree (a second apt.install stage) with apt from the buildroot, dpkg chrooted (mmdebstrap's way).
set -eu
T=/run/imgmake/tree
mkdir -p /tmp/repo /tmp/apt/lists/partial /tmp/apt/archives/partial && ln -s /run/imgmake/inputs/debs /tmp/repo/pool
(cd /tmp/repo && apt-ftparchive packages pool ${OVERRIDE:+"$OVERRIDE"} > Packages)
echo 'deb [trusted=yes] copy:///tmp/repo ./' > /tmp/apt/sources.list
mkdir -p $T/var/cache/apt/archives/partial
cat > /tmp/apt/apt.conf <<CONF
Dir "$T/";
Dir::Etc::SourceList "/tmp/apt/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "/tmp/apt/lists/";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Dir::Bin::dpkg "env";
DPkg::Options { "--unset=TMPDIR"; "dpkg"; };
DPkg::Chroot-Directory "$T";
APT::Install-Recommends "false";
Acquire::Languages "none";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=/tmp/apt/apt.conf DEBIAN_FRONTEND=noninteractive
apt-get -q update
apt-get -q -y install "$@"
apt-get clean
rm -f $T/var/log/dpkg.log $T/var/log/apt/history.log $T/var/log/apt/term.log $T/var/log/alternatives.log $T/var/cache/ldconfig/aux-cache
