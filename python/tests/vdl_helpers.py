"""Shared helpers for the pytest suite: patterns, expected images, qemu
wrappers, descriptor/header parsing and a crash-isolating child runner."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vixdisklib as V

KiB = 1024
MiB = 1024 * KiB
GRAIN = 64 * KiB
SECTOR = 512
DISK_SIZE = 64 * MiB
DISK_SECTORS = DISK_SIZE // SECTOR

# The sys.path entry the tested package was imported from (python/ for the
# source tree, site-packages for the installed package): child processes
# put it first so they import the same copy.
PYTHON_DIR = Path(V.__file__).resolve().parent.parent
# The repository checkout these tests belong to.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# A program that creates, writes and reads a disk with the package's defaults only, then
# prints (JSON) where the library came from: the package's install tests run it in
# environments of their own.
PROBE = """
import json, os, sys, tempfile
import vixdisklib as V
d = tempfile.mkdtemp()
with V.Library() as lib, lib.connect() as c:
    c.create(os.path.join(d, "p.vmdk"), 2048)
    with c.open(os.path.join(d, "p.vmdk")) as disk:
        disk.write(0, b"\\x5a" * 512)
        ok = disk.read(0, 1) == b"\\x5a" * 512
print(json.dumps({"file": V.__file__, "found_by": lib.dll.found_by, "path": lib.dll.path, "ok": ok}))
"""

# (byte offset, byte length, fill byte) -- all sector aligned.  Applied in
# order (later writes overwrite earlier ones), by our library and by
# `qemu-io -f raw` for the reference image.
PATTERNS = [
    (0, 1 * MiB, 0xAB),  # vmdk-format.md section 7 reference data
    (10 * MiB, 64 * KiB, 0xCD),
    (63 * MiB, 512, 0x11),
    (5 * MiB + 4096, 4096, 0x33),  # partial grain, inside one grain
    (7 * MiB + 1536, 2560, 0x44),  # partial grain, not 4k aligned
    (32 * MiB - 1536, 64 * KiB, 0x55),  # straddles a grain and the 32 MiB grain-table boundary
    (64 * MiB - 512, 512, 0x66),  # the last sector
    (40 * MiB + 1024, 200 * KiB, 0x77),  # several grains, unaligned ends
    (48 * MiB + 64 * KiB, 128 * KiB, 0x88),  # two whole grains
    (10 * MiB + 32 * KiB, 4096, 0xCE),  # overwrite inside an allocated grain
    (1 * MiB - 512, 1024, 0x99),  # crosses the end of the first 1 MiB run into a new grain
]


def fill(byte: int, n: int) -> bytes:
    return bytes([byte]) * n


def expected_image(size: int = DISK_SIZE, patterns=PATTERNS) -> bytearray:
    img = bytearray(size)
    for off, length, byte in patterns:
        img[off:off + length] = fill(byte, length)
    return img


def write_patterns(disk: V.Disk, patterns=PATTERNS) -> None:
    for off, length, byte in patterns:
        assert off % SECTOR == 0 and length % SECTOR == 0
        disk.write(off // SECTOR, fill(byte, length))


def read_all(disk: V.Disk, sectors: int, chunk: int = 2048) -> bytes:
    out = bytearray(sectors * SECTOR)
    mv = memoryview(out)
    for start, n in V.iter_chunks(sectors, chunk):
        disk.read_into(start, mv[start * SECTOR:(start + n) * SECTOR])
    return bytes(out)


def merge_ranges(ranges):
    out = []
    for s, ln in sorted(ranges):
        if out and s <= out[-1][0] + out[-1][1]:
            ps, pl = out[-1]
            out[-1] = (ps, max(ps + pl, s + ln) - ps)
        else:
            out.append((s, ln))
    return out


def grain_ranges(patterns=PATTERNS, grain: int = GRAIN):
    """Byte ranges of the grains the patterns touch, merged."""
    rs = []
    for off, length, _ in patterns:
        first = off // grain
        last = (off + length - 1) // grain
        rs.append((first * grain, (last - first + 1) * grain))
    return merge_ranges(rs)


def first_diff(a: bytes, b: bytes):
    """Describe the first difference between two byte strings (or None)."""
    if a == b:
        return None
    if len(a) != len(b):
        return f"length {len(a)} != {len(b)}"
    for i in range(0, len(a), 65536):
        if a[i:i + 65536] != b[i:i + 65536]:
            for j in range(i, min(i + 65536, len(a))):
                if a[j] != b[j]:
                    return f"first difference at byte {j} (sector {j // SECTOR}): {a[j]:#04x} != {b[j]:#04x}"
    return "differs"


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def disk_files(path: Path) -> list[Path]:
    """The descriptor and every extent file of a disk (same stem prefix)."""
    path = Path(path)
    stem = path.stem
    return sorted(p for p in path.parent.iterdir()
                  if p.is_file() and (p == path or (p.name.startswith(stem + "-") and p.suffix == ".vmdk")))


def file_state(path: Path) -> dict[str, str]:
    """sha256 of every file of the disk."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in disk_files(path)}


