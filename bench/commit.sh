#!/usr/bin/env bash
# Commit benchmark: VixDiskLibExt_Commit vs qemu-img commit on identical copies of the same
# files, and the open of a child over a 2 TiB base.
#
#   bench/commit.sh
#
# commit: a template is built once with OUR library (bench/commit.c "build"): a 4 GiB
#         monolithic sparse base with 1 GiB written (1 MiB at the start of every 2 MiB) and
#         a monolithic sparse child base.vmdk.REDO holding 1 GiB of changes (1 MiB at
#         512 KiB into every 2 MiB: half overwrites base grains, half fills the base's
#         holes). Each run copies the template twice (cp --sparse=always) and commits the
#         child into the base:
#           ours: VixDiskLibExt_Commit(child)   (bench/commit.c "commit"; it is durable when
#                 it returns, and it deletes the child's files)
#           qemu: qemu-img commit -q -f vmdk -t writeback -d CHILD (the child is left in
#                 place; closing the image flushes the base, so it is durable too)
#           floor: cp --sparse=always CHILD + sync of the copy: the same 1 GiB moved
#                 through the page cache onto the disk with nothing else to do, as a
#                 reference for what any commit costs on this machine.
#         Every figure is the wall-clock time of the whole process, after a `sync` that
#         leaves no dirty pages from the copies. The sides take turns going first.
#         Each result is checked (not timed): qemu-img compare of both committed bases with
#         each other and with the template's child, qemu-img check of both.
#         ratio = qemu time / our time.
# open:   a 2 TiB monolithic sparse base (1 MiB written at each end) and a monolithic sparse
#         child over it, made once with our library; `commit open` opens the child
#         read-write (whole chain) timed in-process, reads 1 MiB at each end, closes; max RSS
#         from getrusage and GNU time. qemu-img info --backing-chain is shown for reference.
#
# Targets: commit at least 5x qemu's speed; the 2 TiB open within 50 ms and 64 MiB max RSS.
#
# The page cache cannot be dropped here; the VM's write-back speed to its disk varies a lot
# between runs, so BENCH_RUNS runs are made and every run is printed.
#
# Environment (defaults): BENCH_CAPACITY_MIB (4096), BENCH_CHANGE_MIB (1024), BENCH_BIG_GIB
# (2048), BENCH_RUNS (3), BENCH_TMPDIR (/var/tmp), CC (gcc), CARGO (cargo), CARGO_TARGET_DIR
# (<repo>/target), VIXDISKLIB_SO (link against this .so instead of the cargo release build).

set -euo pipefail

. "$(dirname "$0")/lib.sh"
cap_mib=${BENCH_CAPACITY_MIB:-4096}
change_mib=${BENCH_CHANGE_MIB:-1024}
big_gib=${BENCH_BIG_GIB:-2048}
runs=${BENCH_RUNS:-3}

if [ $((2 * change_mib)) -gt "$cap_mib" ]; then
    echo "BENCH_CHANGE_MIB must be at most half of BENCH_CAPACITY_MIB" >&2
    exit 2
fi

require_qemu
use_gnutime
bench_setup commit commit

ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cpu_of() { awk 'NF == 2 { printf "%.2fs user+sys", $1 + $2; f = 1 } END { if (!f) printf "cpu n/a" }' "$work/cpu"; }

print_setup
echo "commit:     ${change_mib} MiB of changes in a child over a ${cap_mib} MiB monolithicSparse base" \
     "(${change_mib} MiB written); $runs runs, fresh copies each"
echo "open:       child over a ${big_gib} GiB monolithicSparse base"
echo

# ---------------------------------------------------------------------------
# Commit
# ---------------------------------------------------------------------------
template=$work/template
mkdir -p "$template"
run_timed t "$work/commit" build "$template" "$cap_mib" "$change_mib"
sed 's/^/  build  /' "$work/out"
qemu_check "build " "the template child (and base)" "$template/base.vmdk.REDO"
echo

same() { # same LABEL A B
    if qemu-img compare -q -f vmdk -F vmdk "$2" "$3" >"$work/cmp" 2>&1; then
        echo "  $1 identical"
    else
        echo "  $1 DIFFER:"; sed 's/^/         /' "$work/cmp"; mismatch=1
    fi
}

