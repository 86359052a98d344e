#!/usr/bin/env bash
# Extent descriptor cache benchmark (issue 18): reads spread over every file of an
# 8 TiB twoGbMaxExtentSparse disk (4 097 files), with the cache limited and unlimited.
#
#   bench/extents.sh
#
# The disk is made by bench/extents.c "create": one stamped 64 KiB grain at the start of
# every extent, 1 MiB more in extents 1, 2000 and 4095 (about 1.3 GiB of files).
# Then, side by side:
#   limited    ulimit -n 256, no config file: the cache keeps a quarter of the limit (64
#              descriptors), so nearly every read below closes one file and opens another.
#   unlimited  ulimit -n 8192, vixDiskLib.maxOpenFiles = 100000: every file stays open.
# Workloads (bench/extents.c): "seq" reads the first 64 KiB of every extent in order,
# BENCH_ROUNDS times; "rand" reads the first 64 KiB of BENCH_READS pseudo-random extents;
# "open" is Open read-only of the whole disk (seconds, and the process's peak RSS); "many"
# opens the disk 64 times (as 64 disks) and reads it from 8 threads.
# Figures are the best of BENCH_RUNS runs, wall and CPU (user + system) time of the reads;
# ratio = limited / unlimited (target: <= 1.10).
# Files are in the page cache (just written), so this measures the library's path.
#
# Environment (defaults): BENCH_DISK (none: create one; else measure that existing disk,
# which must have been made by "extents create"), BENCH_GIB (8192), BENCH_ROUNDS (3), BENCH_READS (20000),
# BENCH_RUNS (5), BENCH_TMPDIR (/var/tmp), CC, CARGO, CARGO_TARGET_DIR, VIXDISKLIB_SO.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

gib=${BENCH_GIB:-8192}
rounds=${BENCH_ROUNDS:-3}
nreads=${BENCH_READS:-20000}
runs=${BENCH_RUNS:-5}

bench_setup extents extents
echo "library:    $so"
echo "work dir:   $work"
if [ -n "${BENCH_DISK:-}" ]; then
    disk=$BENCH_DISK
else
    disk=$work/big.vmdk
    echo "creating a ${gib} GiB twoGbMaxExtentSparse disk ..."
    (ulimit -n 256 && "$work/extents" create "$disk" "$gib")
fi
ddir=$(dirname "$disk")
base=$(basename "$disk" .vmdk)
extents=$(ls "$ddir" | grep -c "^$base-s")
echo "disk:       $disk ($extents extent files, $(du -shc "$ddir/$base"* | tail -n 1 | cut -f1))"
printf 'vixDiskLib.maxOpenFiles = "100000"\n' >"$work/unlimited.conf"
cat "$ddir/$base"* >/dev/null

# best MODE ARGS...: the best (smallest) wall time of the RESULT lines of $runs runs and
# the best CPU time (for "open": the peak RSS of the best run).
best() {
    local mode=$1 i out v c b= bc= rss= brss=
    shift
    for ((i = 0; i < runs; i++)); do
        if [ "$mode" = limited ]; then
            out=$( (ulimit -n 256 && "$work/extents" "$@") )
        else
            out=$( (ulimit -n 8192 && EXTENTS_CONFIG=$work/unlimited.conf "$work/extents" "$@") )
        fi
        if [ "$1" = open ]; then
            v=$(echo "$out" | awk '/^RESULT/ { print $3 }')
            rss=$(echo "$out" | awk '/^RESULT/ { print $4 }')
        else
            v=$(echo "$out" | awk '/^RESULT/ { print $4 }')
            c=$(echo "$out" | awk '/^RESULT/ { print $5 }')
            if [ -z "$bc" ] || awk -v v="$c" -v b="$bc" 'BEGIN { exit !(v < b) }'; then
                bc=$c
            fi
        fi
        if [ -z "$b" ] || awk -v v="$v" -v b="$b" 'BEGIN { exit !(v < b) }'; then
            b=$v
            brss=$rss
        fi
    done
    echo "$b ${brss:-$bc}"
}

printf '\n%-34s %12s %12s %7s   %10s %10s %7s\n' workload "limited" "unlimited" ratio \
    "cpu lim" "cpu unl" ratio
for w in "seq $rounds" "rand $nreads"; do
    set -- $w
    read -r l lc < <(best limited "$1" "$disk" "$2")
    read -r u uc < <(best unlimited "$1" "$disk" "$2")
    if [ "$1" = seq ]; then n=$((rounds * extents)); else n=$nreads; fi
    printf '%-34s %11.3fs %11.3fs %7s   %9.3fs %9.3fs %7s\n' "$1: $n reads of 64 KiB" \
        "$l" "$u" "$(ratio "$l" "$u")" "$lc" "$uc" "$(ratio "$lc" "$uc")"
done
# 64 disks at once (64 read-only opens of this one) read by 8 threads: the unlimited side
# needs 64 x the extent count of descriptors and is expected to fail with EMFILE.
for mode in limited unlimited; do
    if out=$(if [ $mode = limited ]; then
        ulimit -n 256 && "$work/extents" many "$disk" 64 8 5000 2>&1
    else
        ulimit -n 8192 && EXTENTS_CONFIG=$work/unlimited.conf "$work/extents" many "$disk" 64 8 5000 2>&1
    fi); then
        printf '%-34s %s: %s s\n' "64 handles, 8 threads, 40000 reads" $mode \
            "$(echo "$out" | awk '/^RESULT/ { print $4 }')"
    else
        printf '%-34s %s: fails (%s)\n' "64 handles, 8 threads" $mode \
            "$(grep -o -m 1 'Too many open files' <<<"$out" || true)"
    fi
done
read -r ol rl < <(best limited open "$disk")
read -r ou ru < <(best unlimited open "$disk")
printf '%-34s %11.3fs %11.3fs %7s\n' "open (read-only)" "$ol" "$ou" "$(ratio "$ol" "$ou")"
printf '%-34s %9s KiB %8s KiB\n' "peak RSS after open" "$rl" "$ru"
