#!/usr/bin/env bash
# A/B comparison of two builds of the library on one benchmark, for refactors that must not
# change speed: runs bench/SCRIPT against OLD.so and NEW.so alternately, ROUNDS times, so both
# see the same machine load (this VM's page-cache speed drifts between runs; compare medians).
#
#   bench/ab.sh SCRIPT ROUNDS OLD.so NEW.so      e.g. bench/ab.sh chain.sh 4 /tmp/old.so target/release/libvixDiskLib.so
#
# Build the old library from a worktree (`git worktree add --detach /tmp/old REV`, then
# `cargo build --release` there) and copy both .so files somewhere stable first. Each script's
# own environment variables (BENCH_DEPTHS, BENCH_TOTAL_MIB, ...) pass through. Both runs use
# this checkout's header and benchmark programs, so the C API must be the same in both.
set -euo pipefail
[ $# -eq 4 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
script=$1 rounds=$2 old=$3 new=$4
here=$(cd "$(dirname "$0")" && pwd)
for so in "$old" "$new"; do
    [ -f "$so" ] || { echo "no library at $so" >&2; exit 1; }
done
for round in $(seq 1 "$rounds"); do
    for side in old new; do
        so=$old
        [ "$side" = new ] && so=$new
        echo "=== $script, round $round of $rounds: $side ($so)"
        VIXDISKLIB_SO=$(realpath "$so") bash "$here/$script"
    done
done
