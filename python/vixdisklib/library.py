"""The library as a whole (:class:`Library`: InitEx/Exit, error texts) and
local connections (:class:`Connection`: Create, Open, Clone, Grow, ...)."""

from __future__ import annotations

import ctypes
import os
from types import TracebackType
from typing import Any, Iterable, Optional, Union

from ._abi import (
    VIXDISKLIB_HWVERSION_WORKSTATION_5,
    VixDiskLibConnection,
    VixDiskLibConnectParams,
    VixDiskLibCreateParams,
    VixDiskLibDLL,
    load,
)
from ._callbacks import (
    LogCallback,
    Progress,
    ProgressCallback,
    log_critical,
    log_info,
    log_warning,
    make_log_callback,
)
from ._enums import AdapterType, DiskType, TransportMode, transport
from ._paths import PathArg, path_bytes
from .disk import Disk
from .errors import VIX_E_FAIL, VIX_OK, VixError, check, error_text


#: ``transport_modes`` for :meth:`Library.connect`: ``"file:nbd"``, or a list of modes.
TransportModes = Union[str, TransportMode, Iterable[Union[TransportMode, str]], None]


def _transport_list(modes: Union[str, TransportMode, Iterable[Union[TransportMode, str]]]) -> str:
    """The colon-separated string ConnectEx takes."""
    if isinstance(modes, str):  # a TransportMode is a str too
        return str(modes)
    return ":".join(str(m) for m in modes)


class Library:
    """The library as a whole: InitEx/Exit, connections, error texts.

    ``with Library(log=print) as vdl:`` calls InitEx on entry (unless
    :meth:`init` was already called) and Exit on exit.  ``log``/``warn``/
    ``panic`` are Python callables receiving each message as one line
    without its newline; by default they go to the :mod:`logging` logger
    ``vixdisklib`` at INFO, WARNING and CRITICAL.  None passes NULL (the
    library writes to stderr itself).  ``path`` or ``dll`` pick the shared
    object (default: :func:`vixdisklib.load`'s search)."""

    def __init__(self, path: Optional[PathArg] = None, dll: Optional[VixDiskLibDLL] = None, *,
                 log: Optional[LogCallback] = log_info, warn: Optional[LogCallback] = log_warning,
                 panic: Optional[LogCallback] = log_critical, libdir: Optional[PathArg] = None,
                 config: Optional[PathArg] = None) -> None:
        self.dll: VixDiskLibDLL = dll if dll is not None else load(None if path is None else os.fsdecode(path))
        self.initialized = False
        self._init_args: dict[str, Any] = dict(log=log, warn=warn, panic=panic, libdir=libdir, config=config)

    def init(self, log: Optional[LogCallback] = log_info, warn: Optional[LogCallback] = log_warning,
             panic: Optional[LogCallback] = log_critical, libdir: Optional[PathArg] = None,
             config: Optional[PathArg] = None, major: int = 6, minor: int = 7) -> Library:
        """``VixDiskLib_InitEx``; returns self so it chains into ``with``.
        The callbacks are as for :class:`Library`."""
        err = self.dll.VixDiskLib_InitEx(
            major, minor, make_log_callback(log), make_log_callback(warn), make_log_callback(panic),
            None if libdir is None else path_bytes(libdir),
            None if config is None else path_bytes(config),
        )
        check(self.dll, err, "VixDiskLib_InitEx", config)
        self.initialized = True
        return self

    def exit(self) -> None:
        """``VixDiskLib_Exit`` (once; a no-op when not initialised)."""
        if self.initialized:
            self.dll.VixDiskLib_Exit()
            self.initialized = False

    def __enter__(self) -> Library:
        if not self.initialized:
            self.init(**self._init_args)
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.exit()

    def error_text(self, code: int) -> Optional[str]:
        """The library's message for a VixError code."""
        return error_text(self.dll, code)

    def list_transport_modes(self) -> Optional[str]:
        """``VixDiskLib_ListTransportModes`` (``"file"`` here)."""
        s = self.dll.VixDiskLib_ListTransportModes()
        return None if s is None else s.decode()

    def transport_modes(self) -> list[Union[TransportMode, str]]:
        """``VixDiskLib_ListTransportModes`` as a list (``[TransportMode.FILE, ...]``)."""
        return [transport(m) for m in (self.list_transport_modes() or "").split(":") if m]

    def connect(self, read_only: bool = False, transport_modes: TransportModes = None,
                snapshot_ref: Optional[str] = None, params: Any = None) -> Connection:
        """``ConnectEx`` to the local host.  ``transport_modes`` is a
        ``"file:nbd"`` string or a list of :class:`TransportMode` members (None:
        the library's choice).  ``params`` is an optional
        VixDiskLibConnectParams (or pointer); by default one is allocated with
        AllocateConnectParams and freed on disconnect."""
        return Connection(self, read_only=read_only, transport_modes=transport_modes,
                          snapshot_ref=snapshot_ref, params=params)

    def rename(self, src: PathArg, dst: PathArg) -> None:
        """``VixDiskLib_Rename``: rename a disk and all its files."""
        check(self.dll, self.dll.VixDiskLib_Rename(path_bytes(src), path_bytes(dst)), "VixDiskLib_Rename", src, dst)


