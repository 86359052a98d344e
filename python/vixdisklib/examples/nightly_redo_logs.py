"""Seed scenario, part 1: a base disk and nightly redo logs.

The Python twin of the first step of ``c_examples/nightly_backup.c``: create
a 64 MiB base disk holding 1 MiB of data, then each night add a redo log
(``CreateChild``) over the newest generation and write only to that child --
a new area each night plus one sector inside the base data.  Older
generations are never written again, so each one stays a readable
point-in-time image (see :mod:`vixdisklib.examples.past_generation`).

Run it::

    python3 -m vixdisklib.examples.nightly_redo_logs DIR [NIGHTS]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import vixdisklib as vdl

#: Capacity of the base disk and every redo log, in sectors (64 MiB).
CAPACITY = 64 * 2048
#: Nights written by default.
NIGHTS = 3
#: The base disk's data: (first sector, sectors, fill byte).
BASE_DATA = (0, 2048, 0xB0)


def night_writes(night: int) -> list[tuple[int, int, int]]:
    """What night ``night`` (1, 2, ...) writes: ``(first sector, sectors, fill byte)``."""
    return [
        (night * 4096, 128, 0xD0 + night),  # a new 64 KiB area each night
        (night, 1, 0xE0 + night),  # one sector over the base data
    ]


def generation_path(directory: Path, generation: int) -> Path:
    """File of generation ``generation``: 0 is the base, n the redo log of night n."""
    return directory / ("base.vmdk" if generation == 0 else f"base-{generation:06d}.vmdk")


def fill(sectors: int, byte: int) -> bytes:
    """``sectors`` sectors of ``byte``."""
    return bytes([byte]) * (sectors * vdl.VIXDISKLIB_SECTOR_SIZE)


def build_chain(conn: vdl.Connection, directory: Path, nights: int = NIGHTS,
                progress: Optional[vdl.ProgressCallback] = None) -> list[Path]:
    """Create the base disk and ``nights`` redo logs in ``directory``; returns
    the generations, oldest first.  ``progress(percent)`` follows each
    Create/CreateChild."""
    base = generation_path(directory, 0)
    conn.create(base, CAPACITY, hw_version=vdl.VIXDISKLIB_HWVERSION_WORKSTATION_6, progress=progress)
    with conn.open(base) as disk:
        start, count, byte = BASE_DATA
        disk.write(start, fill(count, byte))
    generations = [base]
    for night in range(1, nights + 1):
        child = generation_path(directory, night)
        with conn.open(generations[-1]) as parent:
            parent.create_child(child, progress=progress)
        with conn.open(child) as disk:
            # Both writes in flight at once; each future resolves in VixDiskLib's completion callback.
            futures = [disk.submit_write(start, fill(count, byte)) for start, count, byte in night_writes(night)]
            for f in futures:
                f.result()
        generations.append(child)
    return generations


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: build the chain in DIR and print each generation."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("dir", type=Path)
    ap.add_argument("nights", type=int, nargs="?", default=NIGHTS)
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with vdl.Library() as lib, lib.connect() as conn:
        for gen, path in enumerate(build_chain(conn, args.dir, args.nights)):
            with conn.open(path, vdl.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as disk:
                info = disk.info()
            print(f"generation {gen}: {path.name}, {info.num_links} link(s), parent {info.parent_file_name_hint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
