"""Python binding for libvixDiskLib.so, the open VixDiskLib implementation.

The binding is ctypes over the library's C ABI -- the same functions,
structures and numbers C programs use -- with a Pythonic layer on top::

    import vixdisklib as vdl

    with vdl.Library() as lib, lib.connect() as conn:      # log lines go to logging ("vixdisklib")
        conn.create("/tmp/d.vmdk", 64 * 2048)               # 64 MiB monolithicSparse, in sectors
        with conn.open("/tmp/d.vmdk") as disk:
            disk.write(0, b"\\xab" * 512)
            buf = bytearray(4096)
            disk.readinto(0, buf)                           # no copies; numpy arrays work too
            future = disk.submit_read(8, 8)                 # ReadAsync -> concurrent.futures.Future
            for area in disk.allocated_areas():            # QueryAllocatedBlocks, lazily
                print(area.offset, area.length)
            print(future.result()[:4], disk.info().capacity)

Failures raise :class:`VixError` (``code``, ``name``, ``text``, ``function``,
``filename``), an :class:`OSError` with ``errno`` set: ``except FileNotFoundError``
works.  Disk types, adapter types, open flags and transport modes are enums
(:class:`DiskType`, :class:`AdapterType`, :class:`OpenFlag`, :class:`TransportMode`);
plain ints and strings work too.  docs/python.md is the guide.

Modules: :mod:`vixdisklib._abi` (raw types, structures, function table,
loader), :mod:`vixdisklib.errors`, :mod:`vixdisklib.library` (Library,
Connection), :mod:`vixdisklib.disk` (Disk) and :mod:`vixdisklib.examples`.
Raw calls stay available: ``dll = vdl.load(); dll.VixDiskLib_Read(h, 0, 1, buf)``.

The library is found through ``$VIXDISKLIB_LIB``, then the copy bundled into
the wheel, then a source checkout's ``target/``, then the system loader's
``libvixDiskLib.so.8`` (see :mod:`vixdisklib._abi`).
"""

from ._abi import (
    BUNDLED_DIR,
    FUNCTIONS,
    LIB_NAME,
    STRUCT_SIZES,
    SYSTEM_LIB_NAME,
    Bool,
    VixDiskLibAdapterType,
    VixDiskLibBlock,
    VixDiskLibBlockList,
    VixDiskLibCompletionCB,
    VixDiskLibConnection,
    VixDiskLibConnectParams,
    VixDiskLibCreateParams,
    VixDiskLibCreds,
    VixDiskLibDiskChangeInfo,
    VixDiskLibDiskType,
    VixDiskLibDLL,
    VixDiskLibGenericLogFunc,
    VixDiskLibGeometry,
    VixDiskLibHandle,
    VixDiskLibInfo,
    VixDiskLibOpenParams,
    VixDiskLibProgressFunc,
    VixDiskLibQueryChangedAreaParams,
    VixDiskLibSectorType,
    c_VixError,
    declare,
    find_library,
    library_candidates,
    load,
)
from ._async import AsyncRequest
from ._callbacks import LogCallback, ProgressCallback, format_va_list
from ._codes import *  # noqa: F401,F403 -- every VIX_* error code
from ._constants import *  # noqa: F401,F403 -- every VIXDISKLIB_* constant
from ._enums import AdapterType, DiskType, OpenFlag, TransportMode
from ._paths import path_bytes as _path_bytes  # noqa: F401 -- the single-file binding's helper
from .disk import Area, Disk, DiskInfo, iter_chunks, windowed_areas
from .errors import (
    ERROR_CODES,
    ERROR_NAMES,
    VIX_ERROR_CODE,
    VIX_FAILED,
    VIX_SUCCEEDED,
    VixError,
    VixErrorException,
    check,
    error_text,
)
from .library import Connection, Library
from . import _codes, _constants

# Private helpers of the single-file binding that callers may still use.
_check = check

#: The package version: the library version it is built with (Cargo.toml).
__version__ = "8.0.3"

__all__ = [
    "Area", "AsyncRequest", "BUNDLED_DIR", "Bool", "Connection", "Disk", "DiskInfo", "ERROR_CODES",
    "ERROR_NAMES", "FUNCTIONS", "LIB_NAME", "Library", "LogCallback", "ProgressCallback", "STRUCT_SIZES",
    "SYSTEM_LIB_NAME", "VIX_ERROR_CODE", "VIX_FAILED", "VIX_SUCCEEDED", "VixDiskLibAdapterType",
    "VixDiskLibBlock", "VixDiskLibBlockList", "VixDiskLibCompletionCB", "VixDiskLibConnectParams",
    "VixDiskLibConnection", "VixDiskLibCreateParams", "VixDiskLibCreds", "VixDiskLibDLL",
    "VixDiskLibDiskChangeInfo", "VixDiskLibDiskType", "VixDiskLibGenericLogFunc", "VixDiskLibGeometry",
    "VixDiskLibHandle",
    "VixDiskLibInfo", "VixDiskLibOpenParams", "VixDiskLibProgressFunc", "VixDiskLibQueryChangedAreaParams",
    "VixDiskLibSectorType", "VixError", "VixErrorException",
    "c_VixError", "check", "declare", "error_text", "find_library", "format_va_list", "iter_chunks",
    "library_candidates", "load", "windowed_areas",
    "AdapterType", "DiskType", "OpenFlag", "TransportMode", "__version__",
    *sorted(n for n in vars(_codes) if n.startswith("VIX_")),
    *sorted(n for n in vars(_constants) if n.startswith("VIXDISKLIB_")),
]
