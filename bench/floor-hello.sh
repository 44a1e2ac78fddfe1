#!/bin/sh
# The floor for examples/hello: the same tree and tarball as its nine stages, made by a plain
# shell script with the same tools and no engine (no keys, no sandbox, no cache).
#
#   bench/floor-hello.sh PROJECT_DIR OUT_DIR HOSTNAME [FROM]
#
# FROM=hostname redoes only what imgmake's late edit redoes (the hostname and every step
# after it, on the tree left by a previous full run); without it, everything from scratch.
# With CHECKPOINTS=DIR, every step first copies the whole tree to DIR/N (`cp -a`): the
# copy-per-stage design (osbuild, coreos-assembler) that the benchmark compares against.
set -eu
project=$1 out=$2 hostname=$3 from=${4:-}
tree=$out/tree
step=0
checkpoint() {
  step=$((step + 1))
  if [ -n "${CHECKPOINTS:-}" ]; then
    rm -rf "$CHECKPOINTS/$step"
    mkdir -p "$CHECKPOINTS"
    cp -a "$tree" "$CHECKPOINTS/$step"
  fi
}
if [ -z "$from" ]; then
  rm -rf "$tree"
  mkdir -p "$tree"
  mkdir -p "$tree/etc" "$tree/srv/www" "$tree/var/log" && chmod 0750 "$tree/var/log"; checkpoint
  cp "$project/files/motd" "$tree/etc/motd" && cp "$project/files/index.html" "$tree/srv/www/index.html"; checkpoint
fi
echo "$hostname" > "$tree/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$hostname" > "$tree/etc/hosts"; checkpoint
ln -sfn /usr/share/zoneinfo/Europe/Berlin "$tree/etc/localtime" && echo Europe/Berlin > "$tree/etc/timezone"; checkpoint
echo LANG=en_US.UTF-8 > "$tree/etc/default-locale"; checkpoint
mkdir -p "$tree/usr/local/bin"
printf '#!/bin/sh\necho "Hello from $(cat /etc/hostname)"\n' > "$tree/usr/local/bin/greet" && chmod 0755 "$tree/usr/local/bin/greet"; checkpoint
ln -sfn greet "$tree/usr/local/bin/hello"; checkpoint
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort > /tmp/floor-manifest.$$ && mv /tmp/floor-manifest.$$ etc/manifest.txt); checkpoint
tar --sort=name --numeric-owner --format=pax --mtime=@315532800 -C "$tree" -cf "$out/hello.tar" .; checkpoint
