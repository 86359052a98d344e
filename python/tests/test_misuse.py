"""Misuse through the C ABI: calls before InitEx and after Exit, NULL/disconnected/foreign/
garbage connections, FIFOs where disks belong, fork() after the async workers started, and
hostile disks. Every case must be refused promptly with a clear code; none may hang."""

from __future__ import annotations

import ctypes
import os

import pytest

import vixdisklib as V
from vdl_helpers import have_qemu, qemu_check, run_child

RO = V.VIXDISKLIB_FLAG_OPEN_READ_ONLY


def cparams(disk_type=V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, capacity=2048):
    return V.VixDiskLibCreateParams(diskType=disk_type, adapterType=V.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                                    hwVersion=6, capacity=capacity)


def test_calls_before_init_and_after_exit_are_refused(lib_path, tmp_path):
    disk = tmp_path / "d.vmdk"
    res = run_child(lib_path, f"""
        import os
        path = {str(disk)!r}.encode()
        cp = V.VixDiskLibCreateParams(diskType=1, adapterType=3, hwVersion=6, capacity=2048)
        conn = ctypes.c_void_p(); h = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(512)
        p = dll.VixDiskLib_AllocateConnectParams()
        result["alloc"] = bool(p)
        result["text"] = dll.VixDiskLib_GetErrorText(16001, None) is not None
        result["connect_before"] = dll.VixDiskLib_ConnectEx(p, 0, None, None, ctypes.byref(conn))
        result["create_before"] = dll.VixDiskLib_Create(conn, path, ctypes.byref(cp), None, None)
        result["open_before"] = dll.VixDiskLib_Open(conn, path, 0, ctypes.byref(h))
        result["read_before"] = dll.VixDiskLib_Read(h, 0, 1, buf)
        result["exists_before"] = os.path.exists(path)
        result["init"] = dll.VixDiskLib_InitEx(6, 5, None, None, None, None, None)
        result["connect"] = dll.VixDiskLib_ConnectEx(p, 0, None, None, ctypes.byref(conn))
        result["create"] = dll.VixDiskLib_Create(conn, path, ctypes.byref(cp), None, None)
        result["open"] = dll.VixDiskLib_Open(conn, path, 0, ctypes.byref(h))
        buf.raw = b"\\x5a" * 512
        result["write"] = dll.VixDiskLib_Write(h, 3, 1, buf)
        dll.VixDiskLib_Exit()          # with the disk still open and unflushed
        result["read_after"] = dll.VixDiskLib_Read(h, 3, 1, buf)
        result["open_after"] = dll.VixDiskLib_Open(conn, path, {RO}, ctypes.byref(ctypes.c_void_p()))
        result["connect_after"] = dll.VixDiskLib_ConnectEx(p, 0, None, None, ctypes.byref(ctypes.c_void_p()))
        result["close_after"] = dll.VixDiskLib_Close(h)
        result["init2"] = dll.VixDiskLib_InitEx(6, 5, None, None, None, None, None)
        c2 = ctypes.c_void_p(); h2 = ctypes.c_void_p()
        dll.VixDiskLib_ConnectEx(p, 0, None, None, ctypes.byref(c2))
        result["old_handle"] = dll.VixDiskLib_Read(h, 3, 1, buf)
        result["reopen_rw"] = dll.VixDiskLib_Open(c2, path, 0, ctypes.byref(h2))
        back = ctypes.create_string_buffer(512)
        dll.VixDiskLib_Read(h2, 3, 1, back)
        result["kept"] = back.raw == b"\\x5a" * 512
        dll.VixDiskLib_Close(h2)
        dll.VixDiskLib_Disconnect(c2)
        dll.VixDiskLib_FreeConnectParams(p)
        dll.VixDiskLib_Exit()
        """, init=False)
    assert res["alloc"] and res["text"]
    for k in ("connect_before", "create_before", "open_before", "read_before",
              "read_after", "open_after", "connect_after", "close_after"):
        assert res[k] == V.VIX_E_DISK_NOINIT, (k, V.ERROR_NAMES.get(res[k], res[k]))
    assert not res["exists_before"]
    assert res["init"] == res["connect"] == res["create"] == res["open"] == res["write"] == V.VIX_OK
    assert res["init2"] == V.VIX_OK, "InitEx after Exit must work"
    assert res["old_handle"] == V.VIX_E_INVALID_ARG
    assert res["reopen_rw"] == V.VIX_OK, "Exit must have released the disk's lock"
    assert res["kept"], "a write made before Exit was lost"
    if have_qemu():
        qemu_check(disk)  # Exit closed it cleanly


