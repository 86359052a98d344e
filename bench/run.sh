#!/usr/bin/env bash
# Sequential-I/O benchmark: this VixDiskLib vs qemu-img's vmdk driver.
#
#   bench/run.sh
#
# For each side, on a fresh 4 GiB monolithic sparse VMDK:
#   write: sequential allocating writes of 1 GiB from offset 0 in 1 MiB
#          requests, one at a time, then flush and close;
#   read:  reopen read-only and read the same 1 GiB back in 1 MiB requests.
#
#   ours:  bench/seqio.c, synchronous VixDiskLib_Write/Read, then Flush + Close.
#   qemu:  qemu-img create -f vmdk X 4G, then
#          qemu-img bench -f vmdk -t CACHE -w --pattern 165 -c 1024 -s 1M -S 1M -d 1 X
#          and the same without -w for the reads (queue depth 1 = synchronous).
#          Closing the image makes qemu flush it (fdatasync), as our Flush does.
#
# Reading the write figure: qemu's vmdk driver makes every grain-table update
# durable at once (strace shows one fdatasync per newly allocated 64 KiB
# grain, 16384 for 1 GiB, even with -t writeback), whereas VixDiskLib clients
# get durability at Flush.  Much of the write ratio is that design difference.
#
# Each figure is the wall-clock time of the whole process doing the phase
# (open, I/O, flush, close; the disk is created beforehand and not timed), so
# both sides pay the same start-up, open and flush costs.  qemu-img's own
# "Run completed in" figure, which leaves out open/flush/close, is shown too.
#
# Cache mode: BENCH_CACHE=writeback (default) runs both sides through the host
# page cache: qemu `-t writeback`, ours opened without UNBUFFERED.
# BENCH_CACHE=none runs qemu with `-t none` (O_DIRECT) and opens ours with
# VIXDISKLIB_FLAG_OPEN_UNBUFFERED.  What that flag does is up to the library;
# this one takes it as advice and still uses the page cache, so "none" is not
# a like-for-like comparison.  Writeback is the fair one and the default.
#
# The page cache cannot be dropped here (that needs root and
# /proc/sys/vm/drop_caches), so in writeback mode the reads are mostly served
# from memory for both sides: they measure the VMDK code path, not the disk.
#
# Environment (defaults): BENCH_CACHE (writeback), BENCH_TOTAL_MIB (1024),
# BENCH_REQ_KIB (1024), BENCH_CAPACITY_MIB (4096), BENCH_TMPDIR (/var/tmp),
# CC (gcc), CARGO (cargo), CARGO_TARGET_DIR (<repo>/target),
# VIXDISKLIB_SO (link against this .so instead of the cargo release build).

set -euo pipefail

. "$(dirname "$0")/lib.sh"
cache=${BENCH_CACHE:-writeback}
total_mib=${BENCH_TOTAL_MIB:-1024}
req_kib=${BENCH_REQ_KIB:-1024}
cap_mib=${BENCH_CAPACITY_MIB:-4096}

case $cache in
    writeback) unbuffered=0 ;;
    none)      unbuffered=1 ;;
    *) echo "BENCH_CACHE must be writeback or none" >&2; exit 2 ;;
esac
if [ $((total_mib * 1024 % req_kib)) -ne 0 ] || [ "$total_mib" -gt "$cap_mib" ]; then
    echo "BENCH_TOTAL_MIB must be a multiple of the request size and fit the capacity" >&2
    exit 2
fi
count=$((total_mib * 1024 / req_kib))

require_qemu

# Build the library (release) and the benchmark program in a fresh work dir.
bench_setup bench seqio

print_setup
if [ "$cache" = none ]; then
    echo "note:       qemu uses O_DIRECT; ours gets VIXDISKLIB_FLAG_OPEN_UNBUFFERED, which the"
    echo "            library may treat as advice only (then ours still uses the page cache)"
fi
echo "workload:   ${total_mib} MiB sequential in ${req_kib} KiB requests, queue depth 1," \
     "on a fresh ${cap_mib} MiB monolithic sparse VMDK; cache mode: $cache"
echo

# ---------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------
ours=$work/ours.vmdk
"$work/seqio" create "$ours" "$cap_mib"
run_timed ours_write env SEQIO_UNBUFFERED=$unbuffered "$work/seqio" write "$ours" "$total_mib" "$req_kib"
grep '^seqio:' "$work/out" | sed 's/^/  ours   /'
run_timed ours_read env SEQIO_UNBUFFERED=$unbuffered "$work/seqio" read "$ours" "$total_mib" "$req_kib"
grep '^seqio:' "$work/out" | sed 's/^/  ours   /'
qemu_check "ours  " image "$ours"
ours_size=$(du -k "$ours" | awk '{ print $1 }')
rm -rf "$ours" "$ours.lck"

# ---------------------------------------------------------------------------
# qemu
# ---------------------------------------------------------------------------
theirs=$work/qemu.vmdk
qemu-img create -q -f vmdk "$theirs" "${cap_mib}M"
run_timed qemu_write qemu-img bench -f vmdk -t "$cache" -w --pattern 165 \
    -c "$count" -s "${req_kib}K" -S "${req_kib}K" -d 1 "$theirs"
qemu_write_own=$(qemu_own "$work/out")
run_timed qemu_read qemu-img bench -f vmdk -t "$cache" \
    -c "$count" -s "${req_kib}K" -S "${req_kib}K" -d 1 "$theirs"
qemu_read_own=$(qemu_own "$work/out")
echo "  qemu   write: qemu-img reports ${qemu_write_own:-?}s for the requests alone, ${qemu_write}s wall"
echo "  qemu   read:  qemu-img reports ${qemu_read_own:-?}s for the requests alone, ${qemu_read}s wall"
qemu_size=$(du -k "$theirs" | awk '{ print $1 }')
rm -f "$theirs"

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
echo
echo "  file size after writing: ours $((ours_size / 1024)) MiB, qemu $((qemu_size / 1024)) MiB"
echo
ow=$(mibps "$total_mib" "$ours_write"); qw=$(mibps "$total_mib" "$qemu_write")
or=$(mibps "$total_mib" "$ours_read");  qr=$(mibps "$total_mib" "$qemu_read")
echo "write: ours $ow MiB/s, qemu $qw MiB/s, ratio $(ratio "$qemu_write" "$ours_write")x  (cache=$cache)"
echo "read:  ours $or MiB/s, qemu $qr MiB/s, ratio $(ratio "$qemu_read" "$ours_read")x  (cache=$cache)"
