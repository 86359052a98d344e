"""ReadAsync / WriteAsync / Wait: VIX_ASYNC return, exactly-once callbacks
(without Wait), many requests in flight, correct data."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

import vixdisklib as V
from vdl_helpers import DISK_SECTORS, SECTOR

N_REQ = 64
REQ_SECTORS = 96  # 48 KiB: requests straddle grain boundaries
POLL_TIMEOUT = 20.0


def _poll(pred, timeout=POLL_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


class Recorder:
    """A raw C completion callback that records (cbData, result) per call."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: dict[int, list[int]] = {}
        self.threads: set[int] = set()
        self.cb = V.VixDiskLibCompletionCB(self._cb)

    def _cb(self, data, result):
        with self.lock:
            self.calls.setdefault(data or 0, []).append(result)
            self.threads.add(threading.get_ident())

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.calls.values())


def _payload(i: int) -> bytes:
    return bytes([(i * 7 + 1) & 0xFF]) * (REQ_SECTORS * SECTOR - 4) + i.to_bytes(4, "little")


def _start(i: int) -> int:
    # spread over the disk, crossing grain and 32 MiB grain-table boundaries
    if i == N_REQ // 2:
        return 65536 - REQ_SECTORS // 2  # straddles 32 MiB
    return (i * (DISK_SECTORS - REQ_SECTORS)) // (N_REQ - 1)


def test_async_write_then_read_callbacks_without_wait(conn, tmp_path, dll):
    path = tmp_path / "async.vmdk"
    conn.create(path, DISK_SECTORS)
    rec = Recorder()
    with conn.open(path) as d:
        h = d.handle
        wbufs = [ctypes.create_string_buffer(_payload(i), REQ_SECTORS * SECTOR) for i in range(N_REQ)]
        rets = [dll.VixDiskLib_WriteAsync(h, _start(i), REQ_SECTORS, wbufs[i], rec.cb, ctypes.c_void_p(i + 1))
                for i in range(N_REQ)]
        assert all(r == V.VIX_ASYNC for r in rets), f"WriteAsync must return VIX_ASYNC (25000): {set(rets)}"
        # no Wait: the callbacks must arrive on their own
        assert _poll(lambda: rec.count() >= N_REQ), f"only {rec.count()}/{N_REQ} write callbacks without Wait"
        with rec.lock:
            assert sorted(rec.calls) == list(range(1, N_REQ + 1))
            assert all(v == [V.VIX_OK] for v in rec.calls.values()), rec.calls

        rec2 = Recorder()
        rbufs = [ctypes.create_string_buffer(REQ_SECTORS * SECTOR) for _ in range(N_REQ)]
        rets = [dll.VixDiskLib_ReadAsync(h, _start(i), REQ_SECTORS, rbufs[i], rec2.cb, ctypes.c_void_p(i + 1))
                for i in range(N_REQ)]
        assert all(r == V.VIX_ASYNC for r in rets), f"ReadAsync must return VIX_ASYNC (25000): {set(rets)}"
        assert _poll(lambda: rec2.count() >= N_REQ), f"only {rec2.count()}/{N_REQ} read callbacks without Wait"
        for i in range(N_REQ):
            assert rbufs[i].raw == _payload(i), f"request {i} read wrong data"

        assert dll.VixDiskLib_Wait(h) == V.VIX_OK
        time.sleep(0.05)
        # exactly once, also after Wait
        with rec.lock, rec2.lock:
            assert all(len(v) == 1 for v in rec.calls.values()), rec.calls
            assert all(len(v) == 1 for v in rec2.calls.values()), rec2.calls
            assert sum(map(len, rec.calls.values())) == N_REQ and sum(map(len, rec2.calls.values())) == N_REQ
        assert dll.VixDiskLib_Flush(h) == V.VIX_OK
    # persisted: check through a fresh synchronous handle
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        for i in range(N_REQ):
            assert d.read(_start(i), REQ_SECTORS) == _payload(i), f"request {i} not persisted"