def sparse_header(path: Path) -> dict:
    raw = Path(path).read_bytes()[:512]
    (magic, version, flags, capacity, grain, desc_off, desc_size, ngte, rgd, gd, overhead, unclean,
     nl1, nl2, nl3, nl4, compress) = struct.unpack_from("<IIIQQQQIQQQBccccH", raw, 0)
    return dict(magic=magic, version=version, flags=flags, capacity=capacity, grain=grain, desc_off=desc_off,
                desc_size=desc_size, num_gtes=ngte, rgd=rgd, gd=gd, overhead=overhead, unclean=unclean,
                newlines=nl1 + nl2 + nl3 + nl4, compress=compress)


def descriptor_text(path: Path) -> str:
    data = Path(path).read_bytes()
    if data[:4] == b"KDMV":
        h = sparse_header(path)
        data = data[h["desc_off"] * 512:(h["desc_off"] + h["desc_size"]) * 512]
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def descriptor_dict(path: Path) -> dict[str, str]:
    """key -> value (quotes stripped) for header keys and ddb.* keys."""
    out = {}
    for line in descriptor_text(path).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip().strip('"')
    return out


# ---------------------------------------------------------------------------
# qemu
# ---------------------------------------------------------------------------

def have_qemu() -> bool:
    return shutil.which("qemu-img") is not None and shutil.which("qemu-io") is not None


needs_qemu = pytest.mark.skipif(not have_qemu(), reason="qemu-img/qemu-io not installed")


def run(cmd, check=True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def qemu_check(path: Path) -> None:
    p = run(["qemu-img", "check", str(path)], check=False)
    assert p.returncode == 0, f"qemu-img check {path} rc={p.returncode}\n{p.stdout}{p.stderr}"
    assert "No errors were found" in p.stdout, p.stdout + p.stderr


def qemu_info(path: Path) -> dict:
    return json.loads(run(["qemu-img", "info", "--output=json", str(path)]).stdout)


def qemu_map_data(path: Path):
    """Merged byte ranges that `qemu-img map` reports as data."""
    entries = json.loads(run(["qemu-img", "map", "--output=json", str(path)]).stdout)
    return merge_ranges([(e["start"], e["length"]) for e in entries if e.get("data")])


def qemu_io(fmt: str, path: Path, *cmds: str, read_only=False) -> subprocess.CompletedProcess:
    args = ["qemu-io", "-f", fmt]
    if read_only:
        args.append("-r")
    for c in cmds:
        args += ["-c", c]
    args.append(str(path))
    p = run(args, check=False)
    assert p.returncode == 0 and "Pattern verification failed" not in p.stdout \
        and "failed" not in p.stderr, f"{args} rc={p.returncode}\n{p.stdout}{p.stderr}"
    return p


def make_ref_raw(path: Path, size: int = DISK_SIZE, patterns=PATTERNS) -> Path:
    run(["qemu-img", "create", "-q", "-f", "raw", str(path), str(size)])
    if patterns:
        qemu_io("raw", path, *[f"write -P {b:#x} {o} {n}" for o, n, b in patterns])
    return path


# ---------------------------------------------------------------------------
# Crash isolation: run a snippet in a fresh interpreter
# ---------------------------------------------------------------------------

CHILD_PRELUDE = """
import ctypes, json, sys
sys.path.insert(0, {pydir!r})
import vixdisklib as V
dll = V.load({lib!r})
LOGS = []
lib = V.Library(dll=dll)
if {init!r}:
    lib.init(log=LOGS.append, warn=LOGS.append, panic=LOGS.append)
result = {{}}
"""

CHILD_EPILOGUE = """
if {init!r}:
    lib.exit()
sys.stdout.write("\\n@@RESULT@@" + json.dumps(result) + "\\n")
sys.stdout.flush()
"""


def run_child(lib_path: str, body: str, init: bool = True, timeout: float = 60) -> dict:
    """Run ``body`` in a new Python process with the library loaded (and
    InitEx'ed when ``init``).  ``body`` fills the dict ``result``.  A crash
    (signal) or a Python error fails the calling test with the output."""
    src = (CHILD_PRELUDE.format(pydir=str(PYTHON_DIR), lib=str(lib_path), init=init)
           + textwrap.dedent(body) + CHILD_EPILOGUE.format(init=init))
    p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    if p.returncode < 0:
        pytest.fail(f"the library crashed the process (signal {-p.returncode})\nstdout:\n{p.stdout}\n"
                    f"stderr:\n{p.stderr[-4000:]}")
    if p.returncode != 0 or "@@RESULT@@" not in p.stdout:
        pytest.fail(f"child failed rc={p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.rsplit("@@RESULT@@", 1)[1])
