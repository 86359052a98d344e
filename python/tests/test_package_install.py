"""The vixdisklib package as users get it: how it finds the library, that
`pip install` of python/ yields a package that needs no environment
variables, type hints that pass mypy --strict, and the version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vixdisklib as V
from vdl_helpers import PROBE, PYTHON_DIR, REPO_ROOT

PACKAGE_DIR = Path(V.__file__).resolve().parent
SOURCE_DIR = REPO_ROOT / "python"
INSTALLED_RUN = os.environ.get("VIXDISKLIB_EXPECT_INSTALLED") == "1"


def _env_without_lib(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIXDISKLIB_LIB", "PYTHONPATH", "CARGO_TARGET_DIR")}
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _probe(pythonpath: Path, cwd: Path, **env: str) -> dict:
    import json

    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=cwd,
                       env=_env_without_lib(PYTHONPATH=str(pythonpath), **env))
    assert p.returncode == 0, f"rc={p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_version_is_the_crates():
    cargo = (REPO_ROOT / "Cargo.toml").read_text()
    assert f'version = "{V.__version__}"' in cargo.split("[dependencies]")[0]
    assert f'version = "{V.__version__}"' in (SOURCE_DIR / "pyproject.toml").read_text()


def test_search_order():
    cands = V.library_candidates()
    assert cands[0] == ("bundled", str(V.BUNDLED_DIR / "libvixDiskLib.so"))
    assert cands[-1] == ("system", "libvixDiskLib.so.8")
    if not INSTALLED_RUN:
        assert ("checkout", str(REPO_ROOT / "target" / "release" / "libvixDiskLib.so")) in cands


def test_env_var_comes_first(monkeypatch, tmp_path, lib_path, dll):
    if not INSTALLED_RUN:
        # scripts/test.sh runs the source-tree suite with VIXDISKLIB_LIB set: it must win
        assert os.environ.get("VIXDISKLIB_LIB") is None or dll.found_by == "env"
    copy = tmp_path / "elsewhere.so"
    shutil.copy(lib_path, copy)
    monkeypatch.setenv("VIXDISKLIB_LIB", str(copy))
    assert V.find_library() == str(copy)


def test_env_var_naming_a_missing_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VIXDISKLIB_LIB", str(tmp_path / "nope.so"))
    with pytest.raises(FileNotFoundError, match="VIXDISKLIB_LIB"):
        V.find_library()
    with pytest.raises(FileNotFoundError, match="VIXDISKLIB_LIB"):
        V.load()


def test_system_loader_is_the_last_resort(lib_path, tmp_path):
    """A copy of the package with nothing bundled and no checkout around it
    loads libvixDiskLib.so.8 through the dynamic loader (LD_LIBRARY_PATH here,
    ld.so.cache after `cmake --install` into a system prefix)."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, site / "vixdisklib", ignore=shutil.ignore_patterns("_lib", "__pycache__"))
    libdir = tmp_path / "lib64"
    libdir.mkdir()
    (libdir / "libvixDiskLib.so.8").symlink_to(lib_path)
    got = _probe(site, tmp_path, LD_LIBRARY_PATH=str(libdir))
    assert got["found_by"] == "system" and got["ok"], got
    assert Path(got["path"]).resolve() == Path(lib_path).resolve(), got
    p = subprocess.run([sys.executable, "-c", "import vixdisklib as V; V.load()"], capture_output=True, text=True,
                       cwd=tmp_path, env=_env_without_lib(PYTHONPATH=str(site), LD_LIBRARY_PATH=""))
    assert p.returncode != 0 and "FileNotFoundError" in p.stderr and "libvixDiskLib.so.8" in p.stderr, p.stderr


@pytest.mark.skipif(INSTALLED_RUN, reason="done by the source-tree run")
@pytest.mark.skipif(shutil.which("cargo") is None, reason="no cargo")
def test_pip_install_bundles_the_library(lib_path, tmp_path):
    """`pip install --no-build-isolation` of python/ into a fresh directory:
    the package finds its bundled copy with no environment variables, from
    outside the checkout.  (VIXDISKLIB_BUNDLE hands the build the library
    under test instead of running cargo.)"""
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                        "--disable-pip-version-check", "--root-user-action=ignore", "--target", str(target),
                        str(SOURCE_DIR)],
                       capture_output=True, text=True, timeout=300,
                       env=_env_without_lib(VIXDISKLIB_BUNDLE=str(lib_path)))
    assert p.returncode == 0, p.stdout + p.stderr
    bundled = target / "vixdisklib" / "_lib" / "libvixDiskLib.so"
    assert bundled.is_file() and bundled.read_bytes() == Path(lib_path).read_bytes()
    assert (target / "vixdisklib" / "py.typed").is_file()
    assert (target / "vixdisklib" / "examples" / "past_generation.py").is_file()
    got = _probe(target, tmp_path)
    assert got == {"file": str(target / "vixdisklib" / "__init__.py"), "found_by": "bundled",
                   "path": str(bundled), "ok": True}


@pytest.mark.skipif(not INSTALLED_RUN, reason="only in scripts/test.sh's run against the installed package")
def test_installed_package_uses_its_bundled_library(dll):
    assert "VIXDISKLIB_LIB" not in os.environ
    assert not PACKAGE_DIR.is_relative_to(SOURCE_DIR), f"testing the source tree, not the install: {PACKAGE_DIR}"
    assert PYTHON_DIR == PACKAGE_DIR.parent
    assert dll.found_by == "bundled" and Path(dll.path) == PACKAGE_DIR / "_lib" / "libvixDiskLib.so", dll.path


def test_mypy_strict(tmp_path):
    """mypy --strict on the package's files (a copy, so that mypy sees only
    them and not the rest of site-packages in the installed run)."""
    pytest.importorskip("mypy")
    shutil.copytree(PACKAGE_DIR, tmp_path / "vixdisklib", ignore=shutil.ignore_patterns("_lib", "__pycache__"))
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull,
                        "--no-error-summary", "vixdisklib"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    errors = [line for line in p.stdout.splitlines() if re.search(r": error:", line)]
    assert p.returncode == 0 and not errors, p.stdout + p.stderr
