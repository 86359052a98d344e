#!/usr/bin/env bash
# Every test: formatting and lints, Rust unit and integration tests (engine, chains, qemu-img
# interop, header drift), the vixdisk CLI's tests (cli/), the C examples and ABI layout checks
# under CMake/CTest, and the Python ctypes suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2
ctest --test-dir "$build" --output-on-failure
# The install layout nbdkit and VDDK clients expect, and a client built against it alone.
prefix=$(mktemp -d /tmp/vixdisklib-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/vixDiskLib.h include/vixDiskLibExt.h include/vm_basic_types.h lib64/libvixDiskLib.so.8.0.3 \
         lib64/libvixDiskLib.so.8 lib64/libvixDiskLib.so.9 lib64/libvixDiskLib.so \
         lib64/pkgconfig/vixDiskLib.pc bin/vixdisk; do
  [ -e "$prefix/$f" ] || { echo "install layout: $f missing" >&2; exit 1; }
done
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$prefix/demo" c_examples/demo.c \
  $(PKG_CONFIG_PATH="$prefix/lib64/pkgconfig" pkg-config --cflags --libs vixDiskLib) \
  -Wl,-rpath,"$prefix/lib64"
"$prefix/demo" "$prefix/installed.vmdk" 16 >/dev/null
# The CLI is installed next to the library, and the library gained no dependency from it.
"$prefix/bin/vixdisk" create -q "$prefix/cli.vmdk" 16M >/dev/null
"$prefix/bin/vixdisk" info "$prefix/cli.vmdk" | grep '^type: monolithicSparse$' >/dev/null
extra=$(ldd "$prefix/lib64/libvixDiskLib.so.8.0.3" | grep -v -E 'linux-vdso|ld-linux|libc\.so|libgcc_s\.so' || true)
[ -z "$extra" ] || { echo "libvixDiskLib.so links more than libc and libgcc: $extra" >&2; exit 1; }
echo "install layout: ok (client built with pkg-config against $prefix ran; bin/vixdisk ran)"
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
