"""Enumerations over the C API's numbers: disk types, adapter types, open
flags and transport modes.  Each member is the C value itself (an ``int``,
or for transport modes the ``str`` the API uses), so a member and the plain
value are interchangeable everywhere: ``conn.create(p, n, DiskType.STREAM_OPTIMIZED)``
and ``conn.create(p, n, 6)`` do the same, and ``info().adapter_type == 3``."""

from __future__ import annotations

import enum
from typing import TypeVar, Union

from . import _constants as C


class DiskType(enum.IntEnum):
    """``VixDiskLibDiskType``: the layout of a disk's files."""

    MONOLITHIC_SPARSE = C.VIXDISKLIB_DISK_MONOLITHIC_SPARSE
    MONOLITHIC_FLAT = C.VIXDISKLIB_DISK_MONOLITHIC_FLAT
    SPLIT_SPARSE = C.VIXDISKLIB_DISK_SPLIT_SPARSE
    SPLIT_FLAT = C.VIXDISKLIB_DISK_SPLIT_FLAT
    VMFS_FLAT = C.VIXDISKLIB_DISK_VMFS_FLAT
    STREAM_OPTIMIZED = C.VIXDISKLIB_DISK_STREAM_OPTIMIZED
    VMFS_THIN = C.VIXDISKLIB_DISK_VMFS_THIN
    VMFS_SPARSE = C.VIXDISKLIB_DISK_VMFS_SPARSE
    UNKNOWN = C.VIXDISKLIB_DISK_UNKNOWN


class AdapterType(enum.IntEnum):
    """``VixDiskLibAdapterType``: the controller recorded in the descriptor
    (``ddb.adapterType``).  The default of every front end is SCSI_LSILOGIC."""

    IDE = C.VIXDISKLIB_ADAPTER_IDE
    SCSI_BUSLOGIC = C.VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC
    SCSI_LSILOGIC = C.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC
    UNKNOWN = C.VIXDISKLIB_ADAPTER_UNKNOWN


class OpenFlag(enum.IntFlag):
    """``VIXDISKLIB_FLAG_OPEN_*`` bits for :meth:`Connection.open`; combine
    with ``|`` (an :class:`enum.IntFlag`, so also a plain ``int``)."""

    UNBUFFERED = C.VIXDISKLIB_FLAG_OPEN_UNBUFFERED
    SINGLE_LINK = C.VIXDISKLIB_FLAG_OPEN_SINGLE_LINK
    READ_ONLY = C.VIXDISKLIB_FLAG_OPEN_READ_ONLY
    COMPRESSION_ZLIB = C.VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB
    COMPRESSION_FASTLZ = C.VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ
    COMPRESSION_SKIPZ = C.VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ


class TransportMode(str, enum.Enum):
    """A transport mode as ``ConnectEx``, ``ListTransportModes`` and
    ``GetTransportMode`` name it.  The API passes these as strings, so the
    members are strings: ``TransportMode.FILE == "file"``."""

    FILE = "file"
    NBD = "nbd"
    NBDSSL = "nbdssl"
    SAN = "san"
    HOTADD = "hotadd"

    def __str__(self) -> str:
        return str(self.value)


E = TypeVar("E", DiskType, AdapterType)


def known(kind: type[E], value: int) -> Union[E, int]:
    """``value`` as a member of ``kind`` when it is one, else the plain int
    (a newer library may report a value this package does not know)."""
    try:
        return kind(value)
    except ValueError:
        return value


def transport(name: str) -> Union[TransportMode, str]:
    """``name`` as a :class:`TransportMode` when it is one, else the string."""
    try:
        return TransportMode(name)
    except ValueError:
        return name
