"""Build hook: compile libvixDiskLib.so and bundle it into the wheel.

Everything else is in pyproject.toml.  While building, ``build_py`` runs
``cargo build --release`` in the checkout that holds this directory and copies
the result to ``vixdisklib/_lib/libvixDiskLib.so``; the wheel is then tagged
for this platform (``py3-none-<platform>``: ctypes needs no Python ABI).

Environment:
  VIXDISKLIB_BUNDLE=/path/libvixDiskLib.so  bundle that file, do not run cargo
  VIXDISKLIB_BUNDLE=none                    bundle nothing: a pure wheel that loads
                                            the system's libvixDiskLib.so.8
Without a checkout (an sdist) or without cargo, the build fails unless
VIXDISKLIB_BUNDLE says what to do: a wheel that cannot find its library
should not look like a success.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1: the command still lives in `wheel`
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUNDLE = os.environ.get("VIXDISKLIB_BUNDLE", "")


def bundling() -> bool:
    return BUNDLE.lower() != "none"


def built_library() -> Path:
    """The library to bundle: VIXDISKLIB_BUNDLE, else a fresh cargo build."""
    if BUNDLE:
        lib = Path(BUNDLE)
        if not lib.is_file():
            raise SystemExit(f"VIXDISKLIB_BUNDLE={BUNDLE} is not a file")
        return lib
    if not (REPO / "Cargo.toml").is_file():
        raise SystemExit(f"no Cargo.toml in {REPO}: build from a checkout, or set VIXDISKLIB_BUNDLE "
                         "(a built libvixDiskLib.so, or 'none' to rely on the system's libvixDiskLib.so.8)")
    cargo = shutil.which("cargo")
    if cargo is None:
        raise SystemExit("cargo not found: install Rust, or set VIXDISKLIB_BUNDLE")
    subprocess.run([cargo, "build", "--release", "--lib"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    lib = (target if target.is_absolute() else REPO / target) / "release" / "libvixDiskLib.so"
    if not lib.is_file():
        raise SystemExit(f"cargo build finished but {lib} does not exist")
    return lib


class BuildPyWithLibrary(build_py):
    """build_py + the compiled library in vixdisklib/_lib/."""

    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "vixdisklib" / "_lib"
        shutil.rmtree(dest, ignore_errors=True)  # never ship a stale copy from an earlier build
        if bundling():
            dest.mkdir(parents=True)
            shutil.copy2(built_library(), dest / "libvixDiskLib.so")


class PlatformWheel(bdist_wheel):
    """A platform wheel when it carries the library, pure otherwise."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = not bundling()

    def get_tag(self) -> tuple[str, str, str]:
        python, abi, plat = super().get_tag()
        return ("py3", "none", plat) if bundling() else (python, abi, plat)


class BinaryDistribution(Distribution):
    """Marks the distribution as platform specific when it bundles the library."""

    def has_ext_modules(self) -> bool:
        return bundling()


setup(cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel}, distclass=BinaryDistribution)
