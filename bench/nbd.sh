#!/usr/bin/env bash
# Remote (NBD) read benchmark: this VixDiskLib vs nbdcopy from the same server (issue 11).
#
#   bench/nbd.sh
#
# A 4 GiB raw export with 2 GiB allocated (every other 64 MiB region; each sector holds its
# byte offset in its first 8 bytes) is served by qemu-nbd on a unix socket. Then, one run each:
#   ours     bench/nbd_read.c: QueryAllocatedBlocks (1 MiB chunks) over the whole disk, then
#            ReadAsync of every allocated block in 4 MiB requests, 16 in flight, one thread
#            issuing; every sector's stamp is checked.
#   nbdcopy  nbdcopy URI null: (its defaults: skips holes via block status, 4 connections,
#            64 requests in flight).
#   16 disks ours again with 16 handles (16 NBD connections) in one process, each reading
#            1/16 of the allocated blocks, all in flight at once; the process's thread count
#            while reading is printed (no thread per request or per disk).
# Ratios are throughput ours / nbdcopy. BENCH_TMPDIR picks the work directory (/var/tmp).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
for t in qemu-nbd nbdcopy python3; do
    command -v $t >/dev/null || { echo "$t not found: run scripts/setup.sh" >&2; exit 1; }
done
bench_setup nbd nbd_read

img=$work/disk.raw
python3 - "$img" <<'PY'
import array, os, sys
size, region, mib = 4 << 30, 64 << 20, 1 << 20
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
stamp = array.array("Q", [0]) * (mib // 8)
for base in range(0, size, 2 * region):
    for off in range(base, base + region, mib):
        for s in range(0, mib // 512):
            stamp[s * 64] = off + s * 512
        os.pwrite(fd, stamp.tobytes(), off)
os.fsync(fd)
os.close(fd)
PY
sock=$work/nbd.sock
qemu-nbd -f raw --read-only --persistent --shared=64 --socket="$sock" "$img" &
qpid=$!
trap 'kill $qpid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
uri="nbd+unix:///?socket=$sock"
echo "export: 4 GiB raw, 2 GiB allocated, qemu-nbd on a unix socket; library $so"

read_ours() { "$work/nbd_read" "$uri" "$1" 16 8192; }
mibps_of() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }

cat "$img" >/dev/null  # same page-cache state for every run
out=$(read_ours 1)
ours_bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out")
ours_secs=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' <<<"$out")
t0=$(date +%s.%N)
nbdcopy "$uri" null:
t1=$(date +%s.%N)
copy_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
out16=$(read_ours 16)
many_bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out16")
many_secs=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' <<<"$out16")
many_threads=$(sed -n 's/.*threads=\([0-9]*\).*/\1/p' <<<"$out16")
[ "$ours_bytes" = $((2 << 30)) ] || { echo "ours read $ours_bytes bytes, expected 2 GiB" >&2; exit 1; }
[ "$many_bytes" = $((2 << 30)) ] || { echo "16 disks read $many_bytes bytes" >&2; exit 1; }
ours=$(mibps_of "$ours_bytes" "$ours_secs")
copy=$(mibps_of $((2 << 30)) "$copy_secs")
many=$(mibps_of "$many_bytes" "$many_secs")
printf '%-34s %8s MiB/s  (%s s)\n' "ours, 1 disk (allocated 2 GiB)" "$ours" "$ours_secs"
printf '%-34s %8s MiB/s  (%s s)\n' "nbdcopy (skips holes)" "$copy" "$copy_secs"
printf '%-34s %8s MiB/s  (%s s, %s threads in the process)\n' "ours, 16 disks at once" "$many" \
    "$many_secs" "$many_threads"
awk -v o="$ours" -v c="$copy" 'BEGIN { printf "ratio ours/nbdcopy: %.2f (target >= 0.90)\n", o / c }'
awk -v o="$many" -v c="$copy" 'BEGIN { printf "ratio 16 disks/nbdcopy: %.2f\n", o / c }'
