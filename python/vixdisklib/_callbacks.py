"""Python callables as C callbacks: log functions (printf format + va_list)
and progress functions."""

from __future__ import annotations

import ctypes
import logging
from ctypes import c_char_p, c_int, c_size_t, c_void_p
from types import TracebackType
from typing import Any, Callable, Optional

from ._abi import VixDiskLibGenericLogFunc, VixDiskLibProgressFunc

#: A log/warn/panic callback: receives the formatted message.
LogCallback = Callable[[str], object]
#: A progress callback: receives the percentage done (0-100, may repeat).
ProgressCallback = Callable[[int], object]

_libc = ctypes.CDLL(None)
_vsnprintf = _libc.vsnprintf
_vsnprintf.restype = c_int
_vsnprintf.argtypes = [c_void_p, c_size_t, c_char_p, c_void_p]


def format_va_list(fmt: Optional[bytes], va_list: Optional[int], size: int = 8192) -> str:
    """Format a printf format + ``va_list`` (as received by a log callback)
    with the C library's ``vsnprintf``.  May be called only once per va_list."""
    if fmt is None:
        return ""
    buf = ctypes.create_string_buffer(size)
    n = _vsnprintf(buf, size, fmt, va_list)
    if n < 0:
        return fmt.decode("utf-8", "replace")
    return buf.value.decode("utf-8", "replace")


#: The logger the library's messages go to by default.
logger = logging.getLogger("vixdisklib")


def log_info(message: str) -> None:
    """The default ``log`` callback: ``logging.getLogger("vixdisklib").info``."""
    logger.info("%s", message)


def log_warning(message: str) -> None:
    """The default ``warn`` callback: the ``vixdisklib`` logger at WARNING."""
    logger.warning("%s", message)


def log_critical(message: str) -> None:
    """The default ``panic`` callback: the ``vixdisklib`` logger at CRITICAL."""
    logger.critical("%s", message)


# The library may call the log functions until (and after) Exit, so their
# trampolines live as long as the process.
_keepalive: list[Any] = []


def make_log_callback(fn: Optional[LogCallback]) -> Any:
    """A C log function calling ``fn(message)``, or None for NULL.  The
    message is one line without its trailing newline (the library ends its
    lines with one; ``log=print`` adds its own).  An exception from ``fn``
    cannot cross into C: ctypes reports it through ``sys.unraisablehook`` and
    the library carries on."""
    if fn is None:
        return None

    def trampoline(fmt: Optional[bytes], va: Optional[int]) -> None:
        fn(format_va_list(fmt, va).rstrip("\r\n"))

    cb = VixDiskLibGenericLogFunc(trampoline)
    _keepalive.append(cb)
    return cb


class Progress:
    """Adapts a Python progress callable for one C call::

        with Progress(fn) as p:
            check(dll, dll.VixDiskLib_Shrink(handle, p.c_func, None), "VixDiskLib_Shrink")

    VixDiskLib ignores the callback's return value, so an exception raised by
    ``fn`` cannot stop the operation; it is kept, later calls are skipped, and
    it is re-raised when the ``with`` block ends (after the C call returned)."""

    def __init__(self, fn: Optional[ProgressCallback]) -> None:
        self.fn = fn
        self.error: Optional[BaseException] = None
        self.c_func: Any = None if fn is None else VixDiskLibProgressFunc(self._call)

    def _call(self, _data: Optional[int], percent: int) -> int:
        if self.fn is not None and self.error is None:
            try:
                self.fn(percent)
            except BaseException as e:  # noqa: BLE001 -- re-raised in __exit__
                self.error = e
        return 1  # TRUE: "go on" (the value is ignored anyway)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            if exc is None:
                raise err
            exc.__context__ = err  # the VixError wins; the callback's error stays visible
