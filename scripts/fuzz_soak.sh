#!/bin/sh
# Soaks one fuzz target: scripts/fuzz_soak.sh TARGET [EXECS] (default 10 million executions).
# One libFuzzer process, no sanitizer (the engine is safe Rust: the bugs to find are panics,
# overflows, unbounded allocations and hangs), debug assertions and overflow checks on.
# New inputs go to a scratch copy of the corpus, so the committed corpus only changes by hand.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a stable toolchain
# RUSTC_BOOTSTRAP=1 lets it use the nightly-only flags it needs. See docs/fuzzing.md.
set -eu
target=${1:?usage: fuzz_soak.sh TARGET [EXECS]}
execs=${2:-10000000}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch_base=/dev/shm
[ -d "$scratch_base" ] || scratch_base=${TMPDIR:-/tmp}
work=$(mktemp -d "$scratch_base/vdl-soak-$target-XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$root/fuzz/artifacts/$target}
mkdir -p "$artifacts"
cp "$root/fuzz/corpus/$target/"* "$work/"
cd "$root/fuzz"
status=0
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --debug-assertions --release "$target" "$work" -- \
    -runs="$execs" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
    -dict="$root/fuzz/vmdk.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 || status=$?
rm -rf "$work" "$scratch_base"/vdl-fuzz-"$target"-*
exit $status
