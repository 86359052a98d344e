"""The raw C ABI: scalar types, constants, callback types, structures, the
function table and the loader that finds and declares ``libvixDiskLib.so``.

Nothing here is Pythonic on purpose: a :class:`VixDiskLibDLL` returned by
:func:`load` is a :class:`ctypes.CDLL` whose 50 ``VixDiskLib_*`` functions
(and our 4 ``VixDiskLibExt_*`` ones) carry ``argtypes``/``restype``
from :data:`FUNCTIONS`, so calls through it exercise exactly the ABI C programs
link against.  The structures mirror the VDDK 9.0 layouts on x86-64 Linux (checked against ``include/vixDiskLib.h``
by ``tests/test_header.py``).

Where the library comes from (first match wins, see :func:`library_candidates`):

1. ``$VIXDISKLIB_LIB`` -- an explicit file; an error if it does not exist;
2. the copy bundled into the installed package (``vixdisklib/_lib/``), put
   there by the wheel build from ``cargo build --release``;
3. a source checkout's ``$CARGO_TARGET_DIR`` or ``target/{release,debug}``
   (only when this package sits in the repository's ``python/`` directory);
4. ``libvixDiskLib.so.8`` through the system's dynamic loader
   (``LD_LIBRARY_PATH``, ``ld.so.cache``), e.g. after ``cmake --install``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    c_char,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_ubyte,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Final, Optional, Union as TUnion

# ---------------------------------------------------------------------------
# Scalar types
# ---------------------------------------------------------------------------

#: ``typedef uint64 VixError;`` (named ``c_VixError`` so that ``VixError`` can
#: be the Python exception).
c_VixError = c_uint64
#: Sector numbers and counts (512-byte sectors).
VixDiskLibSectorType = c_uint64
#: ``typedef char Bool;`` -- one byte, TRUE = 1, FALSE = 0.
Bool = c_ubyte
#: Opaque disk handle.
VixDiskLibHandle = c_void_p
#: Opaque connection handle.
VixDiskLibConnection = c_void_p
#: C enums are 4-byte ints.
VixDiskLibDiskType = c_int
VixDiskLibAdapterType = c_int
VixDiskLibCredType = c_int
VixDiskLibSpecType = c_int

# ---------------------------------------------------------------------------
# Constants (VDDK 7.0.2 / 8.0.3 header values)
# ---------------------------------------------------------------------------

from ._constants import *  # noqa: E402,F401,F403 -- the VIXDISKLIB_* constants are part of the ABI

# ---------------------------------------------------------------------------
# Callback types
# ---------------------------------------------------------------------------


def _nullable(functype: Any) -> Any:
    """Subclass a CFUNCTYPE so that ``None`` may be passed for NULL."""

    class Nullable(functype):  # type: ignore[misc]
        _flags_ = functype._flags_
        _restype_ = functype._restype_
        _argtypes_ = functype._argtypes_

        @classmethod
        def from_param(cls, obj: Any) -> Any:
            if obj is None:
                return c_void_p(None)
            return functype.from_param(obj)

    return Nullable


#: ``typedef void (VixDiskLibGenericLogFunc)(const char *fmt, va_list args);``
#: on x86-64 a ``va_list`` parameter is a pointer to ``__va_list_tag``.
VixDiskLibGenericLogFunc: Any = _nullable(CFUNCTYPE(None, c_char_p, c_void_p))
#: ``typedef Bool (*VixDiskLibProgressFunc)(void *progressData, int percentCompleted);``
VixDiskLibProgressFunc: Any = _nullable(CFUNCTYPE(Bool, c_void_p, c_int))
#: ``typedef void (*VixDiskLibCompletionCB)(void *cbData, VixError result);``
VixDiskLibCompletionCB: Any = _nullable(CFUNCTYPE(None, c_void_p, c_VixError))

# ---------------------------------------------------------------------------
# Structures (natural alignment, x86-64 LP64)
# ---------------------------------------------------------------------------


class VixDiskLibGeometry(Structure):
    """Cylinders/heads/sectors, 12 bytes."""

    _fields_ = [("cylinders", c_uint32), ("heads", c_uint32), ("sectors", c_uint32)]


class VixDiskLibUidPasswdCreds(Structure):
    """User name + password credentials."""

    _fields_ = [("userName", c_char_p), ("password", c_char_p)]


class VixDiskLibSessionIdCreds(Structure):
    """Session-cookie credentials."""

    _fields_ = [("cookie", c_char_p), ("userName", c_char_p), ("key", c_char_p)]


class VixDiskLibCreds(Union):
    """The credential union of the connect parameters."""

    _fields_ = [
        ("uid", VixDiskLibUidPasswdCreds),
        ("sessionId", VixDiskLibSessionIdCreds),
        ("ticketId", c_void_p),  # struct VixDiskLibTicketIdCreds *
    ]


class VixDiskLibVStorageObjectSpec(Structure):
    """First-class-disk specification (remote only)."""

    _fields_ = [("id", c_char_p), ("datastoreMoRef", c_char_p), ("ssId", c_char_p)]


class VixDiskLibDatastoreSpec(Structure):
    """Datastore specification (VDDK 8.0.1, remote only)."""

    _fields_ = [("datastoreMoRef", c_char_p), ("diskFolder", c_char_p)]


class VixDiskLibConnectParamsSpec(Union):
    """The spec union of the connect parameters."""

    _fields_ = [
        ("vStorageObjSpec", VixDiskLibVStorageObjectSpec),
        ("dsSpec", VixDiskLibDatastoreSpec),
    ]


class VixDiskLibConnectParams(Structure):
    """Connection parameters, 136 bytes (VDDK 9.0 layout; 8.x clients pass the
    first 128 bytes, without ``sslCertificate``)."""

    _fields_ = [
        ("vmxSpec", c_char_p),  # 0
        ("serverName", c_char_p),  # 8
        ("thumbPrint", c_char_p),  # 16
        ("privateUse", c_long),  # 24
        ("credType", VixDiskLibCredType),  # 32
        ("creds", VixDiskLibCreds),  # 40
        ("port", c_uint32),  # 64
        ("nfcHostPort", c_uint32),  # 68
        ("vimApiVer", c_char_p),  # 72
        ("reserved", c_char * 8),  # 80
        ("state", c_void_p),  # 88  VixDiskLibConnectParamsState *
        ("spec", VixDiskLibConnectParamsSpec),  # 96
        ("specType", VixDiskLibSpecType),  # 120
        ("sslCertificate", c_char_p),  # 128  (VDDK 9.0)
    ]


class VixDiskLibCreateParams(Structure):
    """Create/Clone parameters, 32 bytes (VDDK 7.0+ layout with the sector sizes)."""

    _fields_ = [
        ("diskType", VixDiskLibDiskType),  # 0
        ("adapterType", VixDiskLibAdapterType),  # 4
        ("hwVersion", c_uint16),  # 8
        ("capacity", VixDiskLibSectorType),  # 16
        ("logicalSectorSize", c_uint32),  # 24
        ("physicalSectorSize", c_uint32),  # 28
    ]


class VixDiskLibInfo(Structure):
    """GetInfo's result, 64 bytes (VDDK 7.0+ layout with the sector sizes)."""

    _fields_ = [
        ("biosGeo", VixDiskLibGeometry),  # 0
        ("physGeo", VixDiskLibGeometry),  # 12
        ("capacity", VixDiskLibSectorType),  # 24
        ("adapterType", VixDiskLibAdapterType),  # 32
        ("numLinks", c_int),  # 36
        ("parentFileNameHint", c_char_p),  # 40
        ("uuid", c_char_p),  # 48
        ("logicalSectorSize", c_uint32),  # 56
        ("physicalSectorSize", c_uint32),  # 60
    ]


