"""Remote disks over NBD behind VixDiskLib's API (issue 11): qemu-nbd serving VMDK and qcow2
images, nbdkit's memory and file plugins, read/write/async/flush/info through the C API,
QueryAllocatedBlocks from block status, QueryChangedAreas from qemu dirty bitmaps, TLS with
a PSK, and the maintenance calls a remote disk refuses. Data is checked with qemu-img."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

import vixdisklib as V
from nbd_servers import (capacity, connect, free_port, nbdkit, open_disk, qemu_nbd, read, remote_params,
                         require_nbd_tools, write)
from vdl_helpers import MiB, qemu_io, run, run_child

pytestmark = pytest.mark.usefixtures("nbd_tools")


@pytest.fixture(scope="module")
def nbd_tools():
    require_nbd_tools()


def make_image(path: Path, fmt: str, size: int, writes: list[tuple[int, int, int]]) -> Path:
    run(["qemu-img", "create", "-q", "-f", fmt, str(path), str(size)])
    if writes:
        qemu_io(fmt, path, *[f"write -P {b:#x} {o} {n}" for o, n, b in writes])
    return path


WRITES = [(0, 1 * MiB, 0xAB), (10 * MiB, 64 * 1024, 0xCD), (63 * MiB, 512, 0x11)]


def test_list_transport_modes(vix):
    assert vix.list_transport_modes() == "file:nbdssl:nbd"


def test_qemu_nbd_vmdk_read_write_verified_with_qemu_img(dll, vix, tmp_path):
    img = make_image(tmp_path / "d.vmdk", "vmdk", 64 * MiB, WRITES)
    ref = make_image(tmp_path / "ref.raw", "raw", 64 * MiB, WRITES)
    with qemu_nbd(img, "vmdk", tmp_path / "s.sock") as srv:
        err, conn = connect(dll, remote_params(srv.uri))
        assert err == V.VIX_OK
        err, h = open_disk(dll, conn)
        assert err == V.VIX_OK
        assert dll.VixDiskLib_GetTransportMode(h) == b"nbd"
        assert capacity(dll, h) == 64 * MiB // 512
        err, data = read(dll, h, 0, 2048 + 8)
        assert err == V.VIX_OK and data[:MiB] == b"\xab" * MiB and data[MiB:] == bytes(8 * 512)
        # 40 MiB in one call: cut into several NBD requests, pipelined.
        big = bytes(range(256)) * (40 * MiB // 256)
        assert write(dll, h, 4 * 2048, big) == V.VIX_OK
        assert write(dll, h, 131071, b"\x5a" * 512) == V.VIX_OK
        assert write(dll, h, 131072, b"\x5a" * 512) == V.VIX_E_DISK_OUTOFRANGE
        assert dll.VixDiskLib_Flush(h) == V.VIX_OK
        err, back = read(dll, h, 4 * 2048, 40 * 2048)
        assert err == V.VIX_OK and back == big
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Close(h) == V.VIX_E_INVALID_ARG
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK
    qemu_io("raw", ref, f"write -P 0x5a {131071 * 512} 512")
    with open(ref, "r+b") as f:
        f.seek(4 * MiB)
        f.write(big)
    run(["qemu-img", "check", "-q", "-f", "vmdk", str(img)])
    assert run(["qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", str(img), str(ref)],
               check=False).returncode == 0


def test_qcow2_read_only_export_and_read_only_connection_refuse_writes(dll, vix, tmp_path):
    img = make_image(tmp_path / "d.qcow2", "qcow2", 64 * MiB, WRITES)
    before = run(["qemu-img", "info", "--output=json", str(img)]).stdout
    with qemu_nbd(img, "qcow2", tmp_path / "ro.sock", read_only=True) as srv:
        _, conn = connect(dll, remote_params(srv.uri), modes=None)
        err, h = open_disk(dll, conn)
        assert err == V.VIX_OK
        assert write(dll, h, 0, bytes(512)) == V.VIX_E_FILE_READ_ONLY
        cb_calls = []
        cb = V.VixDiskLibCompletionCB(lambda data, e: cb_calls.append(e))
        buf = ctypes.create_string_buffer(512)
        assert dll.VixDiskLib_WriteAsync(h, 0, 1, buf, cb, None) == V.VIX_E_FILE_READ_ONLY
        err, data = read(dll, h, 20480, 128)
        assert err == V.VIX_OK and data == b"\xcd" * 65536
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK
        assert cb_calls == []
    with qemu_nbd(img, "qcow2", tmp_path / "rw.sock") as srv:
        _, conn = connect(dll, remote_params(srv.uri), read_only=True)
        err, h = open_disk(dll, conn)
        assert err == V.VIX_OK
        assert write(dll, h, 0, bytes(512)) == V.VIX_E_FILE_READ_ONLY
        _, ro = open_disk(dll, conn, flags=V.VIXDISKLIB_FLAG_OPEN_READ_ONLY)
        assert write(dll, ro, 0, bytes(512)) == V.VIX_E_FILE_READ_ONLY
        for x in (h, ro):
            assert dll.VixDiskLib_Close(x) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK
    run(["qemu-img", "check", "-q", str(img)])
    assert json.loads(run(["qemu-img", "info", "--output=json", str(img)]).stdout)["actual-size"] == \
        json.loads(before)["actual-size"]
    assert qemu_io("qcow2", img, "read -P 0xab 0 1M", read_only=True).returncode == 0


def test_nbdkit_memory_over_tcp_with_host_and_port(dll, vix):
    port = free_port()
    with nbdkit(["memory", "32M"], port=port):
        # A bare host with the port field, as VDDK programs pass an ESXi host.
        _, conn = connect(dll, remote_params("127.0.0.1", port=port), modes=b"nbdssl:nbd")
        err, h = open_disk(dll, conn, b"anything")
        assert err == V.VIX_OK, err
        assert dll.VixDiskLib_GetTransportMode(h) == b"nbd"
        assert capacity(dll, h) == 32 * MiB // 512
        assert write(dll, h, 4096, b"\x42" * 4096) == V.VIX_OK
        err, data = read(dll, h, 4095, 10)
        assert err == V.VIX_OK and data == bytes(512) + b"\x42" * 4096 + bytes(512)
        # The memory plugin reports holes: only the written chunk is allocated.
        p = ctypes.POINTER(V.VixDiskLibBlockList)()
        assert dll.VixDiskLib_QueryAllocatedBlocks(h, 0, 65536, 128, ctypes.byref(p)) == V.VIX_OK
        blocks = [(b.offset, b.length) for b in p.contents.block_array()]
        assert dll.VixDiskLib_FreeBlockList(p) == V.VIX_OK
        assert blocks == [(4096, 128)]
        pp = ctypes.POINTER(V.VixDiskLibConnectParams)()
        assert dll.VixDiskLib_GetConnectParams(conn, ctypes.byref(pp)) == V.VIX_OK
        assert pp.contents.serverName == b"127.0.0.1" and pp.contents.port == port
        dll.VixDiskLib_FreeConnectParams(pp)
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK


def test_nbdkit_file_plugin_named_export(dll, vix, tmp_path):
    raw = make_image(tmp_path / "f.raw", "raw", 8 * MiB, [(MiB, 4096, 0x77)])
    with nbdkit(["file", f"dir={tmp_path}"], sock=tmp_path / "k.sock") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        err, h = open_disk(dll, conn, b"f.raw")
        assert err == V.VIX_OK
        err, data = read(dll, h, 2048, 8)
        assert err == V.VIX_OK and data == b"\x77" * 4096
        assert write(dll, h, 0, b"\x01" * 1024) == V.VIX_OK
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        err, h = open_disk(dll, conn, b"missing.raw")
        assert err == V.VIX_E_FILE_NOT_FOUND and not h.value
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK
    assert raw.read_bytes()[:1024] == b"\x01" * 1024


def test_query_allocated_blocks_matches_qemu_img_map(dll, vix, tmp_path):
    writes = [(0, 64 * 1024, 1), (5 * MiB + 4096, 4096, 2), (40 * MiB, 3 * MiB, 3), (64 * MiB - 512, 512, 4)]
    img = make_image(tmp_path / "a.qcow2", "qcow2", 64 * MiB, writes)
    chunk = 128
    data = [(e["start"], e["length"]) for e in
            json.loads(run(["qemu-img", "map", "--output=json", str(img)]).stdout) if e["data"]]
    expect = set()
    for start, length in data:
        for c in range(start // 512 // chunk, (start + length - 1) // 512 // chunk + 1):
            expect.add(c)
    with qemu_nbd(img, "qcow2", tmp_path / "s.sock", read_only=True) as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        _, h = open_disk(dll, conn)
        p = ctypes.POINTER(V.VixDiskLibBlockList)()
        cap = capacity(dll, h)
        assert dll.VixDiskLib_QueryAllocatedBlocks(h, 0, cap, chunk, ctypes.byref(p)) == V.VIX_OK
        got = set()
        for b in p.contents.block_array():
            assert b.offset % chunk == 0 and b.length % chunk == 0
            got.update(range(b.offset // chunk, (b.offset + b.length) // chunk))
        dll.VixDiskLib_FreeBlockList(p)
        assert got == expect
        # VDDK's argument rules apply remotely too.
        for args in [(0, cap, 64), (1, 128, 128), (0, cap + 128, 128), (0, 128, 262144)]:
            p = ctypes.POINTER(V.VixDiskLibBlockList)()
            assert dll.VixDiskLib_QueryAllocatedBlocks(h, *args, ctypes.byref(p)) == V.VIX_E_INVALID_ARG, args
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        dll.VixDiskLib_Disconnect(conn)


def test_async_reads_pipeline_and_call_back_without_wait(dll, vix, tmp_path):
    pattern = bytes((i * 7) & 0xFF for i in range(4096)) * (16 * MiB // 4096)
    raw = tmp_path / "p.raw"
    raw.write_bytes(pattern)
    with qemu_nbd(raw, "raw", tmp_path / "s.sock") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        _, h = open_disk(dll, conn)
        n, per = 64, 256  # 64 requests of 128 KiB in flight at once
        bufs = [ctypes.create_string_buffer(per * 512) for _ in range(n)]
        done = threading.Event()
        results: list[tuple[int, int]] = []
        lock = threading.Lock()

        def on_done(data, err):
            with lock:
                results.append((data or 0, err))
                if len(results) == n:
                    done.set()
        cb = V.VixDiskLibCompletionCB(on_done)
        for i in range(n):
            assert dll.VixDiskLib_ReadAsync(h, i * per, per, bufs[i], cb, ctypes.c_void_p(i + 1)) == V.VIX_ASYNC
        assert done.wait(20), "callbacks must fire without Wait"
        assert sorted(results) == [(i + 1, V.VIX_OK) for i in range(n)]
        for i in range(n):
            assert bufs[i].raw == pattern[i * per * 512:(i + 1) * per * 512]
        # WriteAsync, then Wait drains them.
        wbufs = [ctypes.create_string_buffer(bytes([i]) * 65536) for i in range(16)]
        wres: list[int] = []
        wcb = V.VixDiskLibCompletionCB(lambda d, e: wres.append(e))
        for i in range(16):
            assert dll.VixDiskLib_WriteAsync(h, i * 128, 128, wbufs[i], wcb, None) == V.VIX_ASYNC
        assert dll.VixDiskLib_Wait(h) == V.VIX_OK
        assert wres == [V.VIX_OK] * 16
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        dll.VixDiskLib_Disconnect(conn)
    got = raw.read_bytes()
    assert got[:16 * 65536] == b"".join(bytes([i]) * 65536 for i in range(16))
    assert got[16 * 65536:] == pattern[16 * 65536:]


def changed_areas(dll, conn, export: bytes, change_id: bytes) -> tuple[int, list[tuple[int, int]]]:
    params = V.VixDiskLibOpenParams(path=export, flags=V.VIXDISKLIB_FLAG_OPEN_READ_ONLY, changeId=change_id)
    h = ctypes.c_void_p()
    err = dll.VixDiskLib_OpenEx(conn, ctypes.byref(params), ctypes.byref(h))
    assert err == V.VIX_OK, err
    try:
        q = V.VixDiskLibQueryChangedAreaParams(startOffset=0)
        info = ctypes.POINTER(V.VixDiskLibDiskChangeInfo)()
        err = dll.VixDiskLib_QueryChangedAreas(h, ctypes.byref(q), ctypes.byref(info))
        if err != V.VIX_OK:
            return err, []
        areas = [(b.offset, b.length) for b in info.contents.areas.contents.block_array()]
        assert info.contents.startOffset == 0 and info.contents.length == capacity(dll, h)
        dll.VixDiskLib_FreeChangedAreas(info)
        return err, areas
    finally:
        dll.VixDiskLib_Close(h)


def test_changed_areas_from_a_qemu_dirty_bitmap(dll, vix, tmp_path):
    img = make_image(tmp_path / "b.qcow2", "qcow2", 64 * MiB, [(0, 4 * MiB, 1)])
    run(["qemu-img", "bitmap", "--add", "--granularity", "65536", str(img), "backup0"])
    # Writes after the bitmap was added mark it dirty (qemu-io opens it with the bitmap live).
    changes = [(8 * MiB, 64 * 1024, 2), (20 * MiB + 512, 1024, 3), (30 * MiB, 192 * 1024, 4)]
    qemu_io("qcow2", img, *[f"write -P {b} {o} {n}" for o, n, b in changes])
    with qemu_nbd(img, "qcow2", tmp_path / "s.sock", read_only=True, bitmap="backup0") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        err, areas = changed_areas(dll, conn, b"", b"backup0")
        assert err == V.VIX_OK
        assert areas == [(8 * 2048, 128), (20 * 2048, 128), (30 * 2048, 384)]
        err, same = changed_areas(dll, conn, b"", b"qemu:dirty-bitmap:backup0")
        assert (err, same) == (V.VIX_OK, areas)
        err, star = changed_areas(dll, conn, b"", b"*")
        assert err == V.VIX_OK
        covered = {s for a, n in star for s in range(a, a + n)}
        for off, n, _ in [(0, 4 * MiB, 1)] + changes:
            assert set(range(off // 512, (off + n + 511) // 512)) <= covered
        err, _ = changed_areas(dll, conn, b"", b"nosuchbitmap")
        assert err == V.VIX_E_OBJECT_NOT_FOUND
        dll.VixDiskLib_Disconnect(conn)


def test_maintenance_and_metadata_calls_refuse_remote_disks(dll, vix, tmp_path, logs):
    with nbdkit(["memory", "8M"], sock=tmp_path / "m.sock") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        _, h = open_disk(dll, conn)
        _, h2 = open_disk(dll, conn)
        ns = V.VIX_E_NOT_SUPPORTED
        cp = V.VixDiskLibCreateParams(diskType=V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                      adapterType=V.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                                      hwVersion=V.VIXDISKLIB_HWVERSION_WORKSTATION_5, capacity=2048)
        child = str(tmp_path / "c.vmdk").encode()
        assert dll.VixDiskLib_CreateChild(h, child, V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, None, None) == ns
        assert dll.VixDiskLib_Attach(h, h2) == ns
        assert dll.VixDiskLib_IsAttachPossible(h, h2) == ns
        assert dll.VixDiskLib_Shrink(h, None, None) == ns
        assert dll.VixDiskLib_Defragment(h, None, None) == ns
        need = ctypes.c_uint64()
        assert dll.VixDiskLib_SpaceNeededForClone(h, V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, ctypes.byref(need)) == ns
        assert dll.VixDiskLib_Create(conn, child, ctypes.byref(cp), None, None) == ns
        assert dll.VixDiskLib_Grow(conn, child, 4096, 0, None, None) == ns
        assert dll.VixDiskLib_Unlink(conn, child) == ns
        assert dll.VixDiskLib_CheckRepair(conn, child, 0) == ns
        required = ctypes.c_size_t()
        assert dll.VixDiskLib_GetMetadataKeys(h, None, 0, ctypes.byref(required)) == ns
        assert dll.VixDiskLib_ReadMetadata(h, b"uuid", None, 0, ctypes.byref(required)) == ns
        assert dll.VixDiskLib_WriteMetadata(h, b"k", b"v") == ns
        assert not (tmp_path / "c.vmdk").exists()
        assert any("CreateChild works on local disks only" in m for m in logs["warn"])
        # Both handles still work after the refusals (Attach consumed nothing).
        assert read(dll, h2, 0, 1)[0] == V.VIX_OK
        for x in (h, h2):
            assert dll.VixDiskLib_Close(x) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK


def test_create_child_refuses_a_remote_disk_before_its_other_arguments(dll, vix, tmp_path, logs):
    """A remote handle is refused with VIX_E_NOT_SUPPORTED whatever CreateChild's other
    arguments are, like every call only a local chain answers (so it was before the C ABI
    moved onto the facade, issue 17)."""
    with nbdkit(["memory", "8M"], sock=tmp_path / "m.sock") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        _, h = open_disk(dll, conn)
        ns = V.VIX_E_NOT_SUPPORTED
        child = str(tmp_path / "c.vmdk").encode()
        assert dll.VixDiskLib_CreateChild(h, None, V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, None, None) == ns
        assert dll.VixDiskLib_CreateChild(h, child, 12345, None, None) == ns
        assert not (tmp_path / "c.vmdk").exists()
        assert any("CreateChild works on local disks only" in m for m in logs["warn"])
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK


def test_nonpersistent_open_of_an_export(dll, vix, tmp_path):
    """VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT on an NBD connection: refused (no private redo log
    over an export), unless READ_ONLY or a read-only connection wins, as for a local disk: then
    the open is plain read-only (docs/decisions.md, issue 17)."""
    nonpersistent = 1 << 24
    ro = V.VIXDISKLIB_FLAG_OPEN_READ_ONLY
    with nbdkit(["memory", "8M"], sock=tmp_path / "m.sock") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        err, h = open_disk(dll, conn, flags=nonpersistent)
        assert err == V.VIX_E_NOT_SUPPORTED and not h.value
        err, h = open_disk(dll, conn, flags=nonpersistent | ro)
        assert err == V.VIX_OK
        assert write(dll, h, 0, bytes(512)) == V.VIX_E_FILE_READ_ONLY
        assert read(dll, h, 0, 1) == (V.VIX_OK, bytes(512))
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK
        _, conn = connect(dll, remote_params(srv.uri), read_only=True)
        err, h = open_disk(dll, conn, flags=nonpersistent)
        assert err == V.VIX_OK
        assert write(dll, h, 0, bytes(512)) == V.VIX_E_FILE_READ_ONLY
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK


def test_tls_with_a_psk(dll, vix, tmp_path):
    if not shutil.which("psktool"):
        pytest.skip("psktool missing: apt-get install gnutls-bin (scripts/setup.sh)")
    keys = tmp_path / "keys.psk"
    run(["psktool", "-u", "alice", "-p", str(keys)])
    port = free_port()
    with nbdkit(["memory", "16M"], port=port, extra=["--tls=require", f"--tls-psk={keys}"]):
        uri = f"nbds://127.0.0.1:{port}/?tls-psk-file={keys}"
        # user=root is not in the PSK file: the file's identity (alice) is presented.
        _, conn = connect(dll, remote_params(uri), modes=b"nbdssl")
        err, h = open_disk(dll, conn)
        assert err == V.VIX_OK, err
        assert dll.VixDiskLib_GetTransportMode(h) == b"nbdssl"
        assert write(dll, h, 8, b"\x99" * 1024) == V.VIX_OK
        assert read(dll, h, 8, 2) == (V.VIX_OK, b"\x99" * 1024)
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        dll.VixDiskLib_Disconnect(conn)
        # Plain NBD to a server that requires TLS: refused with a TLS error, promptly.
        _, conn = connect(dll, remote_params(f"nbd://127.0.0.1:{port}"))
        err, h = open_disk(dll, conn)
        assert err == V.VIX_E_NET_HTTP_SSL_CONNECT_ERROR and not h.value, err
        dll.VixDiskLib_Disconnect(conn)
        # A wrong key is refused too.
        bad = tmp_path / "bad.psk"
        bad.write_text("alice:" + "00" * 32 + "\n")
        _, conn = connect(dll, remote_params(f"nbds://127.0.0.1:{port}/?tls-psk-file={bad}"), modes=None)
        err, h = open_disk(dll, conn)
        assert err == V.VIX_E_NET_HTTP_SSL_CONNECT_ERROR, err
        dll.VixDiskLib_Disconnect(conn)


def test_tls_psk_from_the_initex_config_file_until_exit(lib_path, tmp_path):
    """InitEx's config file (`vixDiskLib.nbd.tlsPskFile`) reaches ConnectEx (TLS is tried, as
    there are credentials) and Open (the key), through the facade's `Settings` since issue 17;
    Exit drops it: after a plain Init the same connect meets the TLS-only server unarmed."""
    if not shutil.which("psktool"):
        pytest.skip("psktool missing: apt-get install gnutls-bin (scripts/setup.sh)")
    keys = tmp_path / "keys.psk"
    run(["psktool", "-u", "alice", "-p", str(keys)])
    cfg = tmp_path / "vddk.conf"
    cfg.write_text(f'vixDiskLib.nbd.tlsPskFile = "{keys}"\n')
    port = free_port()
    with nbdkit(["memory", "16M"], port=port, extra=["--tls=require", f"--tls-psk={keys}"]):
        res = run_child(lib_path, f"""
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from nbd_servers import connect, open_disk, read, remote_params, write

            def session(config):
                lib.init(log=LOGS.append, warn=LOGS.append, panic=LOGS.append, config=config)
                _, conn = connect(dll, remote_params("nbd://127.0.0.1:{port}"), modes=None)
                err, h = open_disk(dll, conn)
                out = [err]
                if err == V.VIX_OK:
                    out.append(dll.VixDiskLib_GetTransportMode(h).decode())
                    out.append(write(dll, h, 8, b"\\x5c" * 512))
                    out.append(read(dll, h, 8, 1) == (V.VIX_OK, b"\\x5c" * 512))
                    out.append(dll.VixDiskLib_Close(h))
                dll.VixDiskLib_Disconnect(conn)
                lib.exit()
                return out

            result["config"] = session({str(cfg)!r})
            result["after_exit"] = session(None)
        """, init=False)
    assert res == {"config": [V.VIX_OK, "nbdssl", V.VIX_OK, True, V.VIX_OK],
                   "after_exit": [V.VIX_E_NET_HTTP_SSL_CONNECT_ERROR]}, res


def test_nbd_transport_needs_an_nbd_mode(dll, vix):
    _, conn = connect(dll, remote_params("nbd://127.0.0.1:1/"), modes=b"file")
    assert not conn.value
    err, conn = connect(dll, remote_params("nbd://127.0.0.1:1/"), modes=b"file")
    assert err == V.VIX_E_NOT_SUPPORTED
    err, conn = connect(dll, remote_params("gopher://x/"), modes=None)
    assert err == V.VIX_E_INVALID_ARG
    err, conn = connect(dll, remote_params("nbds://127.0.0.1/"), modes=b"nbd")
    assert err == V.VIX_E_NOT_SUPPORTED


def test_data_written_remotely_matches_qemu_img_compare(dll, vix, tmp_path):
    """A backup-style copy: read only the allocated blocks of a remote qcow2 and write them into
    a local VMDK through the same library; qemu-img compare proves the copy equal."""
    writes = [(0, 2 * MiB, 0x10), (17 * MiB, 64 * 1024, 0x20), (50 * MiB, 5 * MiB, 0x30)]
    src = make_image(tmp_path / "src.qcow2", "qcow2", 64 * MiB, writes)
    dst = tmp_path / "dst.vmdk"
    local = ctypes.c_void_p()
    assert dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(local)) == V.VIX_OK
    cp = V.VixDiskLibCreateParams(diskType=V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                  adapterType=V.VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                                  hwVersion=V.VIXDISKLIB_HWVERSION_WORKSTATION_5, capacity=64 * 2048)
    assert dll.VixDiskLib_Create(local, str(dst).encode(), ctypes.byref(cp), None, None) == V.VIX_OK
    _, out = open_disk(dll, local, str(dst).encode())
    with qemu_nbd(src, "qcow2", tmp_path / "s.sock", read_only=True) as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        _, h = open_disk(dll, conn)
        p = ctypes.POINTER(V.VixDiskLibBlockList)()
        assert dll.VixDiskLib_QueryAllocatedBlocks(h, 0, 64 * 2048, 2048, ctypes.byref(p)) == V.VIX_OK
        blocks = [(b.offset, b.length) for b in p.contents.block_array()]
        dll.VixDiskLib_FreeBlockList(p)
        assert sum(n for _, n in blocks) <= 9 * 2048
        for off, n in blocks:
            err, data = read(dll, h, off, n)
            assert err == V.VIX_OK
            assert write(dll, out, off, data) == V.VIX_OK
        dll.VixDiskLib_Close(h)
        dll.VixDiskLib_Disconnect(conn)
    assert dll.VixDiskLib_Close(out) == V.VIX_OK
    dll.VixDiskLib_Disconnect(local)
    assert subprocess.run(["qemu-img", "compare", "-q", str(src), str(dst)]).returncode == 0