def test_wait_drains_all_requests(conn, tmp_path):
    path = tmp_path / "drain.vmdk"
    conn.create(path, DISK_SECTORS)
    with conn.open(path) as d:
        reqs = [d.write_async(_start(i), _payload(i)) for i in range(N_REQ)]
        d.wait()
        assert all(r.done.is_set() for r in reqs), "Wait returned before every callback had run"
        assert all(r.calls == 1 and r.result == V.VIX_OK for r in reqs)
        reads = [d.read_async(_start(i), REQ_SECTORS) for i in range(N_REQ)]
        d.wait()
        for i, r in enumerate(reads):
            assert r.done.is_set() and r.calls == 1 and r.result == V.VIX_OK
            assert r.data == _payload(i)
        # sync calls nbdkit mixes in after Wait
        d.flush()
        assert d.info().capacity == DISK_SECTORS


def test_async_many_in_flight_interleaved(conn, tmp_path):
    """Writes to distinct regions and reads of already-written ones submitted
    in one go; the callbacks may run on any thread."""
    path = tmp_path / "inter.vmdk"
    conn.create(path, DISK_SECTORS)
    with conn.open(path) as d:
        first = [d.write_async(i * 256, bytes([i + 1]) * (256 * SECTOR)) for i in range(32)]
        assert _poll(lambda: all(r.done.is_set() for r in first))
        mixed = []
        for i in range(32):
            mixed.append(d.read_async(i * 256, 256))
            mixed.append(d.write_async(20000 + i * 256, bytes([0x80 + i]) * (256 * SECTOR)))
        assert _poll(lambda: all(r.done.is_set() for r in mixed)), "callbacks missing without Wait"
        d.wait()
        for i in range(32):
            r = mixed[2 * i]
            assert r.result == V.VIX_OK and r.data == bytes([i + 1]) * (256 * SECTOR)
        for i in range(32):
            assert mixed[2 * i + 1].result == V.VIX_OK
        assert all(r.calls == 1 for r in first + mixed)
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        for i in range(32):
            assert d.read(20000 + i * 256, 256) == bytes([0x80 + i]) * (256 * SECTOR)


@pytest.mark.parametrize("kind", ["read", "write"])
def test_async_out_of_range_reports_error_once(conn, tmp_path, dll, kind):
    """Either the submission fails (no callback ever), or it returns
    VIX_ASYNC and the single callback carries the error -- never both."""
    path = tmp_path / "oor.vmdk"
    conn.create(path, 2048)
    rec = Recorder()
    with conn.open(path) as d:
        buf = ctypes.create_string_buffer(4 * SECTOR)
        fn = dll.VixDiskLib_ReadAsync if kind == "read" else dll.VixDiskLib_WriteAsync
        ret = fn(d.handle, 2046, 4, buf, rec.cb, ctypes.c_void_p(99))
        if ret == V.VIX_ASYNC:
            assert _poll(lambda: rec.count() >= 1)
            assert dll.VixDiskLib_Wait(d.handle) == V.VIX_OK
            assert rec.calls[99] != [V.VIX_OK] and len(rec.calls[99]) == 1, rec.calls
            assert rec.calls[99][0] & 0xFFFF == V.VIX_E_DISK_OUTOFRANGE, rec.calls
        else:
            assert ret & 0xFFFF == V.VIX_E_DISK_OUTOFRANGE, ret
            dll.VixDiskLib_Wait(d.handle)
            time.sleep(0.05)
            assert rec.count() == 0, "a failed submission must not also call the callback"


def test_close_without_wait_completes_everything(conn, tmp_path, dll):
    """Close with requests in flight: every callback has run exactly once by
    the time Close returns, and the data is on disk."""
    path = tmp_path / "closewait.vmdk"
    conn.create(path, DISK_SECTORS)
    d = conn.open(path)
    reqs = [d.write_async(i * 256, bytes([i + 1]) * (256 * SECTOR)) for i in range(N_REQ)]
    h, d.handle = d.handle, None
    assert dll.VixDiskLib_Close(h) == V.VIX_OK
    assert all(r.done.is_set() for r in reqs), "Close returned with callbacks still pending"
    assert all(r.calls == 1 and r.result == V.VIX_OK for r in reqs)
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d2:
        for i in range(N_REQ):
            assert d2.read(i * 256, 256) == bytes([i + 1]) * (256 * SECTOR)
