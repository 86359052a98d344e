#!/usr/bin/env bash
# What change tracking costs (change-tracking issue): the same workloads on disks with and
# without tracking, side by side with qemu-img's vmdk driver, in one run.
#
#   bench/tracking.sh
#
# alloc-write: 1 GiB of sequential 1 MiB allocating writes into a fresh 4 GiB monolithic
#              sparse disk, Flush, Close (bench/tracking.c "seqwrite"); qemu: qemu-img bench
#              -w with the same sizes, queue depth 1 (as bench/run.sh).
# overwrite:   100 000 writes of 4 KiB at random 4 KiB offsets of a 1 GiB disk whose every
#              grain is already allocated, then Flush, Close ("randwrite", fixed seed);
#              qemu: qemu-img bench -w -c 100000 -s 4K with a step of 7919 x 4 KiB (its
#              offsets wrap around the disk: scattered, not random), same disk.
#              Each figure is the whole process's wall time, the median of BENCH_RUNS runs
#              (the best is printed too), with the tracked and untracked runs interleaved so
#              that load on the machine hits both.
# query:       a 2 TiB disk with tracking, 1 GiB written after a change id was taken, as one
#              run and as 16 384 pieces of 64 KiB spread over the whole disk; then OpenEx with
#              the id and QueryChangedAreas over the whole disk, timed in-process (first pass
#              and repeated). The answer is checked to cover every written sector.
#              Tracking data per GiB of capacity is printed from the tracking file's size.
#
# Targets (printed): tracking costs <= 5% on alloc-write and on overwrite; QueryChangedAreas
# over 2 TiB with 1 GiB changed <= 20 ms; tracking data <= 64 KiB per GiB.
#
# Environment (defaults): BENCH_RUNS (7), BENCH_TMPDIR (/var/tmp), CC, CARGO,
# CARGO_TARGET_DIR, VIXDISKLIB_SO (as bench/run.sh).

set -euo pipefail

. "$(dirname "$0")/lib.sh"
runs=${BENCH_RUNS:-7}
require_qemu
bench_setup tracking tracking
print_setup
echo "runs:       median (and best) of $runs, tracked and untracked interleaved"
echo

t=$work/tracking
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
# add VAR VALUE: append VALUE to the space-separated list in VAR
add() { printf -v "$1" '%s %s' "${!1}" "$2"; }
# median / best of a space-separated list of seconds
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { tr ' ' '\n' <<<"$1" | grep . | sort -g | sed -n 1p; }
overhead() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", (a / b - 1) * 100 }'; }

# ---------------------------------------------------------------------------
# alloc-write
# ---------------------------------------------------------------------------
seq_plain= seq_tracked= seq_qemu=
for ((i = 0; i < runs; i++)); do
    for mode in 0 1; do
        rm -f "$work"/s.vmdk*
        "$t" create "$work/s.vmdk" 4096 "$mode"
        run_timed x "$t" seqwrite "$work/s.vmdk" 1024
        if [ "$mode" = 1 ]; then add seq_tracked "$x"; else add seq_plain "$x"; fi
    done
    rm -f "$work"/q.vmdk
    qemu-img create -q -f vmdk "$work/q.vmdk" 4G
    run_timed x qemu-img bench -f vmdk -t writeback -w --pattern 165 -c 1024 -s 1M -S 1M -d 1 "$work/q.vmdk"
    add seq_qemu "$x"
done
qemu_check "alloc-write" "the tracked disk" "$work/s.vmdk"
rm -f "$work"/s.vmdk* "$work"/q.vmdk

# ---------------------------------------------------------------------------
# overwrite
# ---------------------------------------------------------------------------
for mode in 0 1; do
    "$t" create "$work/r$mode.vmdk" 1024 "$mode"
    "$t" seqwrite "$work/r$mode.vmdk" 1024
