"""Basic lifecycle and synchronous I/O through the ctypes binding."""

from __future__ import annotations

import ctypes
import os

import pytest

import vixdisklib as V
from vdl_helpers import (DISK_SECTORS, GRAIN, MiB, SECTOR, descriptor_dict, fill, have_qemu, qemu_check,
                         run_child)


def test_all_46_functions_are_exported(dll):
    assert dll.missing_functions == [], f"missing exports: {dll.missing_functions}"


def test_lifecycle_in_fresh_process(lib_path, tmp_path):
    """AllocateConnectParams before InitEx; InitEx with Python log callbacks;
    a full Create/Open/Write/Read/Close/Disconnect/Exit; then a second InitEx
    after Exit works.  Runs in a new process so "before InitEx" is real."""
    disk = tmp_path / "life.vmdk"
    res = run_child(lib_path, f"""
        path = {str(disk)!r}.encode()
        calls = {{"log": [], "warn": [], "panic": []}}
        def make(kind):
            def cb(fmt, va):
                calls[kind].append((fmt, V.format_va_list(fmt, va)))
            return V.VixDiskLibGenericLogFunc(cb)
        cbs = [make(k) for k in ("log", "warn", "panic")]

        # before InitEx
        p = dll.VixDiskLib_AllocateConnectParams()
        result["alloc_before_init"] = bool(p)
        if p:
            result["alloc_zeroed"] = ctypes.string_at(p, 128) == bytes(128)
            dll.VixDiskLib_FreeConnectParams(p)
        m = dll.VixDiskLib_ListTransportModes()
        result["modes_before_init"] = None if m is None else m.decode()

        result["initex"] = dll.VixDiskLib_InitEx(6, 7, cbs[0], cbs[1], cbs[2], None, None)
        m = dll.VixDiskLib_ListTransportModes()
        result["modes"] = None if m is None else m.decode()
        p = dll.VixDiskLib_AllocateConnectParams()
        conn = ctypes.c_void_p()
        result["connectex"] = dll.VixDiskLib_ConnectEx(p, 0, None, None, ctypes.byref(conn))
        cp = V.VixDiskLibCreateParams(diskType=V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                      adapterType=V.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                                      hwVersion=V.VIXDISKLIB_HWVERSION_WORKSTATION_5, capacity=2048 * 16)
        result["create"] = dll.VixDiskLib_Create(conn, path, ctypes.byref(cp), None, None)
        h = ctypes.c_void_p()
        result["open"] = dll.VixDiskLib_Open(conn, path, 0, ctypes.byref(h))
        wbuf = ctypes.create_string_buffer(bytes(range(256)) * 8, 2048)
        result["write"] = dll.VixDiskLib_Write(h, 100, 4, wbuf)
        rbuf = ctypes.create_string_buffer(2048)
        result["read"] = dll.VixDiskLib_Read(h, 100, 4, rbuf)
        result["read_ok"] = rbuf.raw == wbuf.raw
        tm = dll.VixDiskLib_GetTransportMode(h)
        result["transport"] = None if tm is None else tm.decode()
        result["close"] = dll.VixDiskLib_Close(h)
        result["disconnect"] = dll.VixDiskLib_Disconnect(conn)
        dll.VixDiskLib_FreeConnectParams(p)
        dll.VixDiskLib_Exit()
        result["log_calls"] = len(calls["log"])
        result["warn_calls"] = len(calls["warn"])
        result["panic_calls"] = len(calls["panic"])
        result["messages"] = [m for k in ("log", "warn", "panic") for _, m in calls[k]][:20]
        result["fmt_types_ok"] = all(isinstance(f, bytes) and f for k in calls for f, _ in calls[k])

        # second InitEx after Exit, this time with Init() and NULL-free Connect(NULL)
        result["initex2"] = dll.VixDiskLib_InitEx(6, 5, cbs[0], cbs[1], cbs[2], None, None)
        m = dll.VixDiskLib_ListTransportModes()
        result["modes2"] = None if m is None else m.decode()
        conn = ctypes.c_void_p()
        result["connect2"] = dll.VixDiskLib_Connect(None, ctypes.byref(conn))
        h = ctypes.c_void_p()
        result["open2"] = dll.VixDiskLib_Open(conn, path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY, ctypes.byref(h))
        rbuf = ctypes.create_string_buffer(2048)
        result["read2"] = dll.VixDiskLib_Read(h, 100, 4, rbuf)
        result["read2_ok"] = rbuf.raw == wbuf.raw
        result["close2"] = dll.VixDiskLib_Close(h)
        result["disconnect2"] = dll.VixDiskLib_Disconnect(conn)
        dll.VixDiskLib_Exit()
        """, init=False)

    assert res["alloc_before_init"], "AllocateConnectParams returned NULL before InitEx"
    assert res["alloc_zeroed"], "AllocateConnectParams must return a zeroed struct"
    assert res["modes_before_init"] is None, \
        f"ListTransportModes before InitEx should be NULL, got {res['modes_before_init']!r}"
    for k in ("initex", "connectex", "create", "open", "write", "read", "close", "disconnect",
              "initex2", "connect2", "open2", "read2", "close2", "disconnect2"):
        assert res[k] == V.VIX_OK, f"{k} returned {res[k]} ({V.ERROR_NAMES.get(res[k] & 0xffff)}); {res}"
    assert res["read_ok"] and res["read2_ok"]
    assert res["transport"] == "file"
    assert "file" in res["modes"].split(":")
    assert "file" in res["modes2"].split(":")
    assert res["log_calls"] + res["warn_calls"] > 0, "the log/warn callbacks given to InitEx were never called"
    assert res["panic_calls"] == 0, f"panic callback called: {res['messages']}"
    assert res["fmt_types_ok"]


