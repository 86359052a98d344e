"""An open disk: :class:`Disk` (synchronous and asynchronous I/O, info,
metadata, allocated areas, maintenance) and its value types."""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import warnings
import weakref
from concurrent.futures import Future
from ctypes import POINTER, c_size_t, c_uint64, c_void_p
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Protocol, Union

from . import _async
from ._abi import (
    VIXDISKLIB_MAX_CHUNK_NUMBER,
    VIXDISKLIB_MIN_CHUNK_SIZE,
    VIXDISKLIB_SECTOR_SIZE,
    VixDiskLibBlockList,
    VixDiskLibConnection,
    VixDiskLibDiskChangeInfo,
    VixDiskLibDLL,
    VixDiskLibHandle,
    VixDiskLibInfo,
    VixDiskLibOpenParams,
    VixDiskLibQueryChangedAreaParams,
)
from ._async import AsyncRequest
from ._enums import AdapterType, DiskType, TransportMode, known, transport
from ._constants import VIXDISKLIB_FLAG_OPEN_READ_ONLY
from ._buffers import Buffer, readable, writable
from ._callbacks import Progress, ProgressCallback
from ._paths import PathArg, path_bytes
from .errors import VIX_ASYNC, VIX_E_BUFFER_TOOSMALL, VIX_E_FAIL, VIX_OK, VixError, check, error_text

# Completed async requests kept for duplicate-callback accounting before the
# next submission prunes them (wait() and close() always do).
_PRUNE_AFTER = 1024


@dataclasses.dataclass
class DiskInfo:
    """``VixDiskLib_GetInfo``'s result with Python types; sizes in sectors."""

    bios_geometry: tuple[int, int, int]  # (cylinders, heads, sectors)
    phys_geometry: tuple[int, int, int]
    capacity: int
    adapter_type: int  # an AdapterType when it is one
    num_links: int
    parent_file_name_hint: Optional[str]
    uuid: Optional[str]
    logical_sector_size: int
    physical_sector_size: int