done
qemu-img create -q -f vmdk "$work/q.vmdk" 1G
qemu-img bench -f vmdk -t writeback -w -c 1024 -s 1M -S 1M -d 1 "$work/q.vmdk" >/dev/null
rnd_plain= rnd_tracked= rnd_qemu=
for ((i = 0; i < runs; i++)); do
    run_timed x "$t" randwrite "$work/r0.vmdk" 100000 1024
    add rnd_plain "$x"
    run_timed x "$t" randwrite "$work/r1.vmdk" 100000 1024
    add rnd_tracked "$x"
    run_timed x qemu-img bench -f vmdk -t writeback -w -c 100000 -s 4K -S $((7919 * 4096)) -d 1 "$work/q.vmdk"
    add rnd_qemu "$x"
done
qemu_check "overwrite" "the tracked disk" "$work/r1.vmdk"
rm -f "$work"/r?.vmdk* "$work"/q.vmdk

# ---------------------------------------------------------------------------
# query
# ---------------------------------------------------------------------------
declare -A q_first q_again q_areas
for scatter in 0 1; do
    rm -f "$work"/big.vmdk*
    "$t" create "$work/big.vmdk" $((2048 * 1024)) 1
    "$t" query "$work/big.vmdk" 1024 "$scatter" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    sed 's/^/  /' "$work/err"
    read -r _ _ _ a f g <"$work/out"
    q_first[$scatter]=$f; q_again[$scatter]=$g; q_areas[$scatter]=$a
done
track_bytes=$(stat -c %s "$work/big.vmdk.vdltrack")
track_kib_per_gib=$(awk -v b="$track_bytes" 'BEGIN { printf "%.1f", b / 1024 / 2048 }')
rm -f "$work"/big.vmdk*

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
for v in seq_plain seq_tracked seq_qemu rnd_plain rnd_tracked rnd_qemu; do
    printf -v "${v}_best" '%s' "$(best "${!v}")"
    printf -v "$v" '%s' "$(median "${!v}")"
done
echo
printf '%-12s %22s %22s %10s %12s\n' workload "untracked ms (best)" "tracked ms (best)" "cost" "qemu ms"
printf '%-12s %14s (%5s) %14s (%5s) %9s%% %12s\n' alloc-write "$(ms "$seq_plain")" "$(ms "$seq_plain_best")" \
    "$(ms "$seq_tracked")" "$(ms "$seq_tracked_best")" "$(overhead "$seq_tracked" "$seq_plain")" "$(ms "$seq_qemu")"
printf '%-12s %14s (%5s) %14s (%5s) %9s%% %12s\n' overwrite "$(ms "$rnd_plain")" "$(ms "$rnd_plain_best")" \
    "$(ms "$rnd_tracked")" "$(ms "$rnd_tracked_best")" "$(overhead "$rnd_tracked" "$rnd_plain")" "$(ms "$rnd_qemu")"
echo "(medians; cost = tracked median / untracked median - 1)"
echo
echo "QueryChangedAreas, 2 TiB disk, 1 GiB changed: one run ${q_first[0]} ms first /" \
     "${q_again[0]} ms repeated (${q_areas[0]} areas); spread ${q_first[1]} ms /" \
     "${q_again[1]} ms (${q_areas[1]} areas)"
echo "tracking data: $track_bytes bytes for 2 TiB = $track_kib_per_gib KiB per GiB"
echo "ratios vs qemu (qemu time / tracked time): alloc-write $(ratio "$seq_qemu" "$seq_tracked")x," \
     "overwrite $(ratio "$rnd_qemu" "$rnd_tracked")x"
echo
c1=$(overhead "$seq_tracked" "$seq_plain"); c2=$(overhead "$rnd_tracked" "$rnd_plain")
worst=$(awk -v a="${q_first[0]}" -v b="${q_first[1]}" 'BEGIN { print (a > b) ? a : b }')
echo "target: tracking costs <= 5% on alloc-write:  ${c1}%   $(verdict "$c1 <= 5")"
echo "target: tracking costs <= 5% on overwrite:    ${c2}%   $(verdict "$c2 <= 5")"
echo "target: QueryChangedAreas <= 20 ms:           ${worst} ms (worst first pass)   $(verdict "$worst <= 20")"
echo "target: tracking data <= 64 KiB per GiB:      ${track_kib_per_gib} KiB   $(verdict "$track_kib_per_gib <= 64")"
