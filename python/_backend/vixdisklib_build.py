"""The vixdisklib package's own PEP 517 build backend (standard library only).

Why not setuptools: ``pip install --no-build-isolation ./python`` must work
in a fresh ``python3 -m venv``, which has pip and an old setuptools but not
``wheel`` -- and setuptools before 70.1 cannot build a wheel without it.  A
wheel is a zip file with three metadata files, so the backend writes it
itself and the build needs nothing beyond Python (and cargo), with or without
build isolation, and never downloads anything.

What it builds: ``cargo build --release --lib`` in the checkout that holds
``python/``, then a wheel with the package and the library as
``vixdisklib/_lib/libvixDiskLib.so``, tagged ``py3-none-<platform>`` (ctypes
needs no Python ABI).  Environment:

  VIXDISKLIB_BUNDLE=/path/libvixDiskLib.so  bundle that file, do not run cargo
  VIXDISKLIB_BUNDLE=none                    bundle nothing: a pure wheel that loads
                                            the system's libvixDiskLib.so.8

Without a checkout (an sdist) or without cargo the build fails unless
VIXDISKLIB_BUNDLE says what to do: a wheel that cannot find its library must
not look like a success.  Metadata comes from ``pyproject.toml``'s
``[project]`` table (read by :func:`project_metadata`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

HERE = Path(__file__).resolve().parent.parent  # python/
REPO = HERE.parent
PACKAGE = "vixdisklib"
LIB_NAME = "libvixDiskLib.so"

Value = Union[str, list[str], dict[str, str]]


# -- pyproject.toml ------------------------------------------------------------
_STRING = r'"(?:[^"\\]|\\.)*"'


def _toml_string(text: str, where: str) -> str:
    m = re.fullmatch(f"({_STRING})\\s*(?:#.*)?", text.strip())
    if m is None:
        raise ValueError(f"pyproject.toml: {where}: expected a \"string\", got {text.strip()!r}")
    value = json.loads(m.group(1))  # a TOML basic string reads like a JSON string
    assert isinstance(value, str)
    return value


def _toml_strings(inner: str, where: str) -> list[str]:
    if re.sub(_STRING, "", inner).replace(",", "").strip():
        raise ValueError(f"pyproject.toml: {where}: expected strings, got {inner.strip()!r}")
    return [_toml_string(s, where) for s in re.findall(_STRING, inner)]


def _uncomment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (one after the last quote)."""
    return re.sub(r'#[^"]*$', "", line).strip()


def project_metadata(pyproject: Path) -> dict[str, Value]:
    """The ``[project]`` table of ``pyproject``: string values, arrays of
    strings (over several lines) and inline tables of strings, which is all
    this package uses.  (``tomllib`` is Python 3.11+; the package supports
    3.9.)  Anything else is an error, never silently skipped."""
    table: dict[str, Value] = {}
    inside = False
    lines = iter(pyproject.read_text(encoding="utf-8").splitlines())
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == "[project]"
            continue
        if not inside or not stripped or stripped.startswith("#"):
            continue
        key, sep, rest = stripped.partition("=")
        if not sep:
            raise ValueError(f"pyproject.toml: cannot read {line!r}")
        key, rest = key.strip(), rest.strip()
        if rest.startswith("["):
            rest = _uncomment(rest)
            while not rest.endswith("]"):
                rest += " " + _uncomment(next(lines))
            table[key] = _toml_strings(rest[1:-1], key)
        elif rest.startswith("{"):
            rest = _uncomment(rest)
            pairs = [p.partition("=") for p in re.findall(r"[\w-]+\s*=\s*" + _STRING, rest)]
            table[key] = {k.strip(): _toml_string(v, key) for k, _, v in pairs}
        else:
            table[key] = _toml_string(rest, key)
    for required in ("name", "version"):
        if not isinstance(table.get(required), str):
            raise ValueError(f"pyproject.toml: [project] needs a {required}")
    return table


def _meta() -> dict[str, Value]:
    return project_metadata(HERE / "pyproject.toml")


def _str(meta: dict[str, Value], key: str) -> str:
    v = meta[key]
    assert isinstance(v, str)
    return v


def metadata_text(meta: dict[str, Value]) -> str:
    """Core metadata (``METADATA`` / ``PKG-INFO``), version 2.1."""
    out = ["Metadata-Version: 2.1", f"Name: {_str(meta, 'name')}", f"Version: {_str(meta, 'version')}"]
    if "description" in meta:
        out.append(f"Summary: {_str(meta, 'description')}")
    if "requires-python" in meta:
        out.append(f"Requires-Python: {_str(meta, 'requires-python')}")
    lic = meta.get("license")
    if isinstance(lic, dict) and "text" in lic:
        out.append(f"License: {lic['text']}")
    classifiers = meta.get("classifiers", [])
    assert isinstance(classifiers, list)
    out.extend(f"Classifier: {c}" for c in classifiers)
    return "\n".join(out) + "\n"


# -- the library -----------------------------------------------------------------
def _bundle_setting() -> str:
    return os.environ.get("VIXDISKLIB_BUNDLE", "")


