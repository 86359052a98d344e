"""VixError codes and the :class:`VixError` exception.

Every code of the VDDK 7.0.2 header is a module constant (``VIX_OK``,
``VIX_E_FILE_NOT_FOUND``, ...), in header order; :data:`ERROR_CODES` maps
names to values and :data:`ERROR_NAMES` values to names.  A failed call
raises :class:`VixError` carrying the full 64-bit code, the ``VIX_E_*`` name
of its low 16 bits and the library's own text (``VixDiskLib_GetErrorText``).
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, Final, Optional

from . import _codes
from ._codes import *  # noqa: F401,F403 -- the VIX_* constants are part of this module
from ._codes import (
    VIX_E_ALREADY_EXISTS,
    VIX_E_CANCELLED,
    VIX_E_DISK_FULL,
    VIX_E_DISK_NOTSUPPORTED,
    VIX_E_FILE_ACCESS_ERROR,
    VIX_E_FILE_ALREADY_EXISTS,
    VIX_E_FILE_ALREADY_LOCKED,
    VIX_E_FILE_NOT_FOUND,
    VIX_E_FILE_READ_ONLY,
    VIX_E_FILE_TOO_BIG,
    VIX_E_INVALID_ARG,
    VIX_E_NOT_SUPPORTED,
    VIX_E_OUT_OF_MEMORY,
    VIX_OK,
)

#: name -> value for every VixError code, header order.
ERROR_CODES: Final[dict[str, int]] = {
    _k: _v for _k, _v in vars(_codes).items() if _k.startswith("VIX_") and isinstance(_v, int)
}
#: value -> name (the first name listed for a value).
ERROR_NAMES: Final[dict[int, str]] = {}
for _k, _v in ERROR_CODES.items():
    ERROR_NAMES.setdefault(_v, _k)


def VIX_ERROR_CODE(err: int) -> int:
    """The 16-bit code part of a 64-bit VixError (``VIX_ERROR_CODE`` macro)."""
    return err & 0xFFFF


def VIX_SUCCEEDED(err: int) -> bool:
    """``VIX_SUCCEEDED`` macro: the call returned VIX_OK."""
    return err == VIX_OK


def VIX_FAILED(err: int) -> bool:
    """``VIX_FAILED`` macro: the call returned anything but VIX_OK."""
    return err != VIX_OK


# The errno a VixError code corresponds to; anything not listed is EIO.
_ERRNO: Final[dict[int, int]] = {
    VIX_E_FILE_NOT_FOUND: errno.ENOENT,
    VIX_E_FILE_ALREADY_EXISTS: errno.EEXIST,
    VIX_E_ALREADY_EXISTS: errno.EEXIST,
    VIX_E_FILE_ACCESS_ERROR: errno.EACCES,
    VIX_E_FILE_READ_ONLY: errno.EACCES,
    VIX_E_DISK_FULL: errno.ENOSPC,
    VIX_E_FILE_TOO_BIG: errno.EFBIG,
    VIX_E_FILE_ALREADY_LOCKED: errno.EBUSY,
    VIX_E_INVALID_ARG: errno.EINVAL,
    VIX_E_OUT_OF_MEMORY: errno.ENOMEM,
    VIX_E_NOT_SUPPORTED: errno.EOPNOTSUPP,
    VIX_E_DISK_NOTSUPPORTED: errno.EOPNOTSUPP,
    VIX_E_CANCELLED: errno.ECANCELED,
}


class VixError(OSError):
    """A VixDiskLib call returned something other than VIX_OK.

    ``code`` is the full 64-bit VixError, ``name`` the ``VIX_E_*`` name of
    its low 16 bits, ``text`` the library's own GetErrorText message (None if
    unavailable), ``function`` the C function that failed and ``filename``
    (``filename2`` for a clone's target) the path it was given.  Compare with
    the module constants: ``e.code & 0xFFFF == vixdisklib.VIX_E_FILE_NOT_FOUND``
    (or just ``e.name``).

    It is an :class:`OSError` with ``errno`` set, and the built-in subclass
    that fits: ``except FileNotFoundError`` catches VIX_E_FILE_NOT_FOUND,
    ``FileExistsError`` VIX_E_FILE_ALREADY_EXISTS, ``PermissionError``
    VIX_E_FILE_ACCESS_ERROR / VIX_E_FILE_READ_ONLY.  ``VixError(code, ...)``
    returns an instance of that subclass by itself."""

    def __new__(cls, code: int, function: str = "", text: Optional[str] = None,
                path: Optional[str] = None, path2: Optional[str] = None) -> VixError:
        if cls is VixError:
            cls = _SUBCLASS.get(VIX_ERROR_CODE(int(code)), VixError)
        # No arguments: OSError.__new__ would read them as (errno, strerror, filename).
        return super().__new__(cls)

    def __init__(self, code: int, function: str = "", text: Optional[str] = None,
                 path: Optional[str] = None, path2: Optional[str] = None) -> None:
        super().__init__()
        self.code: int = int(code)
        self.function: str = function
        self.name: str = ERROR_NAMES.get(VIX_ERROR_CODE(self.code), "VIX_E_<unknown>")
        self.text: Optional[str] = text
        self.errno = _ERRNO.get(VIX_ERROR_CODE(self.code), errno.EIO)
        self.strerror = text or self.name
        self.filename = path
        self.filename2 = path2
        self.args = (self._message(),)

    def _message(self) -> str:
        # "VixDiskLib_Open: /d.vmdk: The requested file does not exist (VIX_E_FILE_NOT_FOUND, 4)":
        # the library's text already ends with the name and number; say them once.
        where = self.function
        if self.filename is not None:
            target = f"{self.filename} -> {self.filename2}" if self.filename2 is not None else self.filename
            where = f"{where}: {target}" if where else target
        what = self.text or ""
        if self.name not in what:
            what = f"{what} ({self.name}, {VIX_ERROR_CODE(self.code)})" if what else \
                f"{self.name} ({VIX_ERROR_CODE(self.code)})"
        return f"{where}: {what}" if where else what

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self._message()

    def __reduce__(self) -> tuple[Any, tuple[int, str, Optional[str], Optional[str], Optional[str]]]:
        # Keep the fields when pickled (process pools, futures across processes).
        return (VixError, (self.code, self.function, self.text, self.filename, self.filename2))


class VixFileNotFoundError(VixError, FileNotFoundError):
    """VIX_E_FILE_NOT_FOUND: a :class:`VixError` that is a :class:`FileNotFoundError`."""


class VixFileExistsError(VixError, FileExistsError):
    """VIX_E_FILE_ALREADY_EXISTS: a :class:`VixError` that is a :class:`FileExistsError`."""


class VixPermissionError(VixError, PermissionError):
    """VIX_E_FILE_ACCESS_ERROR / VIX_E_FILE_READ_ONLY: a :class:`VixError` that is a :class:`PermissionError`."""


_SUBCLASS: Final[dict[int, type[VixError]]] = {
    VIX_E_FILE_NOT_FOUND: VixFileNotFoundError,
    VIX_E_FILE_ALREADY_EXISTS: VixFileExistsError,
    VIX_E_ALREADY_EXISTS: VixFileExistsError,
    VIX_E_FILE_ACCESS_ERROR: VixPermissionError,
    VIX_E_FILE_READ_ONLY: VixPermissionError,
}


#: The name the single-file binding used; kept for existing callers.
VixErrorException = VixError


def error_text(dll: ctypes.CDLL, code: int) -> Optional[str]:
    """``VixDiskLib_GetErrorText`` + ``FreeErrorText`` as one call."""
    ptr = dll.VixDiskLib_GetErrorText(code, None)
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        dll.VixDiskLib_FreeErrorText(ptr)


def check(dll: ctypes.CDLL, err: int, function: str, path: Any = None, path2: Any = None) -> None:
    """Raise :class:`VixError` (with the library's text, naming ``path``)
    unless ``err`` is VIX_OK."""
    if err != VIX_OK:
        raise VixError(err, function, error_text(dll, err), _display(path), _display(path2))


def _display(path: Any) -> Optional[str]:
    """A path argument as text for a message (None stays None)."""
    if path is None:
        return None
    return os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
