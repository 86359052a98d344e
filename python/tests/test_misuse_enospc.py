"""A full filesystem: writes, Clone and CreateChild on a 4 MiB tmpfs until it is full.

Each call that runs out of space must return VIX_E_DISK_FULL; the disk must stay consistent
(qemu-img check) and every write that was acknowledged by a successful Flush must read back.
Needs root (mount); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

import vixdisklib as V
from vdl_helpers import have_qemu, qemu_check

TINY = "4m"
GRAIN_SECTORS = 128


@pytest.fixture
def tiny(tmp_path):
    """A 4 MiB tmpfs mounted under tmp_path (unmounted afterwards)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY}", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def pattern(i: int) -> bytes:
    """Grain `i`'s content: incompressible, so streamOptimized targets need the space too."""
    return random.Random(i).randbytes(GRAIN_SECTORS * 512)


def fill_until_full(disk: V.Disk, first_grain: int = 0, limit: int = 4096) -> tuple[list[int], int]:
    """Writes one grain at a time, flushing after each, until a call fails. Returns the grains
    acknowledged (write and flush both succeeded) and the failing code."""
    acked = []
    for g in range(first_grain, first_grain + limit):
        try:
            disk.write(g * GRAIN_SECTORS, pattern(g))
            disk.flush()
        except V.VixErrorException as e:
            return acked, e.code
        acked.append(g)
    pytest.fail(f"{limit} grains fitted in a {TINY} filesystem")


def verify(conn: V.Connection, path: Path, acked: list[int]) -> None:
    if have_qemu():
        qemu_check(path)
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        for g in acked:
            assert d.read(g * GRAIN_SECTORS, GRAIN_SECTORS) == pattern(g), f"acknowledged grain {g} lost"


def leave_free(mnt: Path, free_bytes: int) -> None:
    """Fills the filesystem with a filler file until about `free_bytes` remain."""
    st = os.statvfs(mnt)
    avail = st.f_bavail * st.f_frsize
    with open(mnt / "filler", "wb") as f:
        f.write(b"\xff" * max(0, avail - free_bytes))


def test_writes_until_full(vix, conn, tiny):
    path = tiny / "d.vmdk"
    conn.create(path, 64 * 2048)
    d = conn.open(path)
    acked, code = fill_until_full(d)
    assert code == V.VIX_E_DISK_FULL, V.ERROR_NAMES.get(code, code)
    assert len(acked) > 10, "the disk filled up suspiciously early"
    # Rewriting grains already allocated needs no space and must still work.
    d.write(acked[0] * GRAIN_SECTORS, pattern(acked[0]))
    d.flush()
    d.close()
    verify(conn, path, acked)
    # The disk opens read-write again and refuses new grains with the same code.
    with conn.open(path) as d:
        more, code = fill_until_full(d, first_grain=acked[-1] + 1, limit=64)
        assert code == V.VIX_E_DISK_FULL
    verify(conn, path, acked + more)


def test_clone_into_a_full_filesystem(vix, conn, tiny, tmp_path):
    src = tmp_path / "src.vmdk"
    conn.create(src, 64 * 2048)
    with conn.open(src) as d:
        for g in range(0, 128, 2):  # 4 MiB of data: more than the target has room for
            d.write(g * GRAIN_SECTORS, pattern(g))
    for disk_type in (V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, V.VIXDISKLIB_DISK_STREAM_OPTIMIZED):
        dst = tiny / f"clone-{disk_type}.vmdk"
        with pytest.raises(V.VixErrorException) as e:
            conn.clone(dst, conn, src, disk_type=disk_type)
        assert e.value.code == V.VIX_E_DISK_FULL, e.value
        # Nothing half-written is left behind (neither the target nor temporary files).
        leftovers = sorted(p.name for p in tiny.iterdir())
        assert leftovers == [], f"failed clone left {leftovers}"


def test_create_child_and_child_writes_until_full(vix, conn, tiny):
    base = tiny / "base.vmdk"
    conn.create(base, 64 * 2048)
    with conn.open(base) as d:
        d.write(0, pattern(0))
        d.flush()
    leave_free(tiny, 8 * 1024)
    child = tiny / "child.vmdk"
    with conn.open(base) as d:
        with pytest.raises(V.VixErrorException) as e:
            d.create_child(child)
        assert e.value.code == V.VIX_E_DISK_FULL, e.value
    assert not child.exists(), "a failed CreateChild left a partial child"
    verify(conn, base, [0])

    # With room for the child but not for much data: writes through it fill up cleanly.
    os.truncate(tiny / "filler", 0)
    leave_free(tiny, 1024 * 1024)
    with conn.open(base) as d:
        d.create_child(child)
    with conn.open(child) as d:
        acked, code = fill_until_full(d, first_grain=1)
        assert code == V.VIX_E_DISK_FULL, V.ERROR_NAMES.get(code, code)
        assert acked, "not a single grain fitted"
    verify(conn, child, [0] + acked)
