"""Seed scenario "Sharing Virtual Disk Base Images": one read-only base, many machines.

The Python twin of ``c_examples/shared_base.c``: build a base disk, keep an
undoable session's redo log (``mydisk.vmdk.REDO``) and use it as the disk,
protect the base (mode 0444), give two more machines their own redo
directories, then let one commit its nested session into its own redo log,
one discard its session, and one run nonpersistent -- while the base never
changes.  Our additions (``include/vixDiskLibExt.h``) are called through
ctypes: ``VixDiskLibExt_Commit`` and ``VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT``.

Run it::

    python3 -m vixdisklib.examples.shared_base DIR
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import vixdisklib as vdl
from vixdisklib.errors import check

#: Capacity of the base and every redo log (16 MiB), in sectors.
CAPACITY = 16 * 2048
#: Open flag of our extension header: writes go to a private redo log that vanishes at Close.
VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT = 1 << 24


def fill(sectors: int, byte: int) -> bytes:
    """``sectors`` sectors of ``byte``."""
    return bytes([byte]) * (sectors * vdl.VIXDISKLIB_SECTOR_SIZE)


def commit(conn: vdl.Connection, child: Path) -> None:
    """``VixDiskLibExt_Commit``: fold the redo log ``child`` into its parent."""
    fn = conn.lib.dll.VixDiskLibExt_Commit
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_uint64
    check(conn.lib.dll, fn(conn.handle, os.fsencode(child), None, None), "VixDiskLibExt_Commit")


def sha256(path: Path) -> str:
    """Digest of a file, to show the base never changes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(conn: vdl.Connection, top: Path) -> dict[str, bytes]:
    """Replay the seed in ``top``; returns what each machine reads at its first sector."""
    base = top / "mydisk.vmdk"
    conn.create(base, CAPACITY)
    with conn.open(base) as disk:
        disk.write(0, fill(2048, 0xB0))
    print(f"base {base.name}: 1 MiB installed")
    # Undoable session kept; the kept redo log becomes the machine's disk.
    redo = top / "mydisk.vmdk.REDO"
    with conn.open(base) as disk:
        disk.create_child(redo)
    print(f"machine 1 keeps {redo.name} and uses it as its disk")
    os.chmod(base, 0o444)
    digest = sha256(base)
    print("base set read-only (0444)")
    machines: dict[str, Path] = {"vm1": redo}
    for name, suffix in (("vm2", "a01000"), ("vm3", "b02000")):
        (top / name).mkdir()
        log = top / name / f"mydisk.vmdk.REDO_{suffix}"
        with conn.open(base, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as disk:
            disk.create_child(log)
        machines[name] = log
        print(f"machine {name} gets {log.relative_to(top)}")
    # All three run at once: each writes its own redo log; the base is shared read-only.
    handles = {name: conn.open(path) for name, path in machines.items()}
    for i, (name, disk) in enumerate(handles.items()):
        disk.write(0, fill(1, 0xA0 + i))
    for disk in handles.values():
        disk.close()
    # vm2: a nested undoable session, committed into vm2's own redo log (never the base).
    nested = machines["vm2"].with_name(machines["vm2"].name + ".REDO_c03000")
    with conn.open(machines["vm2"]) as disk:
        disk.create_child(nested)
    with conn.open(nested) as disk:
        disk.write(1, fill(1, 0xC2))
    commit(conn, nested)
    print(f"vm2 committed {nested.name} into {machines['vm2'].name}")
    # vm3: the session is discarded.
    conn.unlink(machines["vm3"])
    print(f"vm3 discarded {machines['vm3'].name}")
    # A nonpersistent machine: writes vanish at Close.
    with conn.open(base, VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT) as disk:
        disk.write(0, fill(1, 0xEE))
        assert disk.read(0, 1) == fill(1, 0xEE)
    print("a nonpersistent machine wrote privately; its changes are gone")
    assert sha256(base) == digest, "the shared base changed"
    seen = {}
    for name in ("vm1", "vm2"):
        with conn.open(machines[name], vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as disk:
            seen[name] = disk.read(0, 2)
    with conn.open(base, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as disk:
        seen["base"] = disk.read(0, 2)
    print("base unchanged (sha256 identical)")
    return seen


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: replay the seed in DIR (which must not hold the disks yet)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with vdl.Library().init() as lib, lib.connect() as conn:
        run(conn, args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
