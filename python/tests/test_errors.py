"""Error paths: right codes, no crashes, and the disk left untouched.

Calls that could crash a careless library (bad files, NULL buffers, double
Close) run in a child process so a crash fails one test, not the suite."""

from __future__ import annotations

import random

import pytest

import vixdisklib as V
from vdl_helpers import (DISK_SECTORS, SECTOR, file_state, fill, have_qemu, qemu_check, run_child,
                         sparse_header)

RO = V.VIXDISKLIB_FLAG_OPEN_READ_ONLY


@pytest.fixture
def disk(conn, tmp_path):
    """A 64 MiB sparse disk with some data; yields its path."""
    path = tmp_path / "d.vmdk"
    conn.create(path, DISK_SECTORS)
    with conn.open(path) as d:
        d.write(0, fill(0xA1, 64 * 1024))
        d.write(DISK_SECTORS - 8, fill(0xA2, 4096))
    return path


def _unchanged(path, before):
    assert file_state(path) == before, "a failed operation changed the disk files"
    if have_qemu():
        qemu_check(path)


def _open_code(lib_path, path, flags=0) -> dict:
    """Open (and if that works read everything) in a child process."""
    return run_child(lib_path, f"""
        conn = ctypes.c_void_p()
        assert dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn)) == 0
        h = ctypes.c_void_p()
        result["open"] = dll.VixDiskLib_Open(conn, {str(path)!r}.encode(), {flags}, ctypes.byref(h))
        result["handle_null"] = not h.value
        if result["open"] == 0:
            info = ctypes.POINTER(V.VixDiskLibInfo)()
            result["getinfo"] = dll.VixDiskLib_GetInfo(h, ctypes.byref(info))
            cap = info.contents.capacity if result["getinfo"] == 0 else 0
            if result["getinfo"] == 0:
                dll.VixDiskLib_FreeInfo(info)
            result["capacity"] = cap
            buf = ctypes.create_string_buffer(2048 * 512)
            reads = []
            for s in range(0, cap, 2048):
                n = min(2048, cap - s)
                reads.append(dll.VixDiskLib_Read(h, s, n, buf))
            result["reads"] = sorted(set(reads))
            result["close"] = dll.VixDiskLib_Close(h)
        dll.VixDiskLib_Disconnect(conn)
        """)


def test_open_missing_file(conn, tmp_path):
    with pytest.raises(V.VixErrorException) as ei:
        conn.open(tmp_path / "missing.vmdk")
    assert ei.value.code == V.VIX_E_FILE_NOT_FOUND
    with pytest.raises(V.VixErrorException) as ei:
        conn.open(tmp_path / "missing.vmdk", RO)
    assert ei.value.code == V.VIX_E_FILE_NOT_FOUND


@pytest.mark.parametrize("kind", ["random", "text", "empty", "kdmv-garbage"])
def test_open_non_vmdk(lib_path, tmp_path, record_property, kind):
    path = tmp_path / f"{kind}.vmdk"
    rnd = random.Random(1234)
    if kind == "random":
        data = bytes(rnd.getrandbits(8) for _ in range(256 * 1024))
        assert data[:4] not in (b"KDMV", b"COWD", b"# Di")
    elif kind == "text":
        data = b"this is not a disk descriptor\nfoo = bar\n" * 10
    elif kind == "empty":
        data = b""
    else:  # right magic, nonsense header
        data = b"KDMV" + bytes(rnd.getrandbits(8) for _ in range(64 * 1024 - 4))
    path.write_bytes(data)
    before = file_state(path)
    for flags in (RO, 0):
        res = _open_code(lib_path, path, flags)
        record_property(f"open_{kind}_flags{flags}", res["open"])
        print(f"non-VMDK {kind} flags={flags}: {res}")
        assert res["open"] != V.VIX_OK, f"opening a {kind} file as a VMDK succeeded: {res}"
        assert res["handle_null"], "handle must be NULL on failure"
        code = res["open"] & 0xFFFF
        # expected: VIX_E_DISK_INVALIDDISK (16063) or the VIX_E_INCORRECT_FILE_TYPE (9) family;
        # any real error code is accepted, the one seen is recorded
        assert code in V.ERROR_NAMES and code not in (V.VIX_OK, V.VIX_ASYNC, V.VIX_E_FILE_NOT_FOUND), \
            f"unexpected code {res['open']} ({V.ERROR_NAMES.get(code)})"
    assert file_state(path) == before, "a failed open modified the file"