class Area(NamedTuple):
    """A run of sectors: ``offset`` and ``length`` in 512-byte sectors."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        """First sector after the area."""
        return self.offset + self.length

    @property
    def byte_range(self) -> tuple[int, int]:
        """``(byte offset, byte length)``."""
        return self.offset * VIXDISKLIB_SECTOR_SIZE, self.length * VIXDISKLIB_SECTOR_SIZE


#: A block query over whole chunks: ``(start, count, chunk) -> areas``.
AreaQuery = Callable[[int, int, int], list[Area]]


def windowed_areas(query: AreaQuery, start: int, count: int, chunk: int, capacity: Optional[int] = None,
                   tail_is_area: bool = True) -> Iterator[Area]:
    """Areas of ``[start, start + count)`` from a chunk-granular ``query``,
    lazily, at most :data:`VIXDISKLIB_MAX_CHUNK_NUMBER` chunks per call,
    adjacent runs merged and clipped to the range.

    VDDK's rules shape the calls: queries cover whole chunks (the range is
    widened to chunk boundaries) and never reach past the disk's last whole
    chunk (``capacity``, default: the end of the range).  The unaligned tail
    of the disk cannot be queried; it is reported as an area when
    ``tail_is_area`` (as nbdkit does).  Shared by the allocated-areas
    iterator and, later, changed areas."""
    if chunk <= 0 or count < 0 or start < 0:
        raise ValueError("need chunk > 0, start >= 0 and count >= 0")
    end = start + count
    limit = end if capacity is None else capacity
    limit -= limit % chunk  # the last whole chunk's end
    first = start - start % chunk
    query_end = min(-(-end // chunk) * chunk, limit)
    window = VIXDISKLIB_MAX_CHUNK_NUMBER * chunk

    def clipped() -> Iterator[Area]:
        for pos in range(first, query_end, window):
            yield from query(pos, min(window, query_end - pos), chunk)
        tail = max(query_end, start)
        if tail_is_area and tail < end:
            yield Area(tail, end - tail)

    return merged_areas(clipped(), start, end)


def merged_areas(areas: Iterable[Area], start: int, end: int) -> Iterator[Area]:
    """Ascending ``areas`` clipped to ``[start, end)``, touching or overlapping
    neighbours merged into one."""
    pending: Optional[Area] = None
    for a in areas:
        lo, hi = max(a.offset, start), min(a.end, end)
        if lo >= hi:
            continue
        if pending is not None and lo <= pending.end:
            pending = Area(pending.offset, max(pending.end, hi) - pending.offset)
            continue
        if pending is not None:
            yield pending
        pending = Area(lo, hi - lo)
    if pending is not None:
        yield pending


class DiskConnection(Protocol):
    """What a :class:`Disk` needs of the connection it is opened through
    (a :class:`~vixdisklib.library.Connection`)."""

    @property
    def handle(self) -> Optional[VixDiskLibConnection]:
        """The ConnectEx handle (None once disconnected)."""

    @property
    def dll(self) -> VixDiskLibDLL:
        """The loaded library."""

    @property
    def usable(self) -> bool:
        """Connected, and the library not yet Exit-ed."""


_log = logging.getLogger("vixdisklib")


def _release_dropped(dll: VixDiskLibDLL, conn: DiskConnection, handle: VixDiskLibHandle,
                     requests: list[AsyncRequest[Any]], path: str) -> None:
    """The finalizer of a :class:`Disk` dropped without ``close()``: close its
    handle, so its lock and buffers do not outlive it.  Runs at most once
    (weakref.finalize), never after ``close()``/``attach()`` (they detach it),
    and not after Disconnect or Exit, which closed the handle themselves."""
    try:
        if not conn.usable:
            return
        warnings.warn(f"vixdisklib: disk {path} was not closed; closing it", ResourceWarning, stacklevel=2)
        err = dll.VixDiskLib_Close(handle)
        if err != VIX_OK:  # nobody to raise to: say it (a failed close can mean unflushed data)
            _log.error("closing the dropped disk %s failed: %s", path, VixError(
                err, "VixDiskLib_Close", error_text(dll, err), path))
    finally:
        requests[:] = _async.forget(requests)


class Disk:
    """An open disk (``VixDiskLib_Open``); a context manager whose exit closes it.

    Sector numbers and counts are 512-byte sectors, as in the C API.  A disk
    dropped without ``close()`` is closed when it is garbage collected (with a
    :class:`ResourceWarning`), so its lock does not outlive it."""

    def __init__(self, conn: DiskConnection, path: PathArg, flags: int = 0,
                 change_id: Optional[str] = None) -> None:
        self.conn = conn
        self.dll = conn.dll
        self.path = os.fsdecode(path)
        self.flags = flags
        #: The change id given at open (OpenEx): what :meth:`changed_areas` compares with.
        self.since: Optional[str] = change_id or None
        h = VixDiskLibHandle()
        if self.since is None:
            self._check(self.dll.VixDiskLib_Open(conn.handle, path_bytes(path), flags, ctypes.byref(h)),
                        "VixDiskLib_Open")
        else:
            params = VixDiskLibOpenParams(path=path_bytes(path), flags=flags, changeId=self.since.encode())
            self._check(self.dll.VixDiskLib_OpenEx(conn.handle, ctypes.byref(params), ctypes.byref(h)),
                        "VixDiskLib_OpenEx")
        self.handle: Optional[VixDiskLibHandle] = h
        # One list for the disk's life (changed in place): the finalizer holds it too.
        self._requests: list[AsyncRequest[Any]] = []
        self._finalizer = weakref.finalize(self, _release_dropped, self.dll, conn, h, self._requests, self.path)

    def _check(self, err: int, function: str) -> None:
        """:func:`~vixdisklib.errors.check` naming this disk's path."""
        check(self.dll, err, function, self.path)

    def _h(self) -> VixDiskLibHandle:
        if self.handle is None:
            raise ValueError("disk is closed")
        return self.handle

    @property
    def closed(self) -> bool:
        """True once closed (or attached as a parent)."""
        return self.handle is None

    def close(self) -> None:
        """``VixDiskLib_Close`` (once); in-flight async requests complete first."""
        if self.handle is not None:
            h, self.handle = self.handle, None
            self._finalizer.detach()
            try:
                self._check(self.dll.VixDiskLib_Close(h), "VixDiskLib_Close")
            finally:
                self._requests[:] = _async.forget(self._requests)

    def __enter__(self) -> Disk:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    # -- info --------------------------------------------------------------
    def info(self) -> DiskInfo:
        """``VixDiskLib_GetInfo`` (+ FreeInfo)."""
        p = POINTER(VixDiskLibInfo)()
        self._check(self.dll.VixDiskLib_GetInfo(self._h(), ctypes.byref(p)), "VixDiskLib_GetInfo")
        try:
            i = p.contents

            def text(b: Optional[bytes]) -> Optional[str]:
                return None if b is None else b.decode("utf-8", "replace")

            return DiskInfo(
                bios_geometry=(i.biosGeo.cylinders, i.biosGeo.heads, i.biosGeo.sectors),
                phys_geometry=(i.physGeo.cylinders, i.physGeo.heads, i.physGeo.sectors),
                capacity=i.capacity, adapter_type=known(AdapterType, i.adapterType), num_links=i.numLinks,
                parent_file_name_hint=text(i.parentFileNameHint), uuid=text(i.uuid),
                logical_sector_size=i.logicalSectorSize, physical_sector_size=i.physicalSectorSize,
            )
        finally:
            self.dll.VixDiskLib_FreeInfo(p)

    @property
    def capacity(self) -> int:
        """Capacity in sectors."""
        return self.info().capacity

    def transport_mode(self) -> Optional[Union[TransportMode, str]]:
        """``VixDiskLib_GetTransportMode``: ``TransportMode.FILE`` (equal to ``"file"``)."""
        s = self.dll.VixDiskLib_GetTransportMode(self._h())
        return None if s is None else transport(s.decode())

    # -- synchronous I/O ---------------------------------------------------
    def read(self, start: int, count: int) -> bytes:
        """Read ``count`` sectors from ``start``."""
        buf = bytearray(count * VIXDISKLIB_SECTOR_SIZE)
        self.readinto(start, buf)
        return bytes(buf)

    def readinto(self, start: int, buf: Buffer) -> int:
        """Read into a writable buffer (bytearray, memoryview, numpy array, mmap...)
        without copying; its size in bytes must be a multiple of 512.  Returns
        the number of bytes read (always the whole buffer)."""
        cbuf, sectors = writable(buf)
        self._check(self.dll.VixDiskLib_Read(self._h(), start, sectors, cbuf), "VixDiskLib_Read")
        return sectors * VIXDISKLIB_SECTOR_SIZE

    #: The single-file binding's name for :meth:`readinto`.
    read_into = readinto

    def write(self, start: int, data: Buffer) -> None:
        """Write ``data`` (any bytes-like object, a multiple of 512 bytes) at
        sector ``start``; bytes and writable buffers are not copied."""
        cbuf, sectors = readable(data)
        self._check(self.dll.VixDiskLib_Write(self._h(), start, sectors, cbuf), "VixDiskLib_Write")

    def flush(self) -> None:
        """``VixDiskLib_Flush``: everything written so far is durable."""
        self._check(self.dll.VixDiskLib_Flush(self._h()), "VixDiskLib_Flush")

    # -- asynchronous I/O --------------------------------------------------
    def _submit(self, fn_name: str, req: AsyncRequest[Any]) -> None:
        if len(self._requests) >= _PRUNE_AFTER:
            self._requests[:] = _async.forget(self._requests)
        _async.register(req)
        self._requests.append(req)
        err = getattr(self.dll, fn_name)(self._h(), req.start, req.count, req.buffer,
                                         _async.completion_trampoline, c_void_p(req.id))
        if err != VIX_ASYNC:
            _async.forget([req], only_done=False)
            self._requests.remove(req)
            self._check(err, fn_name)
            raise VixError(err, fn_name, "expected VIX_ASYNC, got VIX_OK")

    def submit_read(self, start: int, count: int) -> Future[bytes]:
        """``ReadAsync`` of ``count`` sectors; the future resolves to the bytes
        (or fails with VixError) when VixDiskLib's completion callback runs."""
        return self.read_async(start, count).future

    def submit_readinto(self, start: int, buf: Buffer) -> Future[int]:
        """``ReadAsync`` into a writable buffer without copying; the future
        resolves to the byte count.  Do not touch ``buf`` until it is done."""
        cbuf, sectors = writable(buf)
        nbytes = sectors * VIXDISKLIB_SECTOR_SIZE
        req: AsyncRequest[int] = AsyncRequest("read", start, sectors, cbuf, lambda: nbytes, None, self.dll,
                                              "VixDiskLib_ReadAsync", self.path)
        self._submit("VixDiskLib_ReadAsync", req)
        return req.future

    def submit_write(self, start: int, data: Buffer) -> Future[None]:
        """``WriteAsync``; the future resolves to None once written.  Writable
        buffers are used in place: do not change them until it is done."""
        cbuf, sectors = readable(data)
        req: AsyncRequest[None] = AsyncRequest("write", start, sectors, cbuf, lambda: None, None, self.dll,
                                               "VixDiskLib_WriteAsync", self.path)
        self._submit("VixDiskLib_WriteAsync", req)
        return req.future

    def read_async(self, start: int, count: int,
                   callback: Optional[Callable[[AsyncRequest[bytes]], object]] = None) -> AsyncRequest[bytes]:
        """``ReadAsync`` returning the :class:`AsyncRequest` (its ``future``
        gives the bytes); ``callback(request)`` runs on completion, on the
        library's thread.  Raises VixError unless the call returned VIX_ASYNC."""
        buf = ctypes.create_string_buffer(count * VIXDISKLIB_SECTOR_SIZE)
        req: AsyncRequest[bytes] = AsyncRequest("read", start, count, buf, lambda: buf.raw, callback, self.dll,
                                                "VixDiskLib_ReadAsync", self.path)
        self._submit("VixDiskLib_ReadAsync", req)
        return req

    def write_async(self, start: int, data: Buffer,
                    callback: Optional[Callable[[AsyncRequest[None]], object]] = None) -> AsyncRequest[None]:
        """``WriteAsync`` of a private copy of ``data``, returning the
        :class:`AsyncRequest`; see :meth:`read_async`."""
        raw = bytes(data)
        buf = ctypes.create_string_buffer(raw, len(raw))
        sectors = readable(raw)[1]
        req: AsyncRequest[None] = AsyncRequest("write", start, sectors, buf, lambda: None, callback, self.dll,
                                               "VixDiskLib_WriteAsync", self.path)
        self._submit("VixDiskLib_WriteAsync", req)
        return req

    def wait(self) -> None:
        """``VixDiskLib_Wait``: every request submitted on this disk has completed."""
        self._check(self.dll.VixDiskLib_Wait(self._h()), "VixDiskLib_Wait")
        self._requests[:] = _async.forget(self._requests)

    # -- metadata ----------------------------------------------------------
    def _sized_query(self, fn_name: str, *args: Any) -> bytes:
        """Call a ``(..., buf, size, &needed)`` function twice: size, then data."""
        fn = getattr(self.dll, fn_name)
        need = c_size_t(0)
        err = fn(self._h(), *args, None, 0, ctypes.byref(need))
        if err not in (VIX_OK, VIX_E_BUFFER_TOOSMALL):
            self._check(err, fn_name)
        buf = ctypes.create_string_buffer(max(need.value, 1))
        self._check(fn(self._h(), *args, buf, need.value, None), fn_name)
        return buf.raw[: need.value]

    def metadata_keys(self) -> list[str]:
        """``VixDiskLib_GetMetadataKeys``."""
        raw = self._sized_query("VixDiskLib_GetMetadataKeys")
        return [k.decode("utf-8", "replace") for k in raw.split(b"\0") if k]

    def read_metadata(self, key: str) -> str:
        """``VixDiskLib_ReadMetadata``; VixError VIX_E_DISK_KEY_NOTFOUND if absent."""
        raw = self._sized_query("VixDiskLib_ReadMetadata", key.encode())
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def write_metadata(self, key: str, value: str) -> None:
        """``VixDiskLib_WriteMetadata``."""
        self._check(self.dll.VixDiskLib_WriteMetadata(self._h(), key.encode(), value.encode()),
              "VixDiskLib_WriteMetadata")

    def metadata(self) -> dict[str, str]:
        """Every metadata key with its value."""
        return {k: self.read_metadata(k) for k in self.metadata_keys()}

    # -- allocated areas ---------------------------------------------------
    def query_allocated_blocks(self, start: int, count: int,
                               chunk: int = VIXDISKLIB_MIN_CHUNK_SIZE) -> list[tuple[int, int]]:
        """One ``QueryAllocatedBlocks`` call -> ``[(offset, length)]`` in
        sectors (VDDK's argument rules apply: see :meth:`allocated_areas`)."""
        p = POINTER(VixDiskLibBlockList)()
        self._check(self.dll.VixDiskLib_QueryAllocatedBlocks(self._h(), start, count, chunk, ctypes.byref(p)),
              "VixDiskLib_QueryAllocatedBlocks")
        try:
            return [(b.offset, b.length) for b in p.contents.block_array()]
        finally:
            self._check(self.dll.VixDiskLib_FreeBlockList(p), "VixDiskLib_FreeBlockList")

    def allocated_areas(self, start: int = 0, count: Optional[int] = None,
                        chunk: int = VIXDISKLIB_MIN_CHUNK_SIZE) -> Iterator[Area]:
        """Iterate over the allocated :class:`Area` s of ``[start, start + count)``
        (default: the whole disk) at ``chunk``-sector granularity, querying
        lazily; adjacent runs are merged and clipped to the range.  A chunk
        counts as allocated when any open link stores data in it; the disk's
        tail behind its last whole chunk is always reported (VDDK cannot
        query it)."""
        capacity = self.capacity
        if count is None:
            count = capacity - start

        def query(s: int, n: int, c: int) -> list[Area]:
            return [Area(o, ln) for o, ln in self.query_allocated_blocks(s, n, c)]

        return windowed_areas(query, start, count, chunk, capacity)

    # -- change tracking -------------------------------------------------
    @property
    def change_id(self) -> str:
        """``VixDiskLibExt_GetChangeId``: the id of the content this handle
        sees now (a new one is issued, and made durable, if anything was
        written since the last; that needs a writable open).  VixError
        VIX_E_DISK_NOTSUPPORTED if the disk does not track changes."""
        p = c_void_p()
        self._check(self.dll.VixDiskLibExt_GetChangeId(self._h(), ctypes.byref(p)), "VixDiskLibExt_GetChangeId")
        try:
            return ctypes.string_at(p.value).decode() if p.value else ""
        finally:
            self.dll.VixDiskLibExt_FreeChangeId(p)

    def query_changed_areas(self, start: int) -> tuple[int, int, list[Area]]:
        """One ``VixDiskLib_QueryChangedAreas`` call from sector ``start`` ->
        ``(start, length, areas)``: the piece of the disk the answer covers
        and the areas in it that changed since the id the disk was opened with."""
        q = VixDiskLibQueryChangedAreaParams(startOffset=start)
        p = POINTER(VixDiskLibDiskChangeInfo)()
        self._check(self.dll.VixDiskLib_QueryChangedAreas(self._h(), ctypes.byref(q), ctypes.byref(p)),
              "VixDiskLib_QueryChangedAreas")
        try:
            info = p.contents
            areas = [Area(b.offset, b.length) for b in info.areas.contents.block_array()] if info.areas else []
            return info.startOffset, info.length, areas
        finally:
            self.dll.VixDiskLib_FreeChangedAreas(p)

    def changed_areas(self, change_id: Optional[str] = None, start: int = 0,
                      count: Optional[int] = None) -> Iterator[Area]:
        """Iterate over the :class:`Area` s of ``[start, start + count)``
        (default: the rest of the disk) that changed since ``change_id``
        (``"*"``: the allocated areas), calling QueryChangedAreas lazily until
        the range is covered; adjacent runs are merged and clipped to the range.
        Areas are 64 KiB grains.

        ``change_id`` defaults to the one the disk was opened with
        (``conn.open(path, change_id=...)``).  Another id is asked through a
        second, read-only handle of the same disk (OpenEx), which a disk open
        for writing refuses (its lock): open it read-only to ask several ids.
        An id the disk cannot answer (another disk's, too old, tracking off)
        raises VixError VIX_E_OBJECT_NOT_FOUND / VIX_E_DISK_NOTSUPPORTED: do a
        full backup then."""
        capacity = self.capacity
        end = capacity if count is None else min(start + count, capacity)
        if change_id is None or change_id == self.since:
            if self.since is None:
                raise ValueError("the disk was opened without a change id: pass one")
            return self._changed(self, start, end)
        return self._changed_through(change_id, start, end)

    def _changed_through(self, change_id: str, start: int, end: int) -> Iterator[Area]:
        with Disk(self.conn, self.path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, change_id=change_id) as other:
            yield from self._changed(other, start, end)

    @staticmethod
    def _changed(disk: Disk, start: int, end: int) -> Iterator[Area]:
        def answers() -> Iterator[Area]:
            pos = start
            while pos < end:
                got, length, areas = disk.query_changed_areas(pos)
                if length <= 0 or got + length <= pos:
                    raise VixError(VIX_E_FAIL, "VixDiskLib_QueryChangedAreas", "answer covers nothing")
                yield from areas
                pos = got + length

        return merged_areas(answers(), start, end)

    # -- maintenance -------------------------------------------------------
    def create_child(self, path: PathArg, disk_type: int = DiskType.MONOLITHIC_SPARSE,
                     progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLib_CreateChild``: a redo log over this disk at ``path``."""
        with Progress(progress) as p:
            err = self.dll.VixDiskLib_CreateChild(self._h(), path_bytes(path), disk_type, p.c_func, None)
            check(self.dll, err, "VixDiskLib_CreateChild", path)

    def space_needed_for_clone(self, disk_type: int = DiskType.UNKNOWN) -> int:
        """``VixDiskLib_SpaceNeededForClone`` in bytes."""
        out = c_uint64(0)
        self._check(self.dll.VixDiskLib_SpaceNeededForClone(self._h(), disk_type, ctypes.byref(out)),
              "VixDiskLib_SpaceNeededForClone")
        return out.value

    def shrink(self, progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLib_Shrink``."""
        with Progress(progress) as p:
            self._check(self.dll.VixDiskLib_Shrink(self._h(), p.c_func, None), "VixDiskLib_Shrink")

    def defragment(self, progress: Optional[ProgressCallback] = None) -> None:
        """``VixDiskLib_Defragment``."""
        with Progress(progress) as p:
            self._check(self.dll.VixDiskLib_Defragment(self._h(), p.c_func, None), "VixDiskLib_Defragment")

    def attach(self, child: Disk) -> None:
        """``Attach(self, child)``: ``child`` (opened SINGLE_LINK) gets this disk
        as its parent; afterwards this handle belongs to the child and is closed."""
        err = self.dll.VixDiskLib_Attach(self._h(), child._h())
        self.handle = None
        self._finalizer.detach()  # the handle is the child's now: never close it from here
        self._check(err, "VixDiskLib_Attach")


def iter_chunks(total: int, step: int) -> Iterator[tuple[int, int]]:
    """``(start, count)`` pairs covering ``total`` sectors in steps of ``step``."""
    s = 0
    while s < total:
        n = min(step, total - s)
        yield s, n
        s += n
