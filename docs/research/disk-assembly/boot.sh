#!/bin/bash
# boot.sh DISK.qcow2 LOG [uefi|bios] [timeout] — boot on TCG, wait for the marker, print seconds
set -u
DISK=$1 LOG=$2 MODE=${3:-uefi} TMO=${4:-300}
ACCEL=${ACCEL:-tcg}
FW=()
if [ "$MODE" = uefi ]; then
  VARS=$(mktemp /tmp/proto-disk/vars.XXXXXX.fd); cp /usr/share/OVMF/OVMF_VARS_4M.fd "$VARS"
  FW=(-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
      -drive if=pflash,format=raw,unit=1,file="$VARS")
fi
# a throwaway overlay: the image itself stays untouched by the boot
OVL=$(mktemp -u /tmp/proto-disk/ovl.XXXXXX.qcow2)
qemu-img create -q -f qcow2 -F qcow2 -b "$(realpath "$DISK")" "$OVL"
t0=$(date +%s.%N)
timeout "$TMO" qemu-system-x86_64 -machine q35,accel=$ACCEL -cpu max -smp 2 -m 1024 -nographic -no-reboot \
  -nodefaults -serial stdio -net none "${FW[@]}" \
  -drive if=virtio,format=qcow2,file="$OVL" < /dev/null > "$LOG" 2>&1 &
QPID=$!
found=
while kill -0 $QPID 2>/dev/null; do
  if [ -z "$found" ] && grep -aq IMGMAKE-BOOTED "$LOG" 2>/dev/null; then
    found=$(echo "$(date +%s.%N) - $t0" | bc); echo "marker after ${found} s: $(grep -a -m1 IMGMAKE-BOOTED "$LOG" | tr -d '\r')"
  fi
  sleep 0.5
done
wait $QPID; rc=$?
echo "qemu exited rc=$rc after $(echo "$(date +%s.%N) - $t0" | bc) s"
rm -f "$OVL" ${VARS:+"$VARS"}
[ -n "$found" ] || { echo "NO MARKER"; exit 1; }