class VixDiskLibBlock(Structure):
    """One (offset, length) run in sectors, 16 bytes."""

    _fields_ = [("offset", VixDiskLibSectorType), ("length", VixDiskLibSectorType)]


class VixDiskLibBlockList(Structure):
    """``{ uint32 numBlocks; VixDiskLibBlock blocks[1]; }`` -- 24 bytes.

    The array really has ``numBlocks`` entries; use :meth:`block_array`.
    """

    _fields_ = [("numBlocks", c_uint32), ("blocks", VixDiskLibBlock * 1)]

    def block_array(self) -> list[VixDiskLibBlock]:
        """All ``numBlocks`` entries (the C flexible array member)."""
        n = int(self.numBlocks)
        arr_type = VixDiskLibBlock * max(n, 1)
        offset = type(self).blocks.offset
        return list(arr_type.from_address(ctypes.addressof(self) + offset))[:n]


class VixDiskLibOpenParams(Structure):
    """OpenEx's parameters (VDDK 9.0), 24 bytes."""

    _fields_ = [("path", c_char_p), ("flags", c_uint32), ("changeId", c_char_p)]


class VixDiskLibQueryChangedAreaParams(Structure):
    """QueryChangedAreas' parameters (VDDK 9.0), 8 bytes."""

    _fields_ = [("startOffset", VixDiskLibSectorType)]


