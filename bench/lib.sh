# bench/lib.sh - setup and helpers shared by bench/run.sh, bench/chain.sh and
# bench/clone.sh.  Sourced (after `set -euo pipefail`), not run.
#
# On sourcing it sets:
#   root     the repository (the parent of bench/)
#   tmpbase  BENCH_TMPDIR (/var/tmp): where the work directory goes
#   cc       CC (gcc)
#   cargo    CARGO (cargo)
#
# bench_setup NAME PROGRAM
#   Makes the work directory $work = $tmpbase/vixdisklib-NAME.XXXXXX (removed
#   on exit), builds the library (cargo release build in CARGO_TARGET_DIR,
#   default <repo>/target; or takes VIXDISKLIB_SO) into $so, makes
#   $libdir = $work/lib with libvixDiskLib.so and its SONAME name
#   (libvixDiskLib.so.8) pointing at it, and compiles bench/PROGRAM.c (with
#   bench/bench_common.h) to $work/PROGRAM.
#
# Helpers: require_qemu, print_setup, clock, run_timed, qemu_own, qemu_check,
# mibps, ratio, use_gnutime.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmpbase=${BENCH_TMPDIR:-/var/tmp}
cc=${CC:-gcc}
cargo=${CARGO:-cargo}

# Set by use_gnutime (clone.sh): GNU time's path, and whether run_timed records CPU times.
gnutime=
cpu_times=0

require_qemu() {
    command -v qemu-img >/dev/null || { echo "qemu-img not found" >&2; exit 1; }
}

# ---------------------------------------------------------------------------
# Build the library (release) and the benchmark program.
# ---------------------------------------------------------------------------
cleanup() { rm -rf "$work"; }

bench_setup() {
    local name=$1 prog=$2 target_dir soname

    work=$(mktemp -d "$tmpbase/vixdisklib-$name.XXXXXX")
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

    "$cc" -O2 -std=c11 -Wall -Wextra -Werror -I"$root/include" "$root/bench/$prog.c" \
        -o "$work/$prog" -L"$libdir" -lvixDiskLib -Wl,-rpath,"$libdir"
}

# The first lines of every report: library, qemu version, work directory.
print_setup() {
    echo "library:    $so"
    echo "qemu:       $(qemu-img --version | sed -n 1p)"
    echo "work dir:   $work ($(df -P "$work" | awk 'NR == 2 { print $1 }'))"
}

# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------
clock() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        echo "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}

# use_gnutime: from now on run_timed also records "user sys" CPU seconds of the
# whole process in $work/cpu (empty when /usr/bin/time is not GNU time).
use_gnutime() {
    cpu_times=1
    gnutime=
    if [ -x /usr/bin/time ] && /usr/bin/time -f '%e' true >/dev/null 2>&1; then
        gnutime=/usr/bin/time
    fi
}

# run_timed VAR command...: run, put elapsed seconds into VAR, keep output in $work/out;
# after use_gnutime, "user sys" CPU seconds of the whole process go to $work/cpu
run_timed() {
    local _rvar=$1 _t0 _t1
    shift
    if [ "$cpu_times" = 1 ]; then
        : >"$work/cpu"
    fi
    # Start every timed run with no dirty pages left by the previous step (creating the
    # source, the other side's output): their writeback would otherwise be charged to
    # whichever side runs next.
    sync
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

# qemu_own FILE: the "Run completed in N seconds" figure of a qemu-img bench output
qemu_own() { sed -n 's/.*Run completed in \([0-9.]*\) seconds.*/\1/p' "$1"; }

# qemu_check LABEL WHAT IMAGE: report whether `qemu-img check` passes IMAGE
qemu_check() {
    if qemu-img check -q -f vmdk "$3" >"$work/out" 2>&1; then
        echo "  $1 $2 passes qemu-img check"
    else
        echo "  $1 WARNING: qemu-img check reports problems:"; sed 's/^/         /' "$work/out"
    fi
}

mibps() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.0f", m / s }'; }   # mibps MIB SECONDS
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a / b) }'; }
