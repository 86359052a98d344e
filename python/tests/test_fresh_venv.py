"""The package as a new user gets it (issue 16): the README's install line
pasted into a fresh ``python3 -m venv`` (pip and an old setuptools, no
``wheel``, nothing from the network), and a wheel installed where there is
neither a compiler nor cargo, running the package's examples from there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from vdl_helpers import PROBE, REPO_ROOT

INSTALLED_RUN = os.environ.get("VIXDISKLIB_EXPECT_INSTALLED") == "1"
pytestmark = pytest.mark.skipif(INSTALLED_RUN, reason="builds from the checkout: done by the source-tree run")



def readme_install_line() -> str:
    """The first ``pip install`` line of the README's Python section's shell blocks."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Using it from Python", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if "pip install" in line:
                return line.lstrip("$ ").strip()
    raise AssertionError("the README's Python section has no `pip install` line")


def _clean_env(bin_dir: Path, *, path: str) -> dict[str, str]:
    """What a shell with the venv activated has: no VIXDISKLIB_LIB, no PYTHONPATH."""
    drop = ("VIXDISKLIB_LIB", "VIXDISKLIB_BUNDLE", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(VIRTUAL_ENV=str(bin_dir.parent), PATH=path, PYTHONDONTWRITEBYTECODE="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", PIP_ROOT_USER_ACTION="ignore")
    return env


def _fresh_venv(where: Path, with_pip: bool = True) -> Path:
    """``python3 -m venv`` exactly: no system site-packages."""
    venv.EnvBuilder(with_pip=with_pip, system_site_packages=False, clear=True, symlinks=True).create(where)
    return where / "bin"


def test_readme_install_line_works_in_a_fresh_venv(tmp_path):
    """Before: ``ModuleNotFoundError: No module named 'wheel'`` (setuptools
    < 70.1 builds wheels only with ``wheel`` installed, which a venv lacks)."""
    line = readme_install_line()
    bin_dir = _fresh_venv(tmp_path / "venv")
    env = _clean_env(bin_dir, path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    p = subprocess.run(["bash", "-c", line], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"`{line}` in a fresh venv: rc={p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}"
    p = subprocess.run([str(bin_dir / "python"), "-c", PROBE], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    probe = json.loads(p.stdout)
    assert probe["ok"] and probe["found_by"] == "bundled", p.stdout
    assert Path(probe["file"]).is_relative_to(tmp_path / "venv"), p.stdout


@pytest.mark.skipif(shutil.which("cargo") is None, reason="no cargo to build the wheel with")
def test_wheel_runs_the_examples_without_compiler_or_cargo(tmp_path, lib_path):
    """Build a wheel once, install it into a fresh venv whose PATH holds only
    the venv (no cc, no cargo) and run every example as a command there."""
    dist = tmp_path / "dist"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(dist), str(REPO_ROOT / "python")],
                       env=_clean_env(Path(sys.executable).parent, path=os.environ["PATH"]) | {
                           "VIXDISKLIB_BUNDLE": str(lib_path)},
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    (wheel,) = dist.glob("vixdisklib-*.whl")
    assert re.search(r"-py3-none-linux_\w+\.whl$", wheel.name), wheel.name

    bin_dir = _fresh_venv(tmp_path / "venv", with_pip=False)
    p = subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q",
                        "--no-deps", "--no-index", str(wheel)],
                       env=_clean_env(bin_dir, path=os.environ["PATH"]), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr

    env = _clean_env(bin_dir, path=str(bin_dir))
    env.pop("CARGO_HOME", None)
    env.pop("RUSTUP_HOME", None)
    probe = "import shutil; print(shutil.which('cc'), shutil.which('gcc'), shutil.which('cargo'))"
    p = subprocess.run([str(bin_dir / "python"), "-c", probe], env=env, capture_output=True, text=True)
    assert p.stdout.split() == ["None", "None", "None"], p.stdout + p.stderr
    work = tmp_path / "work"
    work.mkdir()
    p = subprocess.run([str(bin_dir / "python"), "-c", PROBE], cwd=work, env=env, capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["found_by"] == "bundled", p.stdout + p.stderr
    examples = [("nightly_redo_logs", []), ("past_generation", ["2"]), ("shared_base", []), ("backup_recovery", [])]
    for name, extra in examples:
        d = work / name
        d.mkdir()
        p = subprocess.run([str(bin_dir / "python"), "-m", f"vixdisklib.examples.{name}", str(d), *extra],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"{name}: rc={p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}"
        assert any(d.iterdir()), f"{name} made nothing in {d}"


def _backend():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO_ROOT / "python" / "_backend"))
    try:
        import vixdisklib_build
    finally:
        sys.path.pop(0)
    return vixdisklib_build


def test_backend_reads_pyproject_as_tomllib_does():
    """The backend's small [project] reader (Python 3.9 has no tomllib) gives
    what tomllib gives, and refuses what it cannot read instead of guessing."""
    tomllib = pytest.importorskip("tomllib")
    b = _backend()
    pyproject = REPO_ROOT / "python" / "pyproject.toml"
    assert b.project_metadata(pyproject) == tomllib.loads(pyproject.read_text())["project"]


def test_backend_refuses_what_it_cannot_read(tmp_path):
    b = _backend()
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\nversion = 3\n')
    with pytest.raises(ValueError, match="version"):
        b.project_metadata(bad)


def test_backend_is_typed():
    pytest.importorskip("mypy")
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull, "--no-error-summary",
                        str(REPO_ROOT / "python" / "_backend" / "vixdisklib_build.py")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
