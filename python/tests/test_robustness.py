"""Foreign or unusual files (vmdk-format.md section 7 B8-B10) and multi-process
situations: CRLF / variant descriptors, renamed monolithic files, GD entries
of 0, streamOptimized and version-3 files opened read-write, locks held by
another process, a writer that died without Close."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

import vixdisklib as V
from vdl_helpers import (DISK_SECTORS, MiB, PYTHON_DIR, file_state, fill, have_qemu, make_ref_raw,
                         qemu_check, qemu_io, read_all, run, run_child, sparse_header)

RO = V.VIXDISKLIB_FLAG_OPEN_READ_ONLY
REF_PATTERNS = [(0, 1 * MiB, 0xAB), (10 * MiB, 64 * 1024, 0xCD)]  # all in the first 32 MiB


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    if not have_qemu():
        pytest.skip("qemu-img/qemu-io not installed")
    return make_ref_raw(tmp_path_factory.mktemp("rref") / "ref.raw", patterns=REF_PATTERNS)


def _convert(ref, path, *opts):
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", *opts, str(ref), str(path)])
    return path


def test_crlf_descriptor_with_variant_signature(vix, ref, tmp_path):
    path = _convert(ref, tmp_path / "f.vmdk", "-o", "subformat=monolithicFlat")
    text = path.read_bytes().replace(b"\n", b"\r\n").replace(b"# Disk DescriptorFile", b"# Disk Descriptor File")
    path.write_bytes(text)
    with vix.connect() as c, c.open(path, RO) as d:
        assert read_all(d, DISK_SECTORS) == ref.read_bytes()


def test_renamed_monolithic_sparse(vix, ref, tmp_path):
    """The embedded extent line still names the old file: the file itself is the extent."""
    path = _convert(ref, tmp_path / "orig.vmdk")
    new = tmp_path / "renamed.vmdk"
    path.rename(new)
    with vix.connect() as c, c.open(new, RO) as d:
        assert read_all(d, DISK_SECTORS) == ref.read_bytes()


def test_grain_directory_entry_zero(vix, ref, tmp_path):
    """GD[1] = RGD[1] = 0 (no grain table for 32..64 MiB): reads give zeros, a
    write there allocates the table, and qemu and libvmdk agree afterwards."""
    path = _convert(ref, tmp_path / "gd0.vmdk")
    h = sparse_header(path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, h["gd"] * 512 + 4, 0)
    struct.pack_into("<I", raw, h["rgd"] * 512 + 4, 0)
    path.write_bytes(raw)
    with vix.connect() as c:
        with c.open(path) as d:
            assert read_all(d, DISK_SECTORS) == ref.read_bytes()
            d.write(40 * 2048, fill(0x5A, 4096))
        with c.open(path, RO) as d:
            assert d.read(40 * 2048, 8) == fill(0x5A, 4096)
            assert d.read(0, 8) == fill(0xAB, 4096)
    qemu_check(path)
    qemu_io("vmdk", path, "read -P 0x5a 40M 4k", "read -P 0 44M 1M", "read -P 0xab 0 1M", read_only=True)
    hh = sparse_header(path)
    gd1 = struct.unpack_from("<I", path.read_bytes(), hh["gd"] * 512 + 4)[0]
    rgd1 = struct.unpack_from("<I", path.read_bytes(), hh["rgd"] * 512 + 4)[0]
    assert gd1 and rgd1 and gd1 != rgd1, "both grain tables must be allocated"
    try:
        import pyvmdk
    except ImportError:
        return
    lh = pyvmdk.handle()
    lh.open(str(path))
    lh.open_extent_data_files()
    assert lh.read_buffer_at_offset(4096, 40 * MiB) == fill(0x5A, 4096), "libvmdk reads the RGD tree"
    lh.close()


def test_stream_optimized_write_refused_or_correct(vix, ref, tmp_path):
    """A qemu streamOptimized disk opened read-write: a write either works
    (qemu then reads it back) or fails -- and a failed write leaves the file
    byte-identical."""
    path = _convert(ref, tmp_path / "so.vmdk", "-o", "subformat=streamOptimized")
    before = file_state(path)
    with vix.connect() as c, c.open(path) as d:
        try:
            d.write(20 * 2048, fill(0x66, 4096))
            wrote = True
        except V.VixErrorException as e:
            wrote = False
            err = e
    if wrote:
        qemu_check(path)
        qemu_io("vmdk", path, "read -P 0x66 20M 4k", "read -P 0xab 0 1M", read_only=True)
    else:
        assert file_state(path) == before, f"the write failed ({err.name}) but the file changed (CID rewritten?)"


def test_version3_sparse_is_not_written(vix, ref, tmp_path, record_property):
    """A version-3 (CBT) non-compressed sparse extent: qemu opens it read-only
    only; the design (vmdk-format.md 1.6, 6) says never write it unless CBT is
    dropped explicitly.  Reads must work; a write must fail and leave the file
    unchanged."""
    path = _convert(ref, tmp_path / "v3.vmdk")
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 4, 3)
    path.write_bytes(raw)
    before = file_state(path)
    with vix.connect() as c:
        with c.open(path, RO) as d:
            assert read_all(d, DISK_SECTORS) == ref.read_bytes()
        try:
            with c.open(path) as d:
                d.write(0, fill(0x01, 512))
            outcome = "written"
        except V.VixErrorException as e:
            outcome = e.name
    record_property("v3_write", outcome)
    assert outcome != "written", "a write to a version-3 (CBT) extent succeeded"
    assert file_state(path) == before


_HOLDER = """
import sys, time
sys.path.insert(0, {pydir!r})
import vixdisklib as V
lib = V.Library(V.find_library()).init(log=lambda m: None, warn=lambda m: None)
c = lib.connect()
d = c.open({path!r})
d.write(0, bytes([0x11]) * 65536)
d.write(40 * 2048, bytes([0x13]) * 512)
if {crash!r}:
    d.flush()  # acknowledged + flushed data must survive the process
