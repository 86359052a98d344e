"""ReadAsync/WriteAsync requests and the one C completion callback that
resolves them.

Each submission registers an :class:`AsyncRequest` under a small integer id
that travels as the callback's ``cbData``; the shared trampoline looks the
request up, records the result, resolves its :class:`concurrent.futures.Future`
and runs the optional per-request callback.  Requests stay registered until
their disk's ``wait()``/``close()`` (or until many have completed), so a
second callback for the same request is counted in ``calls`` rather than
lost -- the test suite relies on that to prove "exactly once".
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from concurrent.futures import Future
from typing import Any, Callable, Generic, Optional, TypeVar

from ._abi import VixDiskLibCompletionCB
from .errors import VIX_OK, VixError, error_text

T = TypeVar("T")


class AsyncRequest(Generic[T]):
    """One ReadAsync/WriteAsync submission.

    ``future`` resolves to the request's value (``bytes`` for
    ``read_async``/``submit_read``, the byte count for ``submit_readinto``,
    None for writes) or fails with :class:`VixError`.  For the older style,
    ``done`` is a :class:`threading.Event`, ``result`` the raw VixError given
    to the callback, ``calls`` how often the callback fired and ``data`` the
    bytes of the buffer."""

    def __init__(self, kind: str, start: int, count: int, buffer: Any,
                 value: Callable[[], T], user_cb: Optional[Callable[[AsyncRequest[T]], object]] = None,
                 dll: Optional[ctypes.CDLL] = None, function: str = "", path: Optional[str] = None) -> None:
        self.kind = kind
        self.start = start
        self.count = count
        #: The memory the library reads from / writes into; kept alive until completion.
        self.buffer = buffer
        self.user_cb = user_cb
        self.result: Optional[int] = None
        self.calls = 0
        self.done = threading.Event()
        self.future: Future[T] = Future()
        self.future.set_running_or_notify_cancel()  # in flight: cannot be cancelled any more
        self.id = next(_request_ids)
        self._value = value
        self._dll = dll
        self._function = function
        self._path = path

    @property
    def data(self) -> bytes:
        """The buffer's bytes (for reads: what was read, once ``done``)."""
        return bytes(self.buffer)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the completion callback ran; False on timeout."""
        return self.done.wait(timeout)

    def _complete(self, result: int) -> None:
        self.result = result
        if result == VIX_OK:
            try:
                self.future.set_result(self._value())
            except BaseException as e:  # noqa: BLE001 -- delivered through the future
                self.future.set_exception(e)
        else:
            text = error_text(self._dll, result) if self._dll is not None else None
            self.future.set_exception(VixError(result, self._function, text, self._path))


_request_ids = itertools.count(1)
_pending_lock = threading.Lock()
_pending: dict[int, AsyncRequest[Any]] = {}


def register(req: AsyncRequest[Any]) -> None:
    """Make ``req`` reachable from the completion callback."""
    with _pending_lock:
        _pending[req.id] = req


def forget(reqs: list[AsyncRequest[Any]], only_done: bool = True) -> list[AsyncRequest[Any]]:
    """Unregister the (completed, if ``only_done``) requests; returns the rest."""
    keep = []
    with _pending_lock:
        for r in reqs:
            if only_done and not r.done.is_set():
                keep.append(r)
            else:
                _pending.pop(r.id, None)
    return keep


def _on_complete(cb_data: Optional[int], result: int) -> None:
    with _pending_lock:
        req = _pending.get(cb_data or 0)
        if req is None:
            return
        req.calls += 1
        first = req.calls == 1
    if not first:
        req.result = result  # a duplicate: visible in ``calls``, the future keeps its first outcome
        return
    try:
        req._complete(result)
        if req.user_cb is not None:
            req.user_cb(req)
    finally:
        req.done.set()


#: The one C function pointer every submission passes (lives as long as the module).
completion_trampoline: Any = VixDiskLibCompletionCB(_on_complete)
