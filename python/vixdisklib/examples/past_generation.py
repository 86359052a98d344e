"""Seed scenario, part 2: read a past generation.

Open generation N of the nightly chain (:mod:`nightly_redo_logs`) read-only
and check that it reads as that night: its own writes and those of earlier
nights are there, later nights' are not.  The allocated areas come from
``QueryAllocatedBlocks`` (lazily, through :meth:`Disk.allocated_areas`) and
are read with ``ReadAsync`` straight into one preallocated buffer
(:meth:`Disk.submit_readinto`: no copies).

Run it (builds the chain first when DIR has none)::

    python3 -m vixdisklib.examples.past_generation DIR [N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Optional, Sequence

import vixdisklib as vdl
from vixdisklib.examples.nightly_redo_logs import (
    BASE_DATA, CAPACITY, NIGHTS, build_chain, generation_path, night_writes)

SECTOR = vdl.VIXDISKLIB_SECTOR_SIZE


def expected_byte(generation: int, sector: int) -> int:
    """The byte every position of ``sector`` holds in generation ``generation``."""
    value = 0
    start, count, byte = BASE_DATA
    if start <= sector < start + count:
        value = byte
    for night in range(1, generation + 1):
        for start, count, byte in night_writes(night):
            if start <= sector < start + count:
                value = byte
    return value


@dataclasses.dataclass
class GenerationReport:
    """What :func:`inspect_generation` found."""

    path: Path
    num_links: int
    areas: list[vdl.Area]
    allocated_sectors: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        """True when every checked sector held what the generation should."""
        return not self.mismatches


def inspect_generation(conn: vdl.Connection, directory: Path, generation: int) -> GenerationReport:
    """Open generation ``generation`` read-only, read all its allocated areas
    and compare every sector with :func:`expected_byte`; sectors outside the
    areas must read as zeros (spot-checked at each later night's area)."""
    path = generation_path(directory, generation)
    with conn.open(path, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as disk:
        num_links = disk.info().num_links
        areas = list(disk.allocated_areas())
        total = sum(a.length for a in areas)
        buf = bytearray(total * SECTOR)
        view = memoryview(buf)
        futures: list[Future[int]] = []
        pos = 0
        for a in areas:  # every area in flight at once, each into its own slice of buf
            futures.append(disk.submit_readinto(a.offset, view[pos * SECTOR:(pos + a.length) * SECTOR]))
            pos += a.length
        for f in futures:
            f.result()
        mismatches = []
        pos = 0
        for a in areas:
            for i in range(a.length):
                want = bytes([expected_byte(generation, a.offset + i)]) * SECTOR
                if view[(pos + i) * SECTOR:(pos + i + 1) * SECTOR] != want:
                    mismatches.append(f"sector {a.offset + i}: expected 0x{want[0]:02x}")
            pos += a.length
        for later in range(generation + 1, NIGHTS + 2):
            for start, _count, _byte in night_writes(later):
                if start < CAPACITY and disk.read(start, 1) != bytes([expected_byte(generation, start)]) * SECTOR:
                    mismatches.append(f"sector {start}: night {later}'s data leaked into generation {generation}")
    return GenerationReport(path, num_links, areas, total, mismatches)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: inspect generation N of the chain in DIR; exit 1 on a mismatch."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("dir", type=Path)
    ap.add_argument("generation", type=int, nargs="?", default=1)
    args = ap.parse_args(argv)
    with vdl.Library() as lib, lib.connect() as conn:
        if not generation_path(args.dir, 0).exists():
            args.dir.mkdir(parents=True, exist_ok=True)
            build_chain(conn, args.dir)
        report = inspect_generation(conn, args.dir, args.generation)
    print(f"generation {args.generation} ({report.path.name}): {report.num_links} links, "
          f"{report.allocated_sectors} allocated sectors in {len(report.areas)} areas")
    for m in report.mismatches:
        print("MISMATCH", m)
    print("past_generation: all checks passed" if report.ok else "past_generation: FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