def test_create_open_write_read_sparse(conn, tmp_path):
    path = tmp_path / "rw.vmdk"
    conn.create(path, DISK_SECTORS)
    assert path.exists()
    data = {0: fill(0x01, 512), 127: fill(0x02, 1024), 4096: os.urandom(64 * 1024),
            DISK_SECTORS - 8: fill(0x03, 4096), 65536 - 1: fill(0x04, 1024)}  # last one straddles 32 MiB
    with conn.open(path) as d:
        assert d.read(2048, 8) == bytes(4096), "a fresh sparse disk must read zeros"
        for s, buf in data.items():
            d.write(s, buf)
        for s, buf in data.items():
            assert d.read(s, len(buf) // SECTOR) == buf, f"read-back at sector {s}"
        assert d.read(1, 126) == bytes(126 * SECTOR)  # untouched space between writes
    # persisted across close/reopen
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        for s, buf in data.items():
            assert d.read(s, len(buf) // SECTOR) == buf, f"after reopen, sector {s}"
    if have_qemu():
        qemu_check(path)


def test_create_open_write_read_flat(conn, tmp_path):
    path = tmp_path / "flat.vmdk"
    conn.create(path, 8 * 2048, disk_type=V.VIXDISKLIB_DISK_MONOLITHIC_FLAT)
    extent = tmp_path / "flat-flat.vmdk"
    assert extent.exists(), f"flat extent not found; files: {sorted(p.name for p in tmp_path.iterdir())}"
    assert extent.stat().st_size == 8 * MiB
    assert descriptor_dict(path).get("createType") == "monolithicFlat"
    payload = os.urandom(3 * SECTOR)
    with conn.open(path) as d:
        d.write(1000, payload)
        assert d.read(1000, 3) == payload
    assert extent.read_bytes()[1000 * SECTOR:1003 * SECTOR] == payload, "flat extent must hold the raw data"


def test_get_info(conn, tmp_path):
    path = tmp_path / "info.vmdk"
    cap = 100 * 2048  # 100 MiB
    conn.create(path, cap, adapter_type=V.VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC)
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        info = d.info()
        assert info.capacity == cap
        assert info.adapter_type == V.VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC
        assert info.num_links == 1
        assert info.uuid, "uuid must be non-empty"
        assert info.logical_sector_size == 512
        assert info.physical_sector_size == 512
        assert not info.parent_file_name_hint
        for geo in (info.phys_geometry, info.bios_geometry):
            c, h, s = geo
            assert 1 <= h <= 255 and 1 <= s <= 63 and c >= 1, geo
            assert c * h * s <= cap, f"geometry {geo} exceeds capacity {cap}"
            assert c * h * s > cap - h * s - 1, f"geometry {geo} too small for capacity {cap}"
        assert d.transport_mode() == "file"


def test_list_transport_modes(vix):
    modes = vix.list_transport_modes()
    assert modes is not None and "file" in modes.split(":")


@pytest.mark.parametrize("adapter,name,heads", [
    (V.VIXDISKLIB_ADAPTER_IDE, "ide", {16}),
    (V.VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC, "buslogic", None),
    (V.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC, "lsilogic", None),
])
def test_create_adapter_types(conn, tmp_path, adapter, name, heads):
    path = tmp_path / f"ad-{name}.vmdk"
    cap = 2 * 1024 * 2048  # 2 GiB, big enough for non-trivial geometry
    conn.create(path, cap, adapter_type=adapter)
    desc = descriptor_dict(path)
    assert desc.get("ddb.adapterType") == name, desc
    c, h, s = (int(desc["ddb.geometry.cylinders"]), int(desc["ddb.geometry.heads"]),
               int(desc["ddb.geometry.sectors"]))
    assert 1 <= h <= 255 and 1 <= s <= 63 and c >= 1
    if heads:
        assert h in heads, f"IDE disks use 16 heads, got {h}"
    assert c * h * s <= cap and c * h * s > cap - h * s - 1, (c, h, s, cap)
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        info = d.info()
        assert info.adapter_type == adapter
        assert info.phys_geometry == (c, h, s), f"GetInfo physGeo {info.phys_geometry} != descriptor {(c, h, s)}"
        assert d.read_metadata("adapterType") == name
    if have_qemu():
        qemu_check(path)


def test_connect_ex_read_only_forces_read_only(vix, conn, tmp_path):
    path = tmp_path / "ro.vmdk"
    conn.create(path, 2048)
    with vix.connect(read_only=True) as ro:
        with ro.open(path) as d:  # no READ_ONLY flag: the connection forces it
            assert d.read(0, 1) == bytes(512)
            with pytest.raises(V.VixErrorException) as ei:
                d.write(0, fill(1, 512))
            assert ei.value.code == V.VIX_E_FILE_READ_ONLY


def test_connect_ex_transport_file(vix, tmp_path):
    with vix.connect(transport_modes="file") as c:
        c.create(tmp_path / "t.vmdk", 2048)


def test_cleanup_local_is_noop(dll, vix):
    p = dll.VixDiskLib_AllocateConnectParams()
    try:
        a, b = ctypes.c_uint32(7), ctypes.c_uint32(7)
        assert dll.VixDiskLib_Cleanup(p, ctypes.byref(a), ctypes.byref(b)) == V.VIX_OK
        assert (a.value, b.value) == (0, 0)
    finally:
        dll.VixDiskLib_FreeConnectParams(p)


def test_error_text(vix, dll):
    t = vix.error_text(V.VIX_E_FILE_NOT_FOUND)
    assert t and t.strip(), "GetErrorText must give a text for VIX_E_FILE_NOT_FOUND"
    assert vix.error_text(V.VIX_E_DISK_OUTOFRANGE) != t
    # an unknown code still gives some text (or NULL) without crashing
    vix.error_text(54321)
    dll.VixDiskLib_FreeErrorText(None)  # documented as OK


def test_exception_carries_code_and_text(conn, tmp_path):
    with pytest.raises(V.VixErrorException) as ei:
        conn.open(tmp_path / "nope.vmdk")
    e = ei.value
    assert e.code == V.VIX_E_FILE_NOT_FOUND
    assert e.name == "VIX_E_FILE_NOT_FOUND"
    assert e.text, "exception should carry GetErrorText's text"
    assert e.function == "VixDiskLib_Open"


def test_metadata(conn, tmp_path):
    path = tmp_path / "meta.vmdk"
    conn.create(path, 2048 * 4, adapter_type=V.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC)
    with conn.open(path) as d:
        keys = d.metadata_keys()
        for k in ("adapterType", "geometry.cylinders", "geometry.heads", "geometry.sectors"):
            assert k in keys, keys
        assert d.read_metadata("adapterType") == "lsilogic"
        # two-step protocol: a too-small buffer gives VIX_E_BUFFER_TOOSMALL and the size
        need = ctypes.c_size_t(0)
        buf = ctypes.create_string_buffer(2)
        err = d.dll.VixDiskLib_ReadMetadata(d.handle, b"adapterType", buf, 2, ctypes.byref(need))
        assert err == V.VIX_E_BUFFER_TOOSMALL and need.value == len("lsilogic") + 1
        with pytest.raises(V.VixErrorException) as ei:
            d.read_metadata("no.such.key")
        assert ei.value.code == V.VIX_E_DISK_KEY_NOTFOUND
        d.write_metadata("backup.tag", "run-42")
        assert d.read_metadata("backup.tag") == "run-42"
    with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        assert d.read_metadata("backup.tag") == "run-42", "WriteMetadata must persist"
    assert descriptor_dict(path).get("ddb.backup.tag") == "run-42"
    if have_qemu():
        qemu_check(path)


def test_query_allocated_blocks(conn, tmp_path):
    path = tmp_path / "qab.vmdk"
    conn.create(path, DISK_SECTORS)
    g = GRAIN // SECTOR
    with conn.open(path) as d:
        assert d.query_allocated_blocks(0, DISK_SECTORS, g) == []
        d.write(0, fill(1, 512))  # grain 0
        d.write(5 * g + 3, fill(2, 512 * (g + 1)))  # grains 5 and 6
        d.write(DISK_SECTORS - 1, fill(3, 512))  # last grain
        blocks = d.query_allocated_blocks(0, DISK_SECTORS, g)
        assert blocks == [(0, g), (5 * g, 2 * g), (DISK_SECTORS - g, g)], blocks
        # nbdkit's probe
        assert d.query_allocated_blocks(0, g, g) == [(0, g)]
