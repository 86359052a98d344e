"""Seed scenario "Backup and Recovery Example": full, incremental and differential backups with change ids.

The Python twin of ``c_examples/backup_recovery.c``.  A change-tracked 64 MiB
disk is backed up three times.  Each backup takes a snapshot (``CreateChild``:
the base freezes and the "VM" writes to the child), records the change id of
the frozen base, reads it, and deletes the snapshot (``VixDiskLibExt_Commit``
folds the child back into the base):

* T1: full backup of the blocks ``QueryAllocatedBlocks`` reports (changeId_T1);
* T2: incremental, ``OpenEx(changeId_T1)`` + ``QueryChangedAreas``;
* T3: incremental since T2, and a differential since T1; this snapshot stays,
  so the base is the disk as it was at T3.

The change id of each snapshot is taken one of two ways (``main`` runs both):
on the writable handle just before ``CreateChild``, or after it, from a
read-only open of the frozen disk, as backup programs do.  Both give the id
of the frozen content.

At T4 the disk is recovered twice into new disks, newest backup first,
skipping sectors already restored (T3, T2, T1; and the differential T3, T1),
and each is compared with the disk at T3 byte for byte, with ``qemu-img
compare`` when it is installed and through the library.  Every step prints
the bytes it read and wrote.

Run it::

    python3 -m vixdisklib.examples.backup_recovery DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import vixdisklib as vdl

#: Capacity of the disk (64 MiB), in sectors.
CAPACITY = 64 * 2048
#: Sectors per 64 KiB grain: the granularity of allocated and changed areas.
GRAIN = 128
SECTOR = vdl.VIXDISKLIB_SECTOR_SIZE

#: One write of the "VM": ``(sector, count, byte)``.
Fill = tuple[int, int, int]

#: Before T1 (into the base), between T1 and T2, between T2 and T3, after T3.
W0: list[Fill] = [(0, 2048, 0x10), (20000, 100, 0x11), (CAPACITY - 8, 8, 0x12)]
W1: list[Fill] = [(4096, 300, 0x21), (10, 5, 0x22), (70000, 1, 0x23)]
W2: list[Fill] = [(4100, 50, 0x31), (90000, 256, 0x32)]
W3: list[Fill] = [(50000, 64, 0x41), (0, 1, 0x42)]


@dataclasses.dataclass
class Backup:
    """A backup: the areas it holds and their data back to back."""

    name: str
    change_id: str = ""
    areas: list[vdl.Area] = dataclasses.field(default_factory=list)
    data: bytearray = dataclasses.field(default_factory=bytearray)

    def add(self, disk: vdl.Disk, area: vdl.Area) -> None:
        """Read ``area`` of ``disk`` into the backup."""
        self.areas.append(area)
        self.data += disk.read(area.offset, area.length)

    def report(self) -> None:
        """Print what the step moved."""
        print(f"{self.name:<28} {len(self.areas):3} area(s): read {len(self.data):8} bytes from the disk, "
              f"wrote {len(self.data):8} bytes to the backup")


def grains(*writes: list[Fill]) -> int:
    """64 KiB grains the writes touch, each counted once."""
    touched: set[int] = set()
    for fills in writes:
        for sector, count, _byte in fills:
            touched.update(range(sector // GRAIN, -(-(sector + count) // GRAIN)))
    return len(touched)


def write_fills(conn: vdl.Connection, path: Path, fills: list[Fill]) -> None:
    """The "VM" writes ``fills`` into the disk at ``path``."""
    with conn.open(path) as disk:
        for sector, count, byte in fills:
            disk.write(sector, bytes([byte]) * (count * SECTOR))


def snapshot(conn: vdl.Connection, base: Path, snap: Path, id_after: bool = False) -> str:
    """Freeze ``base`` under the redo log ``snap``; returns the frozen content's change id,
    taken on the writable handle before ``CreateChild`` or, with ``id_after``, from a
    read-only open of the frozen disk afterwards."""
    with conn.open(base) as disk:
        change_id = "" if id_after else disk.change_id
        disk.create_child(snap)
    if id_after:
        with conn.open(base, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as frozen:
            change_id = frozen.change_id
    return change_id


def full_backup(conn: vdl.Connection, base: Path, change_id: str) -> Backup:
    """Every block QueryAllocatedBlocks reports on the frozen base."""
    backup = Backup("full backup T1", change_id)
    with conn.open(base, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as disk:
        for area in disk.allocated_areas(chunk=GRAIN):
            backup.add(disk, area)
    backup.report()
    return backup


def changed_backup(conn: vdl.Connection, base: Path, name: str, since: str, change_id: str) -> Backup:
    """What changed on the frozen base since ``since`` (OpenEx + QueryChangedAreas)."""
    backup = Backup(name, change_id)
    with conn.open(base, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY, change_id=since) as disk:
        for area in disk.changed_areas():
            backup.add(disk, area)
    backup.report()
    return backup


def restore(conn: vdl.Connection, path: Path, newest_first: Sequence[Backup]) -> int:
    """Restore the backups, newest first, into a new disk at ``path``: each
    sector comes from the newest backup that holds it, and an older backup
    skips the sectors already restored.  Returns the bytes written."""
    conn.create(path, CAPACITY, adapter_type=vdl.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                hw_version=vdl.VIXDISKLIB_HWVERSION_WORKSTATION_6)
    done = bytearray(CAPACITY)  # 1 = restored
    total = 0
    with conn.open(path) as disk:
        for backup in newest_first:
            moved = 0
            at = 0
            for area in backup.areas:
                s = area.offset
                while s < area.end:
                    run_end = done.find(1, s, area.end)
                    run_end = area.end if run_end < 0 else run_end
                    if run_end > s:
                        lo = at + (s - area.offset) * SECTOR
                        disk.write(s, backup.data[lo:lo + (run_end - s) * SECTOR])
                        done[s:run_end] = b"\x01" * (run_end - s)
                        moved += (run_end - s) * SECTOR
                    nxt = done.find(0, run_end, area.end)
                    s = area.end if nxt < 0 else nxt
                at += area.length * SECTOR
            print(f"  restore from {backup.name:<28} read {moved:8} of {len(backup.data):8} bytes, "
                  f"wrote {moved:8} bytes into {path.name}")
            total += moved
    return total


def verify(conn: vdl.Connection, restored: Path, reference: Path) -> None:
    """``restored`` reads like ``reference`` (the disk at T3): through the
    library, and byte for byte with ``qemu-img compare`` when installed."""
    with conn.open(restored, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as a, \
            conn.open(reference, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY | vdl.VIXDISKLIB_FLAG_OPEN_SINGLE_LINK) as b:
        for start, count in vdl.iter_chunks(CAPACITY, 2048):
            if a.read(start, count) != b.read(start, count):
                raise AssertionError(f"{restored.name} differs from the disk at T3 near sector {start}")
    if shutil.which("qemu-img") is None:
        print(f"{restored.name}: equal to the disk at T3 (qemu-img not installed: library only)")
        return
    p = subprocess.run(["qemu-img", "compare", "-f", "vmdk", "-F", "vmdk", str(restored), str(reference)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"qemu-img compare {restored.name}: {p.stdout}{p.stderr}")
    print(f"qemu-img compare {restored.name}: identical to the disk at T3")


def expect(cond: bool, what: str) -> None:
    """A check of the scenario (an AssertionError names it)."""
    if not cond:
        raise AssertionError(what)


def run(conn: vdl.Connection, top: Path, id_after: bool = False) -> dict[str, Backup]:
    """Replay the seed in ``top``; returns the backups by name (full, incr2, incr3, diff3).
    ``id_after``: take each snapshot's id from a read-only open after ``CreateChild``."""
    print(f"== change ids taken {'after CreateChild, read-only' if id_after else 'before CreateChild'} ==")
    base = top / "base.vmdk"
    snaps = [top / f"snapshot-T{i}.vmdk" for i in (1, 2, 3)]
    conn.create(base, CAPACITY, adapter_type=vdl.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                hw_version=vdl.VIXDISKLIB_HWVERSION_WORKSTATION_6)
    conn.set_change_tracking(base, True)
    write_fills(conn, base, W0)

    # T1: snapshot, full backup of the frozen base, the VM writes on, snapshot deleted.
    id_t1 = snapshot(conn, base, snaps[0], id_after)
    print(f"changeId_T1 = {id_t1}")
    full = full_backup(conn, base, id_t1)
    write_fills(conn, snaps[0], W1)
    conn.commit(snaps[0])
    expect(len(full.data) == grains(W0) * GRAIN * SECTOR, "the full backup holds the allocated grains")

    # T2: incremental since T1.
    id_t2 = snapshot(conn, base, snaps[1], id_after)
    print(f"changeId_T2 = {id_t2}")
    incr2 = changed_backup(conn, base, "incremental T2 (since T1)", id_t1, id_t2)
    write_fills(conn, snaps[1], W2)
    conn.commit(snaps[1])
    expect(len(incr2.data) == grains(W1) * GRAIN * SECTOR, "T2 holds the grains written after T1")

    # T3: incremental since T2 and differential since T1; the snapshot stays.
    id_t3 = snapshot(conn, base, snaps[2], id_after)
    print(f"changeId_T3 = {id_t3}")
    incr3 = changed_backup(conn, base, "incremental T3 (since T2)", id_t2, id_t3)
    diff3 = changed_backup(conn, base, "differential T3 (since T1)", id_t1, id_t3)
    write_fills(conn, snaps[2], W3)
    expect(len(incr3.data) == grains(W2) * GRAIN * SECTOR, "T3 holds the grains written after T2")
    expect(len(diff3.data) == grains(W1, W2) * GRAIN * SECTOR, "the differential holds everything since T1")
    expect(len({id_t1, id_t2, id_t3}) == 3, "each snapshot has its own change id")

    # T4: disaster recovery of the disk at T3, newest backup first.
    for name, chain in (("restored-incremental.vmdk", [incr3, incr2, full]),
                        ("restored-differential.vmdk", [diff3, full])):
        target = top / name
        print(f"recovery into {name}: " + ", then ".join(b.name for b in chain))
        restore(conn, target, chain)
        verify(conn, target, base)
    return {"full": full, "incr2": incr2, "incr3": incr3, "diff3": diff3}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: replay the seed twice in DIR (which must not hold the disks yet): with
    the ids taken before CreateChild, then after it from read-only opens."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with vdl.Library().init() as lib, lib.connect() as conn:
        try:
            for id_after, sub in ((False, "id-before-snapshot"), (True, "id-after-snapshot")):
                top = args.dir / sub
                top.mkdir(parents=True, exist_ok=True)
                run(conn, top, id_after)
        except (AssertionError, vdl.VixError) as e:
            print(f"backup_recovery: FAILED: {e}")
            return 1
    print("backup_recovery: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
