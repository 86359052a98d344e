"""The shared-base seed example runs, the base never changes, and qemu-img agrees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import vixdisklib as vdl
from vixdisklib.examples import shared_base


def test_shared_base_example(conn: vdl.Connection, tmp_path: Path) -> None:
    seen = shared_base.run(conn, tmp_path)
    s = vdl.VIXDISKLIB_SECTOR_SIZE
    assert seen["base"] == bytes([0xB0]) * 2 * s
    assert seen["vm1"] == bytes([0xA0]) * s + bytes([0xB0]) * s
    assert seen["vm2"] == bytes([0xA1]) * s + bytes([0xC2]) * s
    assert not (tmp_path / "vm3" / "mydisk.vmdk.REDO_b02000").exists()
    assert not list((tmp_path / "vm2").glob("*REDO_c03000"))
    for disk in (tmp_path / "mydisk.vmdk", tmp_path / "mydisk.vmdk.REDO",
                 tmp_path / "vm2" / "mydisk.vmdk.REDO_a01000"):
        subprocess.run(["qemu-img", "check", str(disk)], check=True, capture_output=True)