def test_open_truncated_to_1000_bytes(lib_path, disk, tmp_path, record_property):
    path = tmp_path / "t1000" / "t.vmdk"
    path.parent.mkdir()
    path.write_bytes(disk.read_bytes()[:1000])
    before = file_state(path)
    for flags in (RO, 0):
        res = _open_code(lib_path, path, flags)
        record_property(f"truncated1000_flags{flags}", res["open"])
        assert res["open"] != V.VIX_OK, f"a VMDK truncated to 1000 bytes opened: {res}"
        assert res["handle_null"]
    assert file_state(path) == before


def test_open_truncated_half_metadata(conn, lib_path, tmp_path, record_property):
    """A disk big enough that half of its metadata area cuts through the
    grain tables: open must fail, or every read of lost data must fail --
    never return made-up data as success."""
    src = tmp_path / "big.vmdk"
    conn.create(src, 8 * 1024 * 2048)  # 8 GiB
    with conn.open(src) as d:
        d.write(0, fill(0xB1, 4096))
        d.write(4 * 1024 * 2048, fill(0xB2, 4096))
    h = sparse_header(src)
    cut = h["overhead"] * SECTOR // 2
    assert h["desc_off"] + h["desc_size"] < cut // SECTOR < max(h["gd"], h["rgd"]) + 4 * 256, \
        f"harness: the cut must fall inside the grain tables: {h}"
    path = tmp_path / "half" / "t.vmdk"
    path.parent.mkdir()
    path.write_bytes(src.read_bytes()[:cut])
    before = file_state(path)
    res = _open_code(lib_path, path, RO)
    record_property("truncated_half_metadata", res)
    print("half-metadata truncation:", res)
    if res["open"] == V.VIX_OK:
        assert res["reads"] != [V.VIX_OK], f"reads of a truncated disk all succeeded: {res}"
    assert file_state(path) == before


def test_out_of_range(conn, disk):
    before = file_state(disk)
    with conn.open(disk) as d:
        for start, n in ((DISK_SECTORS, 1), (DISK_SECTORS - 1, 2), (DISK_SECTORS + 1000, 8), (2 ** 63, 1)):
            with pytest.raises(V.VixErrorException) as ei:
                d.read(start, n)
            assert ei.value.code == V.VIX_E_DISK_OUTOFRANGE, (start, n, ei.value)
            with pytest.raises(V.VixErrorException) as ei:
                d.write(start, bytes(n * SECTOR))
            assert ei.value.code == V.VIX_E_DISK_OUTOFRANGE, (start, n, ei.value)
        assert d.read(DISK_SECTORS - 8, 8) == fill(0xA2, 4096)  # the last sectors still work
    _unchanged(disk, before)


def test_out_of_range_overflow_no_crash(lib_path, disk):
    """start + count wraps around 2**64: must be an error, not a wild access."""
    before = file_state(disk)
    res = run_child(lib_path, f"""
        conn = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn))
        h = ctypes.c_void_p()
        assert dll.VixDiskLib_Open(conn, {str(disk)!r}.encode(), 0, ctypes.byref(h)) == 0
        buf = ctypes.create_string_buffer(4 * 512)
        result["read"] = dll.VixDiskLib_Read(h, 2**64 - 2, 4, buf)
        result["write"] = dll.VixDiskLib_Write(h, 2**64 - 2, 4, buf)
        result["close"] = dll.VixDiskLib_Close(h)
        dll.VixDiskLib_Disconnect(conn)
        """)
    assert res["read"] & 0xFFFF in (V.VIX_E_DISK_OUTOFRANGE, V.VIX_E_INVALID_ARG), res
    assert res["write"] & 0xFFFF in (V.VIX_E_DISK_OUTOFRANGE, V.VIX_E_INVALID_ARG), res
    assert res["close"] == V.VIX_OK
    _unchanged(disk, before)


