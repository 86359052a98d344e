"""A disk handle used by two threads at once (a caller's race, issue 17 review): Close or
Attach on a handle while another thread is still inside a call on it. Close must still mean
closed when it returns (the clean-shutdown mark cleared, the lock released, its error
reported), and Attach must still attach, as before the C ABI moved onto the facade."""

from __future__ import annotations

import threading
import time

import vixdisklib as V
from vdl_helpers import sparse_header

SINGLE = V.VIXDISKLIB_FLAG_OPEN_SINGLE_LINK
# How long the other thread stays inside its call: far longer than a Close takes.
HOLD = 1.0


def _raw_handle(disk: V.Disk):
    """Takes the C handle out of a Python Disk, which then never closes it."""
    h, disk.handle = disk.handle, None
    disk._finalizer.detach()
    return h


def _inside_a_call(dll, h, hold: float = HOLD, release: threading.Event | None = None):
    """Starts a thread that calls Defragment on `h` and stays inside that call (in its first
    progress callback) for `hold` seconds, or until `release` is set; returns once the thread
    is inside."""
    entered = threading.Event()
    release = release or threading.Event()
    result: list[int] = []

    def progress(_data, _percent):
        if not entered.is_set():
            entered.set()
            release.wait(hold)
        return 1

    cb = V.VixDiskLibProgressFunc(progress)
    t = threading.Thread(target=lambda: result.append(dll.VixDiskLib_Defragment(h, cb, None)))
    t.start()
    assert entered.wait(20), "Defragment never called its progress callback"
    return t, result, cb


def test_close_while_another_thread_is_inside_a_call_closes_the_disk(vix, conn, dll, tmp_path, logs):
    path = tmp_path / "busy.vmdk"
    conn.create(path, 4096)
    d = conn.open(path)
    d.write(0, b"\x11" * 4096)
    h = _raw_handle(d)
    assert sparse_header(path)["unclean"] == 1
    warned = len(logs["warn"])
    t, result, _cb = _inside_a_call(dll, h)
    assert dll.VixDiskLib_Close(h) == V.VIX_OK
    # Checked before the other thread could have left its call on its own.
    assert sparse_header(path)["unclean"] == 0, "Close returned before the disk was closed"
    with conn.open(path) as again:  # read-write: the lock is free
        assert again.read(0, 8) == b"\x11" * 4096
    t.join(20)
    assert result == [V.VIX_OK]
    assert dll.VixDiskLib_Close(h) == V.VIX_E_INVALID_ARG
    assert not [m for m in logs["warn"][warned:] if "another thread" in m], logs["warn"][warned:]


def test_attach_while_another_thread_is_inside_a_call_on_the_parent_attaches(vix, conn, dll, tmp_path):
    base = tmp_path / "base.vmdk"
    conn.create(base, 4096)
    with conn.open(base) as d:
        d.write(8, b"\x22" * 512)
        d.create_child(tmp_path / "redo.vmdk")
    parent = _raw_handle(conn.open(base, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY))
    child = conn.open(tmp_path / "redo.vmdk", SINGLE)
    t, result, _cb = _inside_a_call(dll, parent)
    assert dll.VixDiskLib_Attach(parent, child._h()) == V.VIX_OK
    assert child.read(8, 1) == b"\x22" * 512  # the parent's data shows through
    child.close()
    t.join(20)
    assert len(result) == 1  # Defragment of a read-only disk fails, after its progress callback
    assert dll.VixDiskLib_Close(parent) == V.VIX_OK  # consumed by Attach: a no-op


def test_close_while_a_call_stays_inside_flushes_and_the_disk_closes_when_it_returns(vix, conn, dll, tmp_path,
                                                                                     logs):
    """Past Close's bounded wait (5 s) for the other thread: Close flushes, says so, and the
    disk is closed (clean mark cleared, lock released) when that thread's call returns."""
    path = tmp_path / "stuck.vmdk"
    conn.create(path, 4096)
    d = conn.open(path)
    d.write(16, b"\x33" * 4096)
    h = _raw_handle(d)
    warned = len(logs["warn"])
    release = threading.Event()
    t, result, _cb = _inside_a_call(dll, h, hold=60.0, release=release)
    assert dll.VixDiskLib_Close(h) == V.VIX_OK
    assert [m for m in logs["warn"][warned:] if "another thread is still using" in m], logs["warn"][warned:]
    assert sparse_header(path)["unclean"] == 1  # the other thread is still inside
    release.set()
    t.join(30)
    assert result == [V.VIX_OK]
    assert sparse_header(path)["unclean"] == 0
    with conn.open(path) as again:
        assert again.read(16, 8) == b"\x33" * 4096