def test_null_connection_is_refused_everywhere(vix, conn, tmp_path):
    dll = vix.dll
    disk, other = tmp_path / "d.vmdk", tmp_path / "other.vmdk"
    conn.create(disk, 2048)
    cp = cparams()
    h = ctypes.c_void_p()
    calls = {
        "Create": lambda: dll.VixDiskLib_Create(None, bytes(other), ctypes.byref(cp), None, None),
        "Open RO": lambda: dll.VixDiskLib_Open(None, bytes(disk), RO, ctypes.byref(h)),
        "Open RW": lambda: dll.VixDiskLib_Open(None, bytes(disk), 0, ctypes.byref(h)),
        "Clone dst": lambda: dll.VixDiskLib_Clone(None, bytes(other), conn.handle, bytes(disk),
                                                  ctypes.byref(cp), None, None, 0),
        "Clone src": lambda: dll.VixDiskLib_Clone(conn.handle, bytes(other), None, bytes(disk),
                                                  ctypes.byref(cp), None, None, 0),
        "Grow": lambda: dll.VixDiskLib_Grow(None, bytes(disk), 4096, 0, None, None),
        "CheckRepair": lambda: dll.VixDiskLib_CheckRepair(None, bytes(disk), 0),
        "CheckRepair repair": lambda: dll.VixDiskLib_CheckRepair(None, bytes(disk), 1),
        "Unlink": lambda: dll.VixDiskLib_Unlink(None, bytes(disk)),
    }
    got = {name: call() for name, call in calls.items()}
    assert got == {name: V.VIX_E_INVALID_ARG for name in calls}
    assert not other.exists() and disk.exists()
    assert not h.value, "a handle was handed out"
    with conn.open(disk) as d:
        assert d.capacity == 2048, "Grow through a NULL connection changed the disk"


@pytest.mark.parametrize("kind", ["disconnected", "foreign", "garbage"])
def test_bad_connections_are_refused_by_read_only_calls_too(vix, conn, tmp_path, kind):
    dll = vix.dll
    disk, other = tmp_path / "d.vmdk", tmp_path / "other.vmdk"
    conn.create(disk, 2048)
    holder = conn.open(disk, RO)
    if kind == "disconnected":
        c = V.VixDiskLibConnection()
        assert dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(c)) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(c) == V.VIX_OK
        bad = c.value
    elif kind == "foreign":
        bad = holder.handle.value  # a disk handle where a connection belongs
    else:
        bad = 0xDEADBEE0
    cp = cparams()
    h = ctypes.c_void_p()
    got = {
        "Open RO": dll.VixDiskLib_Open(bad, bytes(disk), RO, ctypes.byref(h)),
        "Open RO single": dll.VixDiskLib_Open(bad, bytes(disk), RO | V.VIXDISKLIB_FLAG_OPEN_SINGLE_LINK,
                                              ctypes.byref(h)),
        "Open RW": dll.VixDiskLib_Open(bad, bytes(disk), 0, ctypes.byref(h)),
        "Create": dll.VixDiskLib_Create(bad, bytes(other), ctypes.byref(cp), None, None),
        "Clone src": dll.VixDiskLib_Clone(conn.handle, bytes(other), bad, bytes(disk), ctypes.byref(cp),
                                          None, None, 0),
        "CheckRepair": dll.VixDiskLib_CheckRepair(bad, bytes(disk), 0),
        "Grow": dll.VixDiskLib_Grow(bad, bytes(other), 4096, 0, None, None),
        "Disconnect": dll.VixDiskLib_Disconnect(bad),
    }
    assert got == {k: V.VIX_E_INVALID_ARG for k in got}
    assert not h.value and not other.exists()
    holder.read(0, 1)  # the handle used as a connection is untouched
    holder.close()


