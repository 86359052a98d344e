#!/usr/bin/env bash
# Installs what the build and the tests need beyond Rust, gcc, python3 and qemu-img (which every
# machine of this project has): cmake, pytest, NBD servers and libnbd for the remote-disk tests,
# and mypy. (The Python package builds with its own standard-library build backend: no setuptools
# or wheel needed.) Safe to run repeatedly.
#   scripts/setup.sh --cli   also installs the vixdisk command-line tool with cargo (into
#                            $CARGO_HOME/bin, or PREFIX/bin with PREFIX=... in the environment)
set -euo pipefail
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v qemu-img >/dev/null 2>&1 || need_apt+=(qemu-utils)
command -v qemu-io >/dev/null 2>&1 || need_apt+=(qemu-utils)
# Remote disks over NBD (issue 11): the library dlopens libnbd at run time; the tests start
# qemu-nbd (qemu-utils) and nbdkit servers, read with nbdcopy (libnbd-bin) and make PSK files
# with psktool (gnutls-bin).
command -v qemu-nbd >/dev/null 2>&1 || need_apt+=(qemu-utils)
command -v nbdkit >/dev/null 2>&1 || need_apt+=(nbdkit)
command -v nbdcopy >/dev/null 2>&1 || need_apt+=(libnbd-bin)
command -v psktool >/dev/null 2>&1 || need_apt+=(gnutls-bin)
# Not `ldconfig -p | grep -q`: under pipefail grep's early exit can SIGPIPE ldconfig.
grep -q 'libnbd\.so\.0 ' <<<"$(ldconfig -p 2>/dev/null || true)" || need_apt+=(libnbd0)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
# mypy type-checks the package in python/tests.
python3 -c 'import mypy' 2>/dev/null || python3 -m pip install -q mypy
# numpy only widens the zero-copy buffer tests (they skip without it).
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install -q numpy || true
# libvmdk's Python binding is a second, independent reader for the interop tests (a binary
# wheel from PyPI); the tests that need it skip when it cannot be installed.
python3 -c 'import pyvmdk' 2>/dev/null || python3 -m pip install -q libvmdk-python || true
if [ "${1:-}" = "--cli" ]; then
  cd "$(dirname "$0")/.."
  root=()
  [ -n "${PREFIX:-}" ] && root=(--root "$PREFIX")
  cargo install --locked --path cli "${root[@]}"
fi