mismatch=0
ours_t=() qemu_t=() floor_t=()
for ((r = 1; r <= runs; r++)); do
    rm -rf "$work/ours" "$work/qemu"
    cp -a --sparse=always "$template" "$work/ours"
    cp -a --sparse=always "$template" "$work/qemu"
    ours_cmd=("$work/commit" commit "$work/ours/base.vmdk.REDO")
    qemu_cmd=(qemu-img commit -q -f vmdk -t writeback -d "$work/qemu/base.vmdk.REDO")
    floor_cmd=(sh -c 'cp --sparse=always "$1" "$2" && sync "$2"' floor
               "$template/base.vmdk.REDO" "$work/floor.vmdk")
    case $((r % 3)) in
        1) order="ours qemu floor" ;;
        2) order="qemu floor ours" ;;
        *) order="floor ours qemu" ;;
    esac
    for side in $order; do
        if [ "$side" = floor ]; then
            run_timed t "${floor_cmd[@]}"
            floor_t+=("$t")
            rm -f "$work/floor.vmdk"
            echo "  run $r floor $(printf '%7.3f' "$t")s wall ($(cpu_of))"
        elif [ "$side" = ours ]; then
            run_timed t "${ours_cmd[@]}"
            ours_t+=("$t")
            echo "  run $r ours  $(printf '%7.3f' "$t")s wall ($(cpu_of));" \
                 "in-process $(awk '/^RESULT commit/ { printf "%.3fs", $3 }' "$work/out")"
        else
            run_timed t "${qemu_cmd[@]}"
            qemu_t+=("$t")
            echo "  run $r qemu  $(printf '%7.3f' "$t")s wall ($(cpu_of))"
        fi
    done
    echo "  run $r ratio $(ratio "${qemu_t[-1]}" "${ours_t[-1]}")x"
    [ -e "$work/ours/base.vmdk.REDO" ] && { echo "  ours left the child behind"; mismatch=1; }
    if [ "$r" = 1 ]; then
        same "check  ours vs qemu (committed bases):" "$work/ours/base.vmdk" "$work/qemu/base.vmdk"
        same "check  ours vs the template's chain:   " "$template/base.vmdk.REDO" "$work/ours/base.vmdk"
        qemu_check "check " "our committed base" "$work/ours/base.vmdk"
        qemu_check "check " "qemu's committed base" "$work/qemu/base.vmdk"
    fi
done
rm -rf "$work/ours" "$work/qemu" "$template"
echo

# ---------------------------------------------------------------------------
# Open of a child over a 2 TiB base
# ---------------------------------------------------------------------------
big=$work/big
mkdir -p "$big"
run_timed t "$work/commit" big "$big" "$big_gib"
echo "  big    ${big_gib} GiB base + child made in ${t}s; $(du -sk "$big" | awk '{ printf "%d MiB", $1 / 1024 }') on disk"
open_ms=() open_rss=()
for ((r = 1; r <= runs; r++)); do
    if [ -n "$gnutime" ]; then
        sync
        "$gnutime" -o "$work/rss" -f '%M' "$work/commit" open "$big/big.vmdk.REDO" >"$work/out" 2>&1
        whole=$(tail -n 1 "$work/rss")
    else
        "$work/commit" open "$big/big.vmdk.REDO" >"$work/out" 2>&1
        whole=
    fi
    read -r _ _ secs rss0 rss1 < <(grep '^RESULT open' "$work/out")
    open_ms+=("$(ms "$secs")")
    open_rss+=("${whole:-$rss1}")
    echo "  open   run $r: $(ms "$secs") ms; max RSS ${rss1} KiB (getrusage; ${rss0} KiB before the open)," \
         "${whole:-n/a} KiB (GNU time, whole process)"
done
if [ -n "$gnutime" ]; then
    "$gnutime" -o "$work/rss" -f '%e %M' qemu-img info --backing-chain "$big/big.vmdk.REDO" >/dev/null
    read -r qs qrss <"$work/rss"
    echo "  qemu   qemu-img info --backing-chain: ${qs}s wall, max RSS ${qrss} KiB (for reference)"
fi
rm -rf "$big"
echo

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
ob=$(printf '%s\n' "${ours_t[@]}" | sort -g | sed -n 1p)
qb=$(printf '%s\n' "${qemu_t[@]}" | sort -g | sed -n 1p)
om=$(median "${ours_t[@]}")
qm=$(median "${qemu_t[@]}")
fb=$(printf '%s\n' "${floor_t[@]}" | sort -g | sed -n 1p)
fm=$(median "${floor_t[@]}")
printf '%-22s %10s %10s %8s %10s\n' commit ours qemu ratio "cp floor"
printf '%-22s %9.3fs %9.3fs %7sx %9.3fs\n' "best of $runs" "$ob" "$qb" "$(ratio "$qb" "$ob")" "$fb"
printf '%-22s %9.3fs %9.3fs %7sx %9.3fs\n' "median of $runs" "$om" "$qm" "$(ratio "$qm" "$om")" "$fm"
printf '%-22s %8s MiB/s %5s MiB/s %14s\n' "changes / median" "$(mibps "$change_mib" "$om")" \
    "$(mibps "$change_mib" "$qm")" "$(mibps "$change_mib" "$fm") MiB/s"
echo
worst_ms=$(printf '%s\n' "${open_ms[@]}" | sort -g | tail -n 1)
worst_rss=$(printf '%s\n' "${open_rss[@]}" | sort -g | tail -n 1)
rm_ratio=$(ratio "$qm" "$om")
echo "target: commit >= 5x qemu (median runs):   ${rm_ratio}x   $(verdict "$rm_ratio >= 5")"
echo "target: open over ${big_gib} GiB <= 50 ms:       ${worst_ms} ms (worst of $runs)   $(verdict "$worst_ms <= 50")"
echo "target: max RSS <= 64 MiB:                 $((worst_rss / 1024)) MiB (${worst_rss} KiB, worst)   $(verdict "$worst_rss <= 65536")"
[ "$mismatch" = 0 ] || { echo "RESULT CHECKS FAILED" >&2; exit 1; }
