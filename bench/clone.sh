#!/usr/bin/env bash
# Clone benchmark: VixDiskLib_Clone vs qemu-img convert, same source disk.
#
#   bench/clone.sh
#
# Source: a 4 GiB monolithic sparse VMDK made by OUR library (bench/clone.c
# "create") with 2 GiB allocated: 1 MiB of data at the start of every 2 MiB,
# so allocated runs and holes alternate.  The data is not zeros and not
# trivially compressible: every 4 KiB block starts with its block counter and
# is filled with 8-byte words picked pseudo-randomly from a fixed 256-word
# vocabulary (deflate brings it to roughly a quarter), so the stream
# (compressed) clone has real work to do.  Not timed.
#
# Targets, each timed as the wall-clock time of the whole process:
#   sparse  ours: VixDiskLib_Clone(..., MONOLITHIC_SPARSE)   (bench/clone.c "clone")
#           qemu: qemu-img convert -f vmdk -O vmdk -o subformat=monolithicSparse SRC DST
#   stream  ours: VixDiskLib_Clone(..., STREAM_OPTIMIZED)
#           qemu: qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized SRC DST
# Each output is then checked with `qemu-img compare SRC DST` (not timed) and
# deleted.  MiB/s is of the allocated source data (2048 MiB), ratio = qemu
# time / our time.  The source was just written and is read once with cat
# before timing, so it is read from the page cache by both sides.
#
# CPU utilisation = (user + sys) / wall.  For ours it is measured in-process
# around the Clone call with getrusage(RUSAGE_SELF), which counts all threads;
# for both sides the whole process is also measured with /usr/bin/time when
# it is installed.  With N cores, N x 100% means every core was busy.
#
# qemu-img convert runs with its defaults (destination cache "unsafe",
# 8 coroutines; the vmdk driver compresses in the main thread).  Both sides
# end with an fdatasync of the output (strace: qemu 1, ours at least 1).
#
# Environment (defaults): BENCH_CAPACITY_MIB (4096), BENCH_ALLOC_MIB (2048),
# BENCH_TMPDIR (/var/tmp), CC (gcc), CARGO (cargo), CARGO_TARGET_DIR
# (<repo>/target), VIXDISKLIB_SO (link against this .so instead of the cargo
# release build).

set -euo pipefail

. "$(dirname "$0")/lib.sh"
cap_mib=${BENCH_CAPACITY_MIB:-4096}
alloc_mib=${BENCH_ALLOC_MIB:-2048}

if [ "$alloc_mib" -gt "$cap_mib" ]; then
    echo "BENCH_ALLOC_MIB must fit the capacity" >&2
    exit 2
fi

require_qemu
use_gnutime
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo '?')

# Build the library (release) and the benchmark program in a fresh work dir.
bench_setup clone clone

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
# cpu_util WALL: "NNN%" from $work/cpu (whole process), or n/a
cpu_util() {
    awk -v w="$1" 'NF == 2 { printf "%.0f%%", 100 * ($1 + $2) / w; found = 1 }
                   END { if (!found) printf "n/a" }' "$work/cpu"
}

mib_of() { du -k "$1" | awk '{ printf "%.0f", $1 / 1024 }'; }

check_same() { # check_same LABEL DST
    if qemu-img compare -q -f vmdk -F vmdk "$src" "$2" >"$work/cmp" 2>&1; then
        echo "  $1 qemu-img compare: identical to the source"
    else
        echo "  $1 qemu-img compare: DIFFERS from the source:"; sed 's/^/         /' "$work/cmp"
        mismatch=1
    fi
}

print_setup
echo "cores:      $cores"
echo "source:     ${cap_mib} MiB monolithic sparse VMDK (made by this library), ${alloc_mib} MiB" \
     "allocated in 1 MiB runs, text-like compressible data; page cache warm"
echo

# ---------------------------------------------------------------------------
# Source (not timed)
# ---------------------------------------------------------------------------
src=$work/src.vmdk
"$work/clone" create "$src" "$cap_mib" "$alloc_mib" 2>&1 | sed 's/^clone: /  /'
echo "  source file: $(mib_of "$src") MiB"
cat "$src" >/dev/null
echo

# ---------------------------------------------------------------------------
# Clones
# ---------------------------------------------------------------------------
mismatch=0
declare -A ours qemu ours_cpu qemu_cpu ours_size qemu_size
for kind in sparse stream; do
    case $kind in
        sparse) sub=monolithicSparse ;;
        stream) sub=streamOptimized ;;
    esac

    dst=$work/ours-$kind.vmdk
    run_timed t "$work/clone" clone "$src" "$dst" "$kind"
    ours[$kind]=$t
    ours_cpu[$kind]=$(cpu_util "$t")
    read -r _ _ _ cw cu cs < <(grep '^RESULT clone' "$work/out")
    echo "  ours   $kind: Clone call ${cw}s wall, ${cu}s user, ${cs}s sys" \
         "(CPU $(awk -v w="$cw" -v u="$cu" -v s="$cs" 'BEGIN { printf "%.0f%%", 100 * (u + s) / w }')" \
         "in-process); process ${t}s wall, CPU ${ours_cpu[$kind]}"
    ours_size[$kind]=$(mib_of "$dst")
    [ "$kind" = stream ] && stream_inproc=$(awk -v w="$cw" -v u="$cu" -v s="$cs" \
        'BEGIN { printf "%.0f%%", 100 * (u + s) / w }')
    check_same "ours  " "$dst"
    rm -f "$dst"

    dst=$work/qemu-$kind.vmdk
    run_timed t qemu-img convert -f vmdk -O vmdk -o subformat=$sub "$src" "$dst"
    qemu[$kind]=$t
    qemu_cpu[$kind]=$(cpu_util "$t")
    echo "  qemu   $kind: qemu-img convert -o subformat=$sub ${t}s wall, CPU ${qemu_cpu[$kind]}"
    qemu_size[$kind]=$(mib_of "$dst")
    check_same "qemu  " "$dst"
    rm -f "$dst"
    echo
done

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
printf '%-8s %10s %10s %11s %11s %8s %9s %9s %10s %10s\n' target "ours s" "qemu s" "ours MiB/s" \
    "qemu MiB/s" ratio "ours CPU" "qemu CPU" "ours MiB" "qemu MiB"
for kind in sparse stream; do
    printf '%-8s %10.3f %10.3f %11s %11s %7sx %9s %9s %10s %10s\n' "$kind" "${ours[$kind]}" \
        "${qemu[$kind]}" "$(mibps "$alloc_mib" "${ours[$kind]}")" \
        "$(mibps "$alloc_mib" "${qemu[$kind]}")" \
        "$(ratio "${qemu[$kind]}" "${ours[$kind]}")" "${ours_cpu[$kind]}" "${qemu_cpu[$kind]}" \
        "${ours_size[$kind]}" "${qemu_size[$kind]}"
done
echo
echo "(whole-process wall times; MiB/s of the ${alloc_mib} MiB allocated; ratio = qemu time / our time;"
echo " CPU = (user + sys) / wall of the whole process; 'MiB' = output file size)"
echo "our stream clone: CPU ${stream_inproc} of the Clone call, ${ours_cpu[stream]} of the process," \
     "on $cores cores (all cores busy = $((${cores/\?/1} * 100))%)"
if [ "$mismatch" -ne 0 ]; then
    echo "WARNING: at least one output differs from the source" >&2
    exit 1
fi