class VixDiskLibDiskChangeInfo(Structure):
    """One answer of QueryChangedAreas (VDDK 9.0), 24 bytes."""

    _fields_ = [
        ("startOffset", VixDiskLibSectorType),
        ("length", VixDiskLibSectorType),
        ("areas", POINTER(VixDiskLibBlockList)),
    ]


#: Expected ``sizeof`` of each structure (checked at import and against the header).
STRUCT_SIZES: Final = {
    "VixDiskLibConnectParams": 136,
    "VixDiskLibCreateParams": 32,
    "VixDiskLibInfo": 64,
    "VixDiskLibGeometry": 12,
    "VixDiskLibBlock": 16,
    "VixDiskLibBlockList": 24,
    "VixDiskLibOpenParams": 24,
    "VixDiskLibQueryChangedAreaParams": 8,
    "VixDiskLibDiskChangeInfo": 24,
}
for _sname, _size in STRUCT_SIZES.items():
    assert ctypes.sizeof(globals()[_sname]) == _size, (_sname, ctypes.sizeof(globals()[_sname]))

# ---------------------------------------------------------------------------
# Function prototypes: name -> (restype, argtypes).  54 symbols: the 43
# public VDDK 8 functions, the 4 of VDDK 9.0, SetInjectedFault,
# IsFaultEnabled_Func, SetConfigOption, and our 4 VixDiskLibExt_* functions
# (Commit and change tracking, declared in vixDiskLibExt.h).
# ---------------------------------------------------------------------------

_PConnectParams = POINTER(VixDiskLibConnectParams)
_PCreateParams = POINTER(VixDiskLibCreateParams)
_Sector = VixDiskLibSectorType
_Progress = VixDiskLibProgressFunc
_Log = VixDiskLibGenericLogFunc