def test_write_on_read_only_handle(conn, disk):
    before = file_state(disk)
    with conn.open(disk, RO) as d:
        with pytest.raises(V.VixErrorException) as ei:
            d.write(0, fill(0xEE, 512))
        assert ei.value.code == V.VIX_E_FILE_READ_ONLY
        with pytest.raises(V.VixErrorException) as ei:
            d.write_metadata("foo", "bar")
        assert ei.value.code == V.VIX_E_FILE_READ_ONLY
        assert d.read(0, 1) == fill(0xA1, 512)
    _unchanged(disk, before)


def test_null_buffer(lib_path, disk):
    before = file_state(disk)
    res = run_child(lib_path, f"""
        conn = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn))
        h = ctypes.c_void_p()
        assert dll.VixDiskLib_Open(conn, {str(disk)!r}.encode(), 0, ctypes.byref(h)) == 0
        result["read"] = dll.VixDiskLib_Read(h, 0, 1, None)
        result["write"] = dll.VixDiskLib_Write(h, 0, 1, None)
        cb = V.VixDiskLibCompletionCB(lambda d, r: None)
        result["read_async"] = dll.VixDiskLib_ReadAsync(h, 0, 1, None, cb, None)
        result["write_async"] = dll.VixDiskLib_WriteAsync(h, 0, 1, None, cb, None)
        dll.VixDiskLib_Wait(h)
        result["getinfo_null_out"] = dll.VixDiskLib_GetInfo(h, None)
        result["open_null_out"] = dll.VixDiskLib_Open(conn, {str(disk)!r}.encode(), 4, None)
        result["open_null_path"] = dll.VixDiskLib_Open(conn, None, 4, ctypes.byref(ctypes.c_void_p()))
        result["close"] = dll.VixDiskLib_Close(h)
        result["read_null_handle"] = dll.VixDiskLib_Read(None, 0, 1, ctypes.create_string_buffer(512))
        result["close_null"] = dll.VixDiskLib_Close(None)
        result["mode_null"] = dll.VixDiskLib_GetTransportMode(None)
        dll.VixDiskLib_Disconnect(conn)
        """)
    for k in ("read", "write", "read_async", "write_async", "getinfo_null_out", "open_null_out",
              "open_null_path", "read_null_handle", "close_null"):
        assert res[k] == V.VIX_E_INVALID_ARG, f"{k}: expected VIX_E_INVALID_ARG (3), got {res[k]}; {res}"
    assert res["close"] == V.VIX_OK
    assert res["mode_null"] is None
    _unchanged(disk, before)


def test_double_close(lib_path, disk):
    before = file_state(disk)
    res = run_child(lib_path, f"""
        conn = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn))
        h = ctypes.c_void_p()
        assert dll.VixDiskLib_Open(conn, {str(disk)!r}.encode(), 0, ctypes.byref(h)) == 0
        result["close1"] = dll.VixDiskLib_Close(h)
        result["close2"] = dll.VixDiskLib_Close(h)
        buf = ctypes.create_string_buffer(512)
        result["read_after_close"] = dll.VixDiskLib_Read(h, 0, 1, buf)
        # the library keeps working afterwards
        h2 = ctypes.c_void_p()
        result["reopen"] = dll.VixDiskLib_Open(conn, {str(disk)!r}.encode(), 4, ctypes.byref(h2))
        result["read2"] = dll.VixDiskLib_Read(h2, 0, 1, buf)
        result["data_ok"] = buf.raw == b"\\xa1" * 512
        result["close3"] = dll.VixDiskLib_Close(h2)
        dll.VixDiskLib_Disconnect(conn)
        """)
    assert res["close1"] == V.VIX_OK
    assert res["close2"] == V.VIX_E_INVALID_ARG, res
    assert res["read_after_close"] == V.VIX_E_INVALID_ARG, res
    assert res["reopen"] == V.VIX_OK and res["read2"] == V.VIX_OK and res["data_ok"] and res["close3"] == 0
    _unchanged(disk, before)


