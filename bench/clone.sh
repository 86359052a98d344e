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

root=$(cd "$(dirname "$0")/.." && pwd)
cap_mib=${BENCH_CAPACITY_MIB:-4096}
alloc_mib=${BENCH_ALLOC_MIB:-2048}
tmpbase=${BENCH_TMPDIR:-/var/tmp}
cc=${CC:-gcc}
cargo=${CARGO:-cargo}

if [ "$alloc_mib" -gt "$cap_mib" ]; then
    echo "BENCH_ALLOC_MIB must fit the capacity" >&2
    exit 2
fi

command -v qemu-img >/dev/null || { echo "qemu-img not found" >&2; exit 1; }
gnutime=
if [ -x /usr/bin/time ] && /usr/bin/time -f '%e' true >/dev/null 2>&1; then
    gnutime=/usr/bin/time
fi
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------
# Build the library (release) and the benchmark program.
# ---------------------------------------------------------------------------
work=$(mktemp -d "$tmpbase/vixdisklib-clone.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${VIXDISKLIB_SO:-}" ]; then
    so=$VIXDISKLIB_SO
else
    target_dir=${CARGO_TARGET_DIR:-$root/target}
    case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
    echo "building the library: (cd $root && $cargo build --release)"
    (cd "$root" && CARGO_TARGET_DIR=$target_dir "$cargo" build --release --quiet)
    so=$target_dir/release/libvixDiskLib.so
fi
[ -f "$so" ] || { echo "no library at $so" >&2; exit 1; }
[ -f "$root/include/vixDiskLib.h" ] || { echo "no $root/include/vixDiskLib.h" >&2; exit 1; }

# If the library carries a SONAME, make that name resolvable next to it.
libdir=$work/lib
mkdir -p "$libdir"
ln -s "$so" "$libdir/libvixDiskLib.so"
soname=
if command -v readelf >/dev/null; then
    soname=$(LC_ALL=C readelf -d "$so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p' || true)
fi
if [ -n "$soname" ] && [ "$soname" != libvixDiskLib.so ]; then
    ln -s "$so" "$libdir/$soname"
fi

"$cc" -O2 -std=c11 -Wall -Wextra -Werror -I"$root/include" "$root/bench/clone.c" \
    -o "$work/clone" -L"$libdir" -lvixDiskLib -Wl,-rpath,"$libdir"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
clock() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        echo "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}

# run_timed VAR command...: run, put elapsed seconds into VAR, keep output in $work/out;
# with GNU time, "user sys" CPU seconds of the whole process go to $work/cpu
run_timed() {
    local _rvar=$1 _t0 _t1
    shift
    : >"$work/cpu"
    _t0=$(clock)
    if [ -n "$gnutime" ]; then
        "$gnutime" -o "$work/cpu" -f '%U %S' "$@" >"$work/out" 2>&1 ||
            { cat "$work/out" >&2; echo "failed: $*" >&2; exit 1; }
    else
        "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; echo "failed: $*" >&2; exit 1; }
    fi
    _t1=$(clock)
    printf -v "$_rvar" '%s' "$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.6f", b - a }')"
}

# cpu_util WALL: "NNN%" from $work/cpu (whole process), or n/a
cpu_util() {
    awk -v w="$1" 'NF == 2 { printf "%.0f%%", 100 * ($1 + $2) / w; found = 1 }
                   END { if (!found) printf "n/a" }' "$work/cpu"
}

mibps() { awk -v m="$alloc_mib" -v s="$1" 'BEGIN { printf "%.0f", m / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a / b) }'; }
mib_of() { du -k "$1" | awk '{ printf "%.0f", $1 / 1024 }'; }

check_same() { # check_same LABEL DST
    if qemu-img compare -q -f vmdk -F vmdk "$src" "$2" >"$work/cmp" 2>&1; then
        echo "  $1 qemu-img compare: identical to the source"
    else
        echo "  $1 qemu-img compare: DIFFERS from the source:"; sed 's/^/         /' "$work/cmp"
        mismatch=1
    fi
}

echo "library:    $so"
echo "qemu:       $(qemu-img --version | head -n 1)"
echo "work dir:   $work ($(df -P "$work" | awk 'NR == 2 { print $1 }'))"
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
        "${qemu[$kind]}" "$(mibps "${ours[$kind]}")" "$(mibps "${qemu[$kind]}")" \
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
