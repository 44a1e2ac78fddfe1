#!/bin/sh
# Runs INSIDE the sandbox (network on). Resolves a package set against the mirror with a private
# apt state under $W and writes $W/lock.tsv: name version arch url size sha256.
# usage: lock-inner.sh SUITE VARIANT PKG...
set -eu
W=/run/imgmake/tree
SUITE=$1 VARIANT=$2; shift 2
mkdir -p $W/etc/apt.conf.d $W/etc/preferences.d $W/etc/trusted.gpg.d $W/state/lists/partial $W/cache/archives/partial $W/log
: > $W/state/status
cat > $W/etc/sources.list <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR_BASE}/debian $SUITE main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR_BASE}/debian $SUITE-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR_BASE}/debian-security $SUITE-security main
SRC
cat > $W/apt.conf <<CONF
Dir::Etc "$W/etc/";
Dir::Etc::SourceList "$W/etc/sources.list";
Dir::Etc::SourceParts "$W/etc/sources.list.d/";
Dir::Etc::Parts "$W/etc/apt.conf.d/";
Dir::Etc::Preferences "$W/etc/preferences";
Dir::Etc::PreferencesParts "$W/etc/preferences.d/";
Dir::Etc::Trusted "$W/etc/trusted.gpg";
Dir::Etc::TrustedParts "$W/etc/trusted.gpg.d/";
Dir::State "$W/state/";
Dir::State::status "$W/state/status";
Dir::Cache "$W/cache/";
Dir::Log "$W/log/";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Get::Show-Versions "true";
// apt treats itself as Essential (pkgCacheGen::ForceEssential defaults to "apt"); mmdebstrap reads
// the Essential: yes field instead, so the essential variant must not pull apt in.
pkgCacheGen::ForceEssential ",";
CONF
export APT_CONFIG=$W/apt.conf
t0=$(date +%s.%N)
apt-get -q update
t1=$(date +%s.%N)
N="?or(?archive(^$SUITE\$),?codename(^$SUITE\$)),?architecture(amd64)"
case $VARIANT in
  essential) SEL="?narrow($N,?essential)" APT=;;
  required)  SEL="?narrow($N,?or(?essential,?priority(required)))" APT=apt;;
  important) SEL="?narrow($N,?or(?essential,?priority(required),?priority(important)))" APT=apt;;
  *) echo "unknown variant $VARIANT" >&2; exit 2;;
esac
# the solver, from an empty dpkg status: what mmdebstrap would install (essential + priority set + includes)
apt-get -qq -s install "$SEL" $APT "$@" > $W/simulate.txt
apt-get -qq --print-uris -o Acquire::ForceHash=SHA256 install "$SEL" $APT "$@" > $W/uris.txt
t2=$(date +%s.%N)
# Inst NAME (VERSION SUITE [ARCH]) -> name version arch
sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*/\1 \2 \3/p' $W/simulate.txt | sort > $W/inst.txt
# 'URL' FILE SIZE SHA256:HEX
sed -n "s/^'\([^']*\)' \([^ ]*\) \([0-9]*\) SHA256:\([0-9a-f]*\)$/\2 \1 \3 \4/p" $W/uris.txt | sort > $W/uris.sorted
# the mirror's Priority/Section (archive overrides: they differ from the .deb's control for ~14 of
# 191 packages, and mmdebstrap's variant selection reads Priority)
apt-cache show $(awk '{print $1"="$2}' $W/inst.txt) | awk '/^Package:/{p=$2}/^Version:/{v=$2}/^Priority:/{pr=$2}/^Section:/{se=$2}/^$/{print p, v, pr, se; pr=se=""}' | sort -u > $W/prio.txt
awk 'NR==FNR{ prio[$1" "$2]=$3; sec[$1" "$2]=$4; next }
     FILENAME ~ /uris/ { split($1,p,"_"); name=p[1]; uri[name]=$2; size[name]=$3; sha[name]=$4; next }
     { n=$1; if (!(n in uri)) { print "no uri for " n > "/dev/stderr"; exit 1 }
       print n "\t" $2 "\t" $3 "\t" prio[n" "$2] "\t" sec[n" "$2] "\t" uri[n] "\t" size[n] "\t" sha[n] }' $W/prio.txt $W/uris.sorted $W/inst.txt > $W/lock.tsv
echo "update: $(echo "$t1 - $t0" | bc) s, resolve: $(echo "$t2 - $t1" | bc) s, packages: $(wc -l < $W/lock.tsv), bytes: $(awk -F'\t' '{s+=$7} END{print s}' $W/lock.tsv)"
