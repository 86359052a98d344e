#!/usr/bin/env bash
# Every test: formatting and lints, Rust unit and integration tests (engine, chains, qemu-img
# interop, header drift), the C examples and ABI layout checks under CMake/CTest, and the
# Python ctypes suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2
ctest --test-dir "$build" --output-on-failure
VIXDISKLIB_LIB="$PWD/target/release/libvixDiskLib.so" python3 -m pytest python/tests -q