#: ``name -> (restype, argtypes)`` for every exported function.
FUNCTIONS: Final[dict[str, tuple[Any, list[Any]]]] = {
    # lifecycle
    "VixDiskLib_InitEx": (c_VixError, [c_uint32, c_uint32, _Log, _Log, _Log, c_char_p, c_char_p]),
    "VixDiskLib_Init": (c_VixError, [c_uint32, c_uint32, _Log, _Log, _Log, c_char_p]),
    "VixDiskLib_Exit": (None, []),
    "VixDiskLib_ListTransportModes": (c_char_p, []),
    # connection
    "VixDiskLib_AllocateConnectParams": (_PConnectParams, []),
    "VixDiskLib_FreeConnectParams": (None, [_PConnectParams]),
    "VixDiskLib_Connect": (c_VixError, [_PConnectParams, POINTER(VixDiskLibConnection)]),
    "VixDiskLib_ConnectEx": (c_VixError, [_PConnectParams, Bool, c_char_p, c_char_p, POINTER(VixDiskLibConnection)]),
    "VixDiskLib_Disconnect": (c_VixError, [VixDiskLibConnection]),
    "VixDiskLib_Cleanup": (c_VixError, [_PConnectParams, POINTER(c_uint32), POINTER(c_uint32)]),
    "VixDiskLib_PrepareForAccess": (c_VixError, [_PConnectParams, c_char_p]),
    "VixDiskLib_EndAccess": (c_VixError, [_PConnectParams, c_char_p]),
    "VixDiskLib_GetConnectParams": (c_VixError, [VixDiskLibConnection, POINTER(_PConnectParams)]),
    # disk lifecycle / info
    "VixDiskLib_Create": (c_VixError, [VixDiskLibConnection, c_char_p, _PCreateParams, _Progress, c_void_p]),
    "VixDiskLib_CreateChild": (c_VixError, [VixDiskLibHandle, c_char_p, VixDiskLibDiskType, _Progress, c_void_p]),
    "VixDiskLib_Open": (c_VixError, [VixDiskLibConnection, c_char_p, c_uint32, POINTER(VixDiskLibHandle)]),
    "VixDiskLib_Close": (c_VixError, [VixDiskLibHandle]),
    "VixDiskLib_GetInfo": (c_VixError, [VixDiskLibHandle, POINTER(POINTER(VixDiskLibInfo))]),
    "VixDiskLib_FreeInfo": (None, [POINTER(VixDiskLibInfo)]),
    "VixDiskLib_GetTransportMode": (c_char_p, [VixDiskLibHandle]),
    # I/O (buffers are void * so bytes, bytearrays, ctypes arrays and None all work)
    "VixDiskLib_Read": (c_VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p]),
    "VixDiskLib_Write": (c_VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p]),
    "VixDiskLib_ReadAsync": (c_VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p, VixDiskLibCompletionCB,
                                          c_void_p]),
    "VixDiskLib_WriteAsync": (c_VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p, VixDiskLibCompletionCB,
                                           c_void_p]),
    "VixDiskLib_Wait": (c_VixError, [VixDiskLibHandle]),
    "VixDiskLib_Flush": (c_VixError, [VixDiskLibHandle]),
    "VixDiskLib_QueryAllocatedBlocks": (c_VixError, [VixDiskLibHandle, _Sector, _Sector, _Sector,
                                                     POINTER(POINTER(VixDiskLibBlockList))]),
    "VixDiskLib_FreeBlockList": (c_VixError, [POINTER(VixDiskLibBlockList)]),
    # metadata
    "VixDiskLib_GetMetadataKeys": (c_VixError, [VixDiskLibHandle, c_void_p, c_size_t, POINTER(c_size_t)]),
    "VixDiskLib_ReadMetadata": (c_VixError, [VixDiskLibHandle, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "VixDiskLib_WriteMetadata": (c_VixError, [VixDiskLibHandle, c_char_p, c_char_p]),
    # maintenance
    "VixDiskLib_Clone": (c_VixError, [VixDiskLibConnection, c_char_p, VixDiskLibConnection, c_char_p,
                                      _PCreateParams, _Progress, c_void_p, Bool]),
    "VixDiskLib_SpaceNeededForClone": (c_VixError, [VixDiskLibHandle, VixDiskLibDiskType, POINTER(c_uint64)]),
    "VixDiskLib_Grow": (c_VixError, [VixDiskLibConnection, c_char_p, _Sector, Bool, _Progress, c_void_p]),
    "VixDiskLib_Shrink": (c_VixError, [VixDiskLibHandle, _Progress, c_void_p]),
    "VixDiskLib_Defragment": (c_VixError, [VixDiskLibHandle, _Progress, c_void_p]),
    "VixDiskLib_Rename": (c_VixError, [c_char_p, c_char_p]),
    "VixDiskLib_Unlink": (c_VixError, [VixDiskLibConnection, c_char_p]),
    "VixDiskLib_CheckRepair": (c_VixError, [VixDiskLibConnection, c_char_p, Bool]),
    "VixDiskLib_IsAttachPossible": (c_VixError, [VixDiskLibHandle, VixDiskLibHandle]),
    "VixDiskLib_Attach": (c_VixError, [VixDiskLibHandle, VixDiskLibHandle]),
    # errors (GetErrorText returns malloc'd memory: keep it a raw pointer so it can be freed)
    "VixDiskLib_GetErrorText": (c_void_p, [c_VixError, c_char_p]),
    "VixDiskLib_FreeErrorText": (None, [c_void_p]),
    # undocumented exports of the real library
    "VixDiskLib_SetInjectedFault": (Bool, [c_int, Bool, c_int]),
    "VixDiskLib_IsFaultEnabled_Func": (Bool, [c_int, POINTER(c_int)]),
    "VixDiskLib_SetConfigOption": (None, [c_int, c_void_p]),
    # VDDK 9.0
    "VixDiskLib_OpenEx": (c_VixError, [VixDiskLibConnection, POINTER(VixDiskLibOpenParams),
                                       POINTER(VixDiskLibHandle)]),
    "VixDiskLib_QueryChangedAreas": (c_VixError, [VixDiskLibHandle, POINTER(VixDiskLibQueryChangedAreaParams),
                                                  POINTER(POINTER(VixDiskLibDiskChangeInfo))]),
    "VixDiskLib_FreeChangedAreas": (None, [POINTER(VixDiskLibDiskChangeInfo)]),
    "VixDiskLib_GetConnectionFromDisk": (c_VixError, [VixDiskLibHandle, POINTER(VixDiskLibConnection)]),
    # our additions (vixDiskLibExt.h); the change id is malloc'd: a raw pointer so it can be freed
    "VixDiskLibExt_Commit": (c_VixError, [VixDiskLibConnection, c_char_p, _Progress, c_void_p]),
    "VixDiskLibExt_SetChangeTracking": (c_VixError, [VixDiskLibConnection, c_char_p, Bool]),
    "VixDiskLibExt_GetChangeId": (c_VixError, [VixDiskLibHandle, POINTER(c_void_p)]),
    "VixDiskLibExt_FreeChangeId": (None, [c_void_p]),
}
assert len(FUNCTIONS) == 54

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

#: File name of the library as cargo builds it (and as the wheel bundles it).
LIB_NAME: Final = "libvixDiskLib.so"
#: The versioned name the system loader knows after ``cmake --install`` (the SONAME).
SYSTEM_LIB_NAME: Final = "libvixDiskLib.so.8"
#: Directory of the copy bundled into the wheel.
BUNDLED_DIR: Final = Path(__file__).resolve().parent / "_lib"
#: The source checkout this package sits in, if any (``<repo>/python/vixdisklib``).
REPO_ROOT: Final = Path(__file__).resolve().parent.parent.parent


def _in_source_checkout() -> bool:
    return (REPO_ROOT / "Cargo.toml").is_file() and (REPO_ROOT / "python" / "vixdisklib").is_dir()


def library_candidates() -> list[tuple[str, str]]:
    """Where :func:`find_library` looks after ``$VIXDISKLIB_LIB``, in order,
    as ``(how, path or loader name)``: the bundled copy, the checkout's cargo
    output directories, then the system loader's ``libvixDiskLib.so.8``."""
    out = [("bundled", str(BUNDLED_DIR / LIB_NAME))]
    if _in_source_checkout():
        roots = [REPO_ROOT / "target"]
        target = os.environ.get("CARGO_TARGET_DIR")
        if target:
            roots.insert(0, Path(target) if Path(target).is_absolute() else REPO_ROOT / target)
        for profile in ("release", "debug"):
            out.extend(("checkout", str(root / profile / LIB_NAME)) for root in roots)
    out.append(("system", SYSTEM_LIB_NAME))
    return out


def _locate() -> tuple[str, str]:
    env = os.environ.get("VIXDISKLIB_LIB")
    if env:
        if not Path(env).exists():
            raise FileNotFoundError(f"VIXDISKLIB_LIB={env} does not exist")
        return "env", env
    for how, where in library_candidates():
        if how == "system" or Path(where).exists():
            return how, where
    raise AssertionError("unreachable: the system loader is always the last candidate")


def find_library() -> str:
    """The library :func:`load` would use: a file path, or ``libvixDiskLib.so.8``
    when only the system loader is left to try.  Raises FileNotFoundError if
    ``$VIXDISKLIB_LIB`` names a missing file."""
    return _locate()[1]


class VixDiskLibDLL(ctypes.CDLL):
    """A loaded, declared library.  ``path`` is the file it came from,
    ``found_by`` how (``"env"``, ``"bundled"``, ``"checkout"``, ``"system"``
    or ``"explicit"``), ``missing_functions`` the :data:`FUNCTIONS` it lacks."""

    path: str
    found_by: str
    missing_functions: list[str]


_loaded: dict[str, VixDiskLibDLL] = {}
_load_lock = threading.Lock()


def declare(dll: ctypes.CDLL) -> list[str]:
    """Set argtypes/restype on every function of :data:`FUNCTIONS` present in
    ``dll``.  Returns the names that are missing from the library."""
    missing = []
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(dll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = list(argtypes)
    return missing


class _DlInfo(Structure):
    _fields_ = [("dli_fname", c_char_p), ("dli_fbase", c_void_p), ("dli_sname", c_char_p),
                ("dli_saddr", c_void_p)]


def _file_of(dll: ctypes.CDLL, fallback: str) -> str:
    """The file the dynamic loader actually mapped for ``dll`` (dladdr)."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
        dladdr.argtypes = [c_void_p, POINTER(_DlInfo)]
        dladdr.restype = c_int
        info = _DlInfo()
        addr = ctypes.cast(dll.VixDiskLib_Exit, c_void_p)
        if dladdr(addr, ctypes.byref(info)) and info.dli_fname:
            return os.fsdecode(info.dli_fname)
    except (AttributeError, OSError):
        pass
    return fallback


def load(path: Optional[TUnion[str, os.PathLike[str]]] = None) -> VixDiskLibDLL:
    """Load (once per path) and declare the library: ``path`` if given, else
    the first of ``$VIXDISKLIB_LIB``, the bundled copy, the checkout's
    ``target/`` and the system loader.  Raises FileNotFoundError when none
    can be loaded."""
    if path is not None:
        how, where = "explicit", os.fspath(path)
    else:
        how, where = _locate()
    with _load_lock:
        dll = _loaded.get(where)
        if dll is None:
            try:
                dll = VixDiskLibDLL(where)
            except OSError as e:
                if how != "system":
                    raise
                raise FileNotFoundError(
                    f"libvixDiskLib.so not found: not bundled, no checkout build, and the system loader "
                    f"cannot load {SYSTEM_LIB_NAME} ({e}); install the package with `pip install ./python` "
                    f"from a checkout, run `cmake --install`, or set VIXDISKLIB_LIB"
                ) from e
            dll.missing_functions = declare(dll)
            dll.path = _file_of(dll, where) if how == "system" else where
            dll.found_by = how
            _loaded[where] = dll
        return dll