def test_fifos_are_refused_without_blocking(lib_path, tmp_path):
    fifo = tmp_path / "pipe.vmdk"
    os.mkfifo(fifo)
    os.mkfifo(tmp_path / "pipe-flat.raw")
    desc = tmp_path / "fifo-extent.vmdk"
    desc.write_text('# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
                    '\nRW 2048 FLAT "pipe-flat.raw" 0\n\n#DDB\n')
    # In a child process: a blocked open fails the test by timeout instead of hanging pytest.
    res = run_child(lib_path, f"""
        conn = lib.connect()
        cp = V.VixDiskLibCreateParams(diskType=1, adapterType=3, hwVersion=6, capacity=2048)
        h = ctypes.c_void_p()
        for name in ({str(fifo)!r}, {str(desc)!r}):
            p = name.encode()
            result[name + " open ro"] = dll.VixDiskLib_Open(conn.handle, p, 4, ctypes.byref(h))
            result[name + " open rw"] = dll.VixDiskLib_Open(conn.handle, p, 0, ctypes.byref(h))
            result[name + " clone"] = dll.VixDiskLib_Clone(conn.handle, {str(tmp_path / "c.vmdk")!r}.encode(),
                                                           conn.handle, p, ctypes.byref(cp), None, None, 0)
            result[name + " check"] = dll.VixDiskLib_CheckRepair(conn.handle, p, 0)
        conn.close()
        """, timeout=30)
    for k, v in res.items():
        assert v != V.VIX_OK, k
        if "check" not in k or "pipe.vmdk" in k:
            assert v == V.VIX_E_DISK_INVALIDDISK, (k, V.ERROR_NAMES.get(v, v))
    assert not (tmp_path / "c.vmdk").exists()


def test_async_io_in_a_child_forked_after_the_workers_started(lib_path, tmp_path):
    disk = tmp_path / "d.vmdk"
    res = run_child(lib_path, f"""
        import os, signal
        conn = lib.connect()
        conn.create({str(disk)!r}, 2048)
        d = conn.open({str(disk)!r})
        d.write(0, b"\\x42" * 512)
        d.flush()
        result["parent"] = d.read_async(0, 1).wait(10)   # starts the worker threads
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)                               # a hang kills the child
            buf = ctypes.create_string_buffer(512)
            seen = []
            cb = V.VixDiskLibCompletionCB(lambda data, err: seen.append(err))
            ok = dll.VixDiskLib_ReadAsync(d.handle, 0, 1, buf, cb, None) == V.VIX_ASYNC
            ok = ok and dll.VixDiskLib_Wait(d.handle) == V.VIX_OK
            ok = ok and seen == [V.VIX_OK] and buf.raw == b"\\x42" * 512
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        result["child_status"] = status
        result["parent_after"] = d.read_async(0, 1).wait(10)
        d.close()
        conn.close()
        """, timeout=60)
    assert res["parent"] and res["parent_after"]
    assert os.WIFEXITED(res["child_status"]), f"child died: status {res['child_status']:#x}"
    assert os.WEXITSTATUS(res["child_status"]) == 0, "ReadAsync + Wait failed in the forked child"


def test_hostile_disks_through_the_c_api(vix, conn, tmp_path):
    # A flat extent shorter than its extent line.
    short = tmp_path / "short.vmdk"
    conn.create(short, 2048, disk_type=V.VIXDISKLIB_DISK_MONOLITHIC_FLAT)
    os.truncate(tmp_path / "short-flat.vmdk", 1024 * 512)
    with conn.open(short, RO) as d:
        assert d.read(0, 1024) == bytes(1024 * 512)
        for start, count in ((1020, 8), (2047, 1)):
            with pytest.raises(V.VixErrorException) as e:
                d.read(start, count)
            assert e.value.code == V.VIX_E_DISK_NEEDSREPAIR
    # A NOACCESS extent.
    (tmp_path / "a.raw").write_bytes(b"\xa1" * 4096)
    (tmp_path / "b.raw").write_bytes(b"\xb2" * 4096)
    na = tmp_path / "na.vmdk"
    na.write_text('# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
                  '\nRW 8 FLAT "a.raw" 0\nNOACCESS 8 FLAT "b.raw" 0\n\n#DDB\n')
    with conn.open(na, RO) as d:
        assert d.read(0, 8) == b"\xa1" * 4096
        with pytest.raises(V.VixErrorException) as e:
            d.read(7, 2)
        assert e.value.code == V.VIX_E_FILE_ACCESS_ERROR
    # An unknown compression algorithm.
    s = tmp_path / "s.vmdk"
    conn.create(s, 2048, disk_type=V.VIXDISKLIB_DISK_STREAM_OPTIMIZED)
    with open(s, "r+b") as f:
        f.seek(77)
        f.write(b"\x07\x00")
    with pytest.raises(V.VixErrorException) as e:
        conn.open(s, RO)
    assert e.value.code == V.VIX_E_DISK_UNSUPPORTEDDISKVERSION
