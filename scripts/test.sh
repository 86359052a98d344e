#!/usr/bin/env bash
# Every test: formatting and lints, Rust unit and integration tests (engine, chains, qemu-img
# interop, header drift), the vixdisk CLI's tests (cli/), the C examples and ABI layout checks
# under CMake/CTest, and the Python ctypes suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Under pipefail, `producer | grep -q …` or `| head` fails whenever the reader exits before the
# producer has written everything (SIGPIPE): CI flaked that way (issue 19). None in our scripts.
if grep -nE '\|[[:space:]]*(grep[[:space:]]+(-[A-Za-z]*q|--quiet)|head([[:space:]]|$))' \
     scripts/*.sh .ci/run bench/*.sh | grep -vE '^[^:]+:[0-9]+:[[:space:]]*#'; then
  echo "scripts: a pipe into grep -q or head under pipefail (use a here-string)" >&2; exit 1
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The Rust facade's documentation builds without a warning (its examples run in cargo test).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
cargo test --workspace
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2
ctest --test-dir "$build" --output-on-failure
# --- issue 16: the README's sh, python and C blocks, run as pasted in scratch dirs (cli16) ------
python3 scripts/readme_blocks.py "$build"
# The install layout nbdkit and VDDK clients expect, and a client built against it alone.
prefix=$(mktemp -d /tmp/vixdisklib-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/vixDiskLib.h include/vixDiskLibExt.h include/vm_basic_types.h lib64/libvixDiskLib.so.8.0.3 \
         lib64/libvixDiskLib.so.8 lib64/libvixDiskLib.so.9 lib64/libvixDiskLib.so \
         lib64/pkgconfig/vixDiskLib.pc share/pkgconfig/vixDiskLib.pc bin/vixdisk \
         share/man/man1/vixdisk.1 share/man/man1/vixdisk-backup-full.1 \
         share/bash-completion/completions/vixdisk share/zsh/site-functions/_vixdisk \
         share/fish/vendor_completions.d/vixdisk.fish; do
  [ -e "$prefix/$f" ] || { echo "install layout: $f missing" >&2; exit 1; }
done
# Every installed header is in the README's install layout (it once left out vixDiskLibExt.h).
layout=$(sed -n '/^## Install layout/,/^## What works/p' README.md)
for h in "$prefix"/include/*.h; do
  grep -qF "$(basename "$h")" <<<"$layout" || { echo "README's install layout lacks include/$(basename "$h")" >&2; exit 1; }
done
# --- issue 16: pkg-config as the README says it (cli16) ---------------------------------------
# For /usr/local, pkg-config searches PREFIX/share/pkgconfig by itself; for this other prefix the
# README says `export PKG_CONFIG_PATH=PREFIX/share/pkgconfig`. Then the README's C program, built
# with the README's own command line and nothing else (no -Wl,-rpath, no LD_LIBRARY_PATH), runs.
grep -qx /usr/local/share/pkgconfig <<<"$(pkg-config --variable pc_path pkg-config | tr : '\n')" \
  || { echo "pkg-config does not search /usr/local/share/pkgconfig" >&2; exit 1; }
sed -n '/^```c$/,/^```$/p' README.md | sed '1d;$d' >"$prefix/app.c"
readme_cc=$(grep -m1 '^cc app.c -o app \$(pkg-config --cflags --libs vixDiskLib)' README.md)
app_out=$(cd "$prefix" && export PKG_CONFIG_PATH="$prefix/share/pkgconfig" && eval "$readme_cc" && ./app) \
  || app_out=""
grep -qx ok <<<"$app_out" || { echo "README's pkg-config build against $prefix failed" >&2; exit 1; }
grep -q 'force\\-share' "$prefix/share/man/man1/vixdisk-info.1" \
  || { echo "installed man page vixdisk-info.1 lacks --force-share" >&2; exit 1; }
# --- end issue 16 (cli16) ----------------------------------------------------------------------
# The CLI is installed next to the library, and the library gained no dependency from it.
"$prefix/bin/vixdisk" create -q "$prefix/cli.vmdk" 16M >/dev/null
"$prefix/bin/vixdisk" info "$prefix/cli.vmdk" | grep '^type: monolithicSparse$' >/dev/null
extra=$(ldd "$prefix/lib64/libvixDiskLib.so.8.0.3" | grep -v -E 'linux-vdso|ld-linux|libc\.so|libgcc_s\.so' || true)
[ -z "$extra" ] || { echo "libvixDiskLib.so links more than libc and libgcc: $extra" >&2; exit 1; }
echo "install layout: ok (the README's C program built with pkg-config against $prefix ran; bin/vixdisk, man pages, completions)"
# ---- Python package (issue 16, py16) ---------------------------------------------------------
# The Python package as a new user installs it: a fresh `python3 -m venv` (no system site-packages:
# pip and the setuptools it ships, no wheel), the README's install line run as written in it (the
# package's own build backend needs nothing else and downloads nothing; it bundles
# target/release/libvixDiskLib.so). Then the package's tests against that installed copy, with no
# VIXDISKLIB_LIB and no python/ on sys.path, so it must find its bundled library (pytest comes from
# the machine's Python; the venv's site-packages is put first on its path).
python3 -m venv "$prefix/venv"
readme_install=$(awk '/^## Using it from Python/{p=1;next} /^## /{p=0} p && /pip install/{sub(/^\$ /,""); print; exit}' README.md)
[ -n "$readme_install" ] || { echo "README: no pip install line in the Python section" >&2; exit 1; }
(export VIRTUAL_ENV="$prefix/venv" PATH="$prefix/venv/bin:$PATH" PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
   PIP_ROOT_USER_ACTION=ignore; unset PYTHONPATH VIXDISKLIB_LIB; bash -c "$readme_install")
site=$("$prefix/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
env -u VIXDISKLIB_LIB VIXDISKLIB_EXPECT_INSTALLED=1 PYTHONPATH="$site" python3 -m pytest -o pythonpath=tests -q \
  python/tests/test_package_api.py python/tests/test_package_install.py python/tests/test_examples.py \
  python/tests/test_pythonic.py
# ---- end of the Python package block (py16) ---------------------------------------------------
# Last, so its summary is the run's closing line: every Python test against the source tree.
VIXDISKLIB_LIB="$PWD/target/release/libvixDiskLib.so" python3 -m pytest python/tests -q
