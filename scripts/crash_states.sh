#!/bin/sh
# Crash-state soak (issue 19): runs the crash-state explorer (tests/crash_states.rs) with many
# more random subsets per sync point, over several seeds, and qemu-img on more states.
#   scripts/crash_states.sh [SEEDS] [SUBSETS] [DEEP]   (defaults 8 seeds, 200 subsets, 40)
# Each seed explores other subsets; a failure prints the crash point, the subset and why.
# See docs/crash-states.md.
set -eu
seeds=${1:-8}
subsets=${2:-200}
deep=${3:-40}
cd "$(dirname "$0")/.."
cargo test --release --test crash_states --test crash_states_tracking --no-run
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
seed=1
while [ "$seed" -le "$seeds" ]; do
  echo "seed $seed: $subsets subsets per sync point, qemu-img on up to $deep states per workload"
  CRASH_SEED=$seed CRASH_SUBSETS=$subsets CRASH_DEEP=$deep \
    cargo test --release --test crash_states --test crash_states_tracking -- --nocapture --test-threads=1 >"$out" 2>&1 || status=1
  grep -oE 'crash states:.*|failing crash states|crash after|test result.*' "$out" || true
  seed=$((seed + 1))
done
exit $status
