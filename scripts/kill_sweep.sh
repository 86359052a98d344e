#!/bin/sh
# Kill -9 sweep over every disk kind we write and every maintenance call (issue 9).
# Usage: scripts/kill_sweep.sh [runs] [seed] [case-filter]
#   runs         number of killed runs (default 1000), spread round-robin over the cases
#   seed         seed of the kill moments (default: the current time)
#   case-filter  only cases whose name contains this text (e.g. "stream", "clone-")
# Needs qemu-img and qemu-io. Failing runs keep their directory under $TMPDIR for inspection.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-1000}
seed=${2:-$(date +%s)}
filter=${3:-}
cargo build --quiet --release --bin kill_driver
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exec "${target_dir:-target}/release/kill_driver" sweep "$runs" "$seed" "$filter"
