"""VixError codes and the :class:`VixError` exception.

Every code of the VDDK 7.0.2 header is a module constant (``VIX_OK``,
``VIX_E_FILE_NOT_FOUND``, ...), in header order; :data:`ERROR_CODES` maps
names to values and :data:`ERROR_NAMES` values to names.  A failed call
raises :class:`VixError` carrying the full 64-bit code, the ``VIX_E_*`` name
of its low 16 bits and the library's own text (``VixDiskLib_GetErrorText``).
"""

from __future__ import annotations

import ctypes
from typing import Final, Optional

from . import _codes
from ._codes import *  # noqa: F401,F403 -- the VIX_* constants are part of this module

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


class VixError(Exception):
    """A VixDiskLib call returned something other than VIX_OK.

    ``code`` is the full 64-bit VixError, ``name`` the ``VIX_E_*`` name of
    its low 16 bits, ``text`` the library's own GetErrorText message (None if
    unavailable) and ``function`` the C function that failed.  Compare with
    the module constants: ``e.code & 0xFFFF == vixdisklib.VIX_E_FILE_NOT_FOUND``
    (or just ``e.name``)."""

    def __init__(self, code: int, function: str = "", text: Optional[str] = None) -> None:
        self.code: int = int(code)
        self.function: str = function
        self.name: str = ERROR_NAMES.get(VIX_ERROR_CODE(self.code), "VIX_E_<unknown>")
        self.text: Optional[str] = text
        msg = f"{function}: {self.name} ({self.code})"
        if text:
            msg += f": {text}"
        super().__init__(msg)

    def __reduce__(self) -> tuple[type[VixError], tuple[int, str, Optional[str]]]:
        # Keep the fields when pickled (process pools, futures across processes).
        return (type(self), (self.code, self.function, self.text))


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


def check(dll: ctypes.CDLL, err: int, function: str) -> None:
    """Raise :class:`VixError` (with the library's text) unless ``err`` is VIX_OK."""
    if err != VIX_OK:
        raise VixError(err, function, error_text(dll, err))