def test_second_read_write_open_is_locked(conn, disk):
    before_dir = sorted(p.name for p in disk.parent.iterdir())
    d1 = conn.open(disk)
    try:
        with pytest.raises(V.VixErrorException) as ei:
            conn.open(disk)
        assert ei.value.code == V.VIX_E_FILE_ALREADY_LOCKED
        d1.write(16, fill(0x5C, 512))  # the first handle is unaffected
        assert d1.read(16, 1) == fill(0x5C, 512)
    finally:
        d1.close()
    with conn.open(disk) as d2:  # lock released by Close
        assert d2.read(16, 1) == fill(0x5C, 512)
    assert sorted(p.name for p in disk.parent.iterdir()) == before_dir, "lock files left behind after Close"
    if have_qemu():
        qemu_check(disk)


def test_read_only_opens_share(conn, disk):
    before = file_state(disk)
    with conn.open(disk, RO) as a, conn.open(disk, RO) as b:
        assert a.read(0, 1) == b.read(0, 1) == fill(0xA1, 512)
    _unchanged(disk, before)


def test_create_on_existing_path(conn, disk, tmp_path):
    before = file_state(disk)
    for dtype in (V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, V.VIXDISKLIB_DISK_MONOLITHIC_FLAT):
        with pytest.raises(V.VixErrorException) as ei:
            conn.create(disk, 2048, disk_type=dtype)
        assert ei.value.code == V.VIX_E_FILE_ALREADY_EXISTS
    _unchanged(disk, before)
    other = tmp_path / "plain.vmdk"
    other.write_bytes(b"precious")
    with pytest.raises(V.VixErrorException) as ei:
        conn.create(other, 2048)
    assert ei.value.code == V.VIX_E_FILE_ALREADY_EXISTS
    assert other.read_bytes() == b"precious"


def test_create_in_missing_directory(conn, tmp_path):
    with pytest.raises(V.VixErrorException) as ei:
        conn.create(tmp_path / "nodir" / "x.vmdk", 2048)
    assert ei.value.code != V.VIX_OK
    assert not (tmp_path / "nodir").exists()


def test_failed_write_metadata_changes_nothing(conn, disk):
    """WriteMetadata that cannot be stored (value too big for the 10 KiB
    embedded descriptor; characters a descriptor cannot hold) must fail
    without touching the file *or* the handle's view of the metadata; the
    handle keeps working for later, valid WriteMetadata calls."""
    before = file_state(disk)
    with conn.open(disk) as d:
        keys_before = d.metadata_keys()
        with pytest.raises(V.VixErrorException):
            d.write_metadata("big", "v" * 12000)
        with pytest.raises(V.VixErrorException):
            d.write_metadata("inj", 'x"\nRW 999 FLAT "evil.vmdk" 0\nddb.adapterType = "ide')
        assert d.metadata_keys() == keys_before, "a failed WriteMetadata left its key visible on the handle"
        with pytest.raises(V.VixErrorException) as ei:
            d.read_metadata("big")
        assert ei.value.code == V.VIX_E_DISK_KEY_NOTFOUND
    _unchanged(disk, before)
    with conn.open(disk) as d:
        with pytest.raises(V.VixErrorException):
            d.write_metadata("big", "v" * 12000)
        d.write_metadata("small", "1")  # must still work on the same handle
    with conn.open(disk, RO) as d:
        assert d.read_metadata("small") == "1"
        assert "big" not in d.metadata_keys()
        assert d.read_metadata("adapterType") == "lsilogic"
    if have_qemu():
        qemu_check(disk)
