"""Zero-copy views of Python buffers as C ``void *`` arguments."""

from __future__ import annotations

import ctypes
from typing import Any, Union

from ._abi import VIXDISKLIB_SECTOR_SIZE

#: Anything with the buffer protocol: bytes, bytearray, memoryview, array.array, numpy arrays, mmap...
Buffer = Union[bytes, bytearray, memoryview, Any]


def _byte_view(buf: Buffer) -> memoryview:
    mv = memoryview(buf)
    if not mv.c_contiguous:
        raise ValueError("the buffer must be C-contiguous")
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


def _sectors(nbytes: int) -> int:
    if nbytes % VIXDISKLIB_SECTOR_SIZE:
        raise ValueError(f"buffer length {nbytes} is not a multiple of {VIXDISKLIB_SECTOR_SIZE}")
    return nbytes // VIXDISKLIB_SECTOR_SIZE


def writable(buf: Buffer) -> tuple[Any, int]:
    """``(c_array, sectors)``: a ctypes array sharing ``buf``'s memory (no
    copy) for the library to write into.  While the returned array lives, a
    bytearray cannot be resized -- the memory stays valid for async reads."""
    mv = _byte_view(buf)
    if mv.readonly:
        raise TypeError("readinto needs a writable buffer (bytearray, memoryview, numpy array...)")
    return (ctypes.c_char * mv.nbytes).from_buffer(mv), _sectors(mv.nbytes)


def readable(data: Buffer) -> tuple[Any, int]:
    """``(pointer-compatible object, sectors)`` for data the library reads.
    bytes and writable buffers are passed without a copy; other read-only
    buffers (e.g. a memoryview of bytes) are copied once."""
    if isinstance(data, bytes):
        return data, _sectors(len(data))
    mv = _byte_view(data)
    if mv.readonly:
        return (ctypes.c_char * mv.nbytes).from_buffer_copy(mv), _sectors(mv.nbytes)
    return (ctypes.c_char * mv.nbytes).from_buffer(mv), _sectors(mv.nbytes)