print("ready", flush=True)
if {crash!r}:
    import os
    os._exit(0)
sys.stdin.readline()
d.close()
c.close()
lib.exit()
"""


def _holder(path, crash=False):
    return subprocess.Popen([sys.executable, "-c", _HOLDER.format(pydir=str(PYTHON_DIR), path=str(path),
                                                                 crash=crash)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_lock_held_by_another_process(conn, tmp_path):
    path = tmp_path / "lk.vmdk"
    conn.create(path, DISK_SECTORS)
    p = _holder(path)
    try:
        assert p.stdout.readline().strip() == "ready"
        with pytest.raises(V.VixErrorException) as ei:
            conn.open(path)
        assert ei.value.code == V.VIX_E_FILE_ALREADY_LOCKED
    finally:
        p.communicate("\n", timeout=30)
    assert p.returncode == 0
    with conn.open(path) as d:  # released when the other process closed it
        assert d.read(0, 1) == fill(0x11, 512)


def test_writer_died_without_close(conn, tmp_path):
    """A process that wrote, flushed and died without Close: the lock is gone,
    the flushed data is readable, the disk is consistent and reusable.
    (Without the Flush the library's grain-table write-back cache loses the
    writes -- by design, like a write-back disk cache.)"""
    path = tmp_path / "crash.vmdk"
    conn.create(path, DISK_SECTORS)
    p = _holder(path, crash=True)
    out, _ = p.communicate(timeout=30)
    assert "ready" in out
    with conn.open(path) as d:
        assert d.read(0, 128) == fill(0x11, 65536)
        assert d.read(40 * 2048, 1) == fill(0x13, 512)
        d.write(256, fill(0x12, 512))
    h = sparse_header(path)
    assert h["unclean"] == 0, "a clean Close must clear uncleanShutdown"
    if have_qemu():
        qemu_check(path)


_DESC_HEAD = ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n'
              '# Extent description\n')
_DESC_DDB = '\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "ide"\n'


@pytest.mark.parametrize("extents", [
    'RW 18446744073709551615 FLAT "raw.bin" 0\n',  # capacity * 512 does not fit 64 bits
    'RW 18446744073709551000 ZERO\nRW 2048 FLAT "raw.bin" 0\n',  # extent sizes wrap around 2**64
    'RW 2048 FLAT "raw.bin" 18446744073709551615\n',  # offset * 512 does not fit 64 bits
], ids=["huge-extent", "sum-wraps", "huge-offset"])
def test_descriptor_arithmetic_overflow_rejected(lib_path, tmp_path, extents):
    """Descriptors whose sizes/offsets overflow 64-bit byte arithmetic are
    invalid: Open must refuse them (not wrap around, not panic)."""
    (tmp_path / "raw.bin").write_bytes(fill(0x11, 1 * MiB))
    path = tmp_path / "d.vmdk"
    path.write_text(_DESC_HEAD + extents + _DESC_DDB)
    before = file_state(path), (tmp_path / "raw.bin").read_bytes()
    res = run_child(lib_path, f"""
        conn = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn))
        h = ctypes.c_void_p()
        result["open"] = dll.VixDiskLib_Open(conn, {str(path)!r}.encode(), 4, ctypes.byref(h))
        if result["open"] == 0:
            info = ctypes.POINTER(V.VixDiskLibInfo)()
            dll.VixDiskLib_GetInfo(h, ctypes.byref(info))
            result["capacity"] = info.contents.capacity
            dll.VixDiskLib_FreeInfo(info)
            dll.VixDiskLib_Close(h)
        dll.VixDiskLib_Disconnect(conn)
        result["logs"] = LOGS[-3:]
        """)
    assert res["open"] != V.VIX_OK, f"an overflowing descriptor was opened: {res}"
    assert res["open"] != V.VIX_E_FAIL, f"VIX_E_FAIL suggests an internal error (panic): {res}"
    assert (file_state(path), (tmp_path / "raw.bin").read_bytes()) == before
