"""The backup-and-recovery seed example (full, incrementals, differential,
newest-first recovery) runs in-process and as a command; its restores equal
the disk at T3 for qemu-img; and the change-tracking wrappers it uses
(Connection.set_change_tracking / commit, open(change_id=...), Disk.change_id,
Disk.changed_areas) answer as the C API does, refusals included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vixdisklib as vdl
from vdl_helpers import PYTHON_DIR, needs_qemu, qemu_check
from vixdisklib.examples import backup_recovery as ex

GRAIN_BYTES = ex.GRAIN * ex.SECTOR


@needs_qemu
@pytest.mark.parametrize("id_after", [False, True], ids=["id-before-snapshot", "id-after-snapshot-read-only"])
def test_backup_recovery_example(conn: vdl.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 id_after: bool) -> None:
    backups = ex.run(conn, tmp_path, id_after)
    out = capsys.readouterr().out
    base = tmp_path / "base.vmdk"
    # Only the allocated grains at T1, then only what changed.
    assert len(backups["full"].data) == ex.grains(ex.W0) * GRAIN_BYTES
    assert len(backups["incr2"].data) == ex.grains(ex.W1) * GRAIN_BYTES
    assert len(backups["incr3"].data) == ex.grains(ex.W2) * GRAIN_BYTES
    assert len(backups["diff3"].data) == ex.grains(ex.W1, ex.W2) * GRAIN_BYTES
    ids = [backups[k].change_id for k in ("full", "incr2", "incr3")]
    assert len(set(ids)) == 3 and backups["diff3"].change_id == ids[2]
    # Our own oracle run: both restores equal the base (the disk at T3) and not the disk now.
    for name in ("restored-incremental.vmdk", "restored-differential.vmdk"):
        restored = tmp_path / name
        qemu_check(restored)
        subprocess.run(["qemu-img", "compare", "-q", str(restored), str(base)], check=True)
        now = subprocess.run(["qemu-img", "compare", "-q", str(restored), str(tmp_path / "snapshot-T3.vmdk")])
        assert now.returncode == 1, "the VM's writes after T3 are not in the restore"
    # Snapshots T1 and T2 were deleted by Commit; T3's stays.
    assert not (tmp_path / "snapshot-T1.vmdk").exists() and not (tmp_path / "snapshot-T2.vmdk").exists()
    assert (tmp_path / "snapshot-T3.vmdk").exists()
    # Newest first: the full backup's step skips the grains T2 and T3 restored.
    skipped = (ex.grains(ex.W0) - ex.grains(ex.W0, ex.W1, ex.W2) + ex.grains(ex.W1, ex.W2)) * GRAIN_BYTES
    assert f"read {len(backups['full'].data) - skipped:8} of {len(backups['full'].data):8} bytes" in out, out
    assert out.count("identical to the disk at T3") == 2, out


def test_change_tracking_wrappers(conn: vdl.Connection, tmp_path: Path) -> None:
    disk_path, other = tmp_path / "d.vmdk", tmp_path / "o.vmdk"
    for p in (disk_path, other):
        conn.create(p, 8 * 2048)
    with conn.open(disk_path) as d:
        with pytest.raises(vdl.VixError) as e:
            _ = d.change_id
        assert e.value.name == "VIX_E_DISK_NOTSUPPORTED"
    conn.set_change_tracking(disk_path, True)
    conn.set_change_tracking(other, True)
    with conn.open(disk_path) as d:
        first = d.change_id
        d.write(300, b"\x01" * 512)  # grain 2
        d.write(8 * 2048 - 1, b"\x02" * 512)  # the last grain
        second = d.change_id
    assert first != second
    with conn.open(disk_path, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY, change_id=first) as d:
        assert d.since == first and d.change_id == second
        assert list(d.changed_areas()) == [vdl.Area(256, 128), vdl.Area(8 * 2048 - 128, 128)]
        # A range, clipped; another id through a second read-only handle; "*".
        assert list(d.changed_areas(start=280, count=100)) == [vdl.Area(280, 100)]
        assert list(d.changed_areas(second)) == []
        assert list(d.changed_areas("*")) == [vdl.Area(256, 128), vdl.Area(8 * 2048 - 128, 128)]
    with conn.open(other) as o:
        foreign = o.change_id
    with conn.open(disk_path, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY, change_id=foreign) as d:
        with pytest.raises(vdl.VixError) as e:
            list(d.changed_areas())
        assert e.value.name == "VIX_E_OBJECT_NOT_FOUND"
    with conn.open(disk_path) as d, pytest.raises(ValueError):
        d.changed_areas()
    # Commit through the connection: the child's writes and history go to the parent.
    with conn.open(disk_path) as d:
        d.create_child(tmp_path / "c.vmdk")
    with conn.open(tmp_path / "c.vmdk") as c:
        c.write(0, b"\x03" * 512)
    conn.commit(tmp_path / "c.vmdk")
    assert not (tmp_path / "c.vmdk").exists()
    with conn.open(disk_path, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY, change_id=second) as d:
        assert d.read(0, 1) == b"\x03" * 512
        assert list(d.changed_areas()) == [vdl.Area(0, 128)]
    conn.set_change_tracking(disk_path, False)
    with conn.open(disk_path, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY, change_id=second) as d:
        with pytest.raises(vdl.VixError) as e:
            list(d.changed_areas())
        assert e.value.name == "VIX_E_DISK_NOTSUPPORTED"


def test_backup_recovery_runs_as_a_command(lib_path: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "PYTHONDONTWRITEBYTECODE": "1"}
    if vdl.load().found_by != "bundled":
        env["VIXDISKLIB_LIB"] = lib_path
    p = subprocess.run([sys.executable, "-m", "vixdisklib.examples.backup_recovery", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "backup_recovery: all checks passed" in p.stdout, p.stdout
    assert "restore from full backup T1" in p.stdout, p.stdout
    assert p.stdout.count("identical to the disk at T3") == 4, p.stdout
    assert (tmp_path / "id-after-snapshot" / "restored-incremental.vmdk").exists()