def bundling() -> bool:
    return _bundle_setting().lower() != "none"


def built_library() -> Path:
    """The library to bundle: ``$VIXDISKLIB_BUNDLE``, else a fresh cargo build."""
    bundle = _bundle_setting()
    if bundle:
        lib = Path(bundle)
        if not lib.is_file():
            raise SystemExit(f"VIXDISKLIB_BUNDLE={bundle} is not a file")
        return lib
    if not (REPO / "Cargo.toml").is_file():
        raise SystemExit(f"no Cargo.toml in {REPO}: build from a checkout, or set VIXDISKLIB_BUNDLE "
                         "(a built libvixDiskLib.so, or 'none' to rely on the system's libvixDiskLib.so.8)")
    cargo = shutil.which("cargo")
    if cargo is None:
        raise SystemExit("cargo not found: install Rust, or set VIXDISKLIB_BUNDLE")
    # cargo's progress goes to stderr; pip shows it with -v.  stdout stays clean for the hook protocol.
    subprocess.run([cargo, "build", "--release", "--lib"], cwd=REPO, check=True, stdout=sys.stderr)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    lib = (target if target.is_absolute() else REPO / target) / "release" / LIB_NAME
    if not lib.is_file():
        raise SystemExit(f"cargo build finished but {lib} does not exist")
    return lib


# -- wheel ---------------------------------------------------------------------------
def _platform_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", sysconfig.get_platform())


def wheel_tag() -> str:
    return f"py3-none-{_platform_tag()}" if bundling() else "py3-none-any"


def _package_files() -> list[tuple[str, Path]]:
    """``(name in the wheel, source file)`` for the package's sources."""
    root = HERE / PACKAGE
    out = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and rel.parts[0] != "_lib" and "__pycache__" not in rel.parts \
                and (f.suffix == ".py" or f.name == "py.typed"):
            out.append((f"{PACKAGE}/{rel.as_posix()}", f))
    return out


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_info_name(meta: dict[str, Value]) -> str:
    name = re.sub(r"[-_.]+", "_", _str(meta, "name")).lower()
    return f"{name}-{_str(meta, 'version')}"


def _dist_info_files(meta: dict[str, Value], pure: bool, tag: str) -> dict[str, str]:
    wheel = (f"Wheel-Version: 1.0\nGenerator: vixdisklib_build\nRoot-Is-Purelib: {'true' if pure else 'false'}\n"
             f"Tag: {tag}\n")
    return {"METADATA": metadata_text(meta), "WHEEL": wheel}


def _write_wheel(directory: str, contents: list[tuple[str, bytes, int]], pure: bool, tag: str) -> str:
    meta = _meta()
    base = _dist_info_name(meta)
    dist_info = f"{base}.dist-info"
    files = list(contents)
    for name, text in _dist_info_files(meta, pure, tag).items():
        files.append((f"{dist_info}/{name}", text.encode(), 0o644))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data, _ in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode(), 0o644))
    wheel_name = f"{base}-{tag}.whl"
    path = Path(directory) / wheel_name
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(tmp, path)  # never leave a half-written wheel under the final name
    return wheel_name


# -- PEP 517 / 660 hooks --------------------------------------------------------------
def get_requires_for_build_wheel(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[dict[str, Any]] = None) -> str:
    meta = _meta()
    dist_info = Path(metadata_directory) / f"{_dist_info_name(meta)}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    for name, text in _dist_info_files(meta, not bundling(), wheel_tag()).items():
        (dist_info / name).write_text(text, encoding="utf-8")
    return dist_info.name


def build_wheel(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    contents = [(name, src.read_bytes(), 0o644) for name, src in _package_files()]
    if bundling():
        contents.append((f"{PACKAGE}/_lib/{LIB_NAME}", built_library().read_bytes(), 0o755))
    return _write_wheel(wheel_directory, contents, not bundling(), wheel_tag())


def build_editable(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    """An editable install: a ``.pth`` file putting ``python/`` on sys.path.
    The package then loads the checkout's ``target/release`` library (built
    here unless VIXDISKLIB_BUNDLE is set: an editable install bundles nothing)."""
    if not _bundle_setting() and shutil.which("cargo") and (REPO / "Cargo.toml").is_file():
        built_library()
    pth = (str(HERE) + "\n").encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{PACKAGE}.pth", pth, 0o644)], True, "py3-none-any")


def build_sdist(sdist_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    meta = _meta()
    base = _dist_info_name(meta)
    sources = [("pyproject.toml", HERE / "pyproject.toml"), ("_backend/vixdisklib_build.py", Path(__file__))]
    sources += _package_files()
    name = f"{base}.tar.gz"
    path = Path(sdist_directory) / name
    tmp = path.with_name(path.name + ".part")
    with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        entries = [(arc, src.read_bytes()) for arc, src in sources]
        entries.append(("PKG-INFO", metadata_text(meta).encode()))
        for arc, data in entries:
            info = tarfile.TarInfo(f"{base}/{arc}")
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)
    return name