class Connection:
    """A local connection (``ConnectEx``); a context manager whose exit
    disconnects."""

    def __init__(self, lib: Library, read_only: bool = False, transport_modes: TransportModes = None,
                 snapshot_ref: Optional[str] = None, params: Any = None) -> None:
        self.lib = lib
        dll = lib.dll
        #: The loaded library (``lib.dll``).
        self.dll: VixDiskLibDLL = dll
        self._own_params = params is None
        if params is None:
            p = dll.VixDiskLib_AllocateConnectParams()
            if not p:
                raise VixError(VIX_E_FAIL, "VixDiskLib_AllocateConnectParams", "returned NULL")
            self.params: Any = p
        else:
            self.params = ctypes.pointer(params) if isinstance(params, VixDiskLibConnectParams) else params
        conn = VixDiskLibConnection()
        err = dll.VixDiskLib_ConnectEx(
            self.params, 1 if read_only else 0,
            None if snapshot_ref is None else snapshot_ref.encode(),
            None if transport_modes is None else _transport_list(transport_modes).encode(),
            ctypes.byref(conn),
        )
        if err != VIX_OK:
            self._free_params()
            check(dll, err, "VixDiskLib_ConnectEx")
        self.handle: Optional[VixDiskLibConnection] = conn

    @property
    def usable(self) -> bool:
        """Connected, and the library not yet Exit-ed (a :class:`Disk` left
        open is closed by Disconnect or Exit then, not by its finalizer)."""
        return self.handle is not None and self.lib.initialized

    def _free_params(self) -> None:
        if self._own_params and self.params:
            self.lib.dll.VixDiskLib_FreeConnectParams(self.params)
        self.params = None

    def close(self) -> None:
        """``VixDiskLib_Disconnect`` (once)."""
        if self.handle is not None:
            h, self.handle = self.handle, None
            err = self.lib.dll.VixDiskLib_Disconnect(h)
            self._free_params()
            check(self.lib.dll, err, "VixDiskLib_Disconnect")

    disconnect = close

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def create(self, path: PathArg, capacity: int, disk_type: int = DiskType.MONOLITHIC_SPARSE,
               adapter_type: int = AdapterType.SCSI_LSILOGIC,
               hw_version: int = VIXDISKLIB_HWVERSION_WORKSTATION_5,
               logical_sector_size: int = 0, physical_sector_size: int = 0,
               progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLib_Create``; ``capacity`` in sectors; ``progress(percent)``
        is called as it goes.  ``disk_type`` is a :class:`DiskType` and
        ``adapter_type`` an :class:`AdapterType` (or their int values)."""
        cp = VixDiskLibCreateParams(diskType=disk_type, adapterType=adapter_type, hwVersion=hw_version,
                                    capacity=capacity, logicalSectorSize=logical_sector_size,
                                    physicalSectorSize=physical_sector_size)
        with Progress(progress) as p:
            check(self.lib.dll, self.lib.dll.VixDiskLib_Create(self.handle, path_bytes(path), ctypes.byref(cp),
                                                               p.c_func, None), "VixDiskLib_Create", path)

    def open(self, path: PathArg, flags: int = 0, change_id: Optional[str] = None) -> Disk:
        """``VixDiskLib_Open`` -> :class:`~vixdisklib.disk.Disk` (a context manager).
        ``flags``: :class:`OpenFlag` bits (``OpenFlag.READ_ONLY``) or their int.

        With ``change_id`` (VDDK 9.0's ``VixDiskLib_OpenEx``) the handle
        remembers it: :meth:`Disk.changed_areas` then lists what changed since
        that id (``"*"``: the allocated areas).  The id is checked by the
        query, not here, so any id opens."""
        return Disk(self, path, flags, change_id=change_id)

    def set_change_tracking(self, path: PathArg, enable: bool = True) -> None:
        """``VixDiskLibExt_SetChangeTracking`` on the closed disk at ``path``:
        on starts a new history (ids of an earlier one are refused from then
        on), off deletes the tracking data; either is a no-op when already so."""
        err = self.lib.dll.VixDiskLibExt_SetChangeTracking(self.handle, path_bytes(path), 1 if enable else 0)
        check(self.lib.dll, err, "VixDiskLibExt_SetChangeTracking", path)

    def commit(self, path: PathArg, progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLibExt_Commit``: fold the redo log at ``path`` into its
        parent and delete it (how a backup deletes its snapshot); its change
        history goes to the parent."""
        with Progress(progress) as p:
            err = self.lib.dll.VixDiskLibExt_Commit(self.handle, path_bytes(path), p.c_func, None)
            check(self.lib.dll, err, "VixDiskLibExt_Commit", path)

    def unlink(self, path: PathArg) -> None:
        """``VixDiskLib_Unlink``: delete a disk and all its files."""
        check(self.lib.dll, self.lib.dll.VixDiskLib_Unlink(self.handle, path_bytes(path)), "VixDiskLib_Unlink", path)

    def grow(self, path: PathArg, capacity: int, update_geometry: bool = True,
             progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLib_Grow`` to ``capacity`` sectors."""
        with Progress(progress) as p:
            err = self.lib.dll.VixDiskLib_Grow(self.handle, path_bytes(path), capacity,
                                               1 if update_geometry else 0, p.c_func, None)
            check(self.lib.dll, err, "VixDiskLib_Grow", path)

    def check_repair(self, path: PathArg, repair: bool = False) -> None:
        """``VixDiskLib_CheckRepair``: raises VixError if the disk is damaged
        (and, with ``repair``, could not be repaired)."""
        err = self.lib.dll.VixDiskLib_CheckRepair(self.handle, path_bytes(path), 1 if repair else 0)
        check(self.lib.dll, err, "VixDiskLib_CheckRepair", path)

    def clone(self, dst_path: PathArg, src_conn: Connection, src_path: PathArg, capacity: int = 0,
              disk_type: int = DiskType.MONOLITHIC_SPARSE,
              adapter_type: int = AdapterType.SCSI_LSILOGIC,
              hw_version: int = VIXDISKLIB_HWVERSION_WORKSTATION_5, overwrite: bool = False,
              progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLib_Clone`` ``src_path`` (through ``src_conn``) to ``dst_path``."""
        cp = VixDiskLibCreateParams(diskType=disk_type, adapterType=adapter_type, hwVersion=hw_version,
                                    capacity=capacity)
        with Progress(progress) as p:
            err = self.lib.dll.VixDiskLib_Clone(self.handle, path_bytes(dst_path), src_conn.handle,
                                                path_bytes(src_path), ctypes.byref(cp), p.c_func, None,
                                                1 if overwrite else 0)
            check(self.lib.dll, err, "VixDiskLib_Clone", src_path, dst_path)
