"""libvmdk (pyvmdk) reads chains and stream clones we make: parent handles set with set_parent,
CIDs checked by libvmdk itself."""

from __future__ import annotations

import pytest

import vixdisklib as V

MiB = 1 << 20
SECTORS = 16 * MiB // 512


def _fill(byte: int, n: int) -> bytes:
    return bytes([byte]) * n


def _pyvmdk_open(pyvmdk, path):
    h = pyvmdk.handle()
    h.open(str(path))
    h.open_extent_data_files()
    return h


def test_libvmdk_reads_a_three_link_chain_with_set_parent(conn, tmp_path):
    pyvmdk = pytest.importorskip("pyvmdk")
    base, c1, c2 = (tmp_path / n for n in ("base.vmdk", "c1.vmdk", "c2.vmdk"))
    want = bytearray(16 * MiB)
    conn.create(base, SECTORS)
    with conn.open(base) as d:
        d.write(0, _fill(0x11, 2 * MiB))
        want[0 : 2 * MiB] = _fill(0x11, 2 * MiB)
        d.create_child(c1)
    with conn.open(c1) as d:
        d.write(1024, _fill(0x22, 64 * 1024))
        want[1024 * 512 : 1024 * 512 + 64 * 1024] = _fill(0x22, 64 * 1024)
        d.write(3, _fill(0x23, 512))  # sub-grain write over parent data
        want[3 * 512 : 4 * 512] = _fill(0x23, 512)
        d.create_child(c2)
    with conn.open(c2) as d:
        d.write(SECTORS - 8, _fill(0x33, 4096))
        want[-4096:] = _fill(0x33, 4096)
    hb, h1, h2 = (_pyvmdk_open(pyvmdk, p) for p in (base, c1, c2))
    try:
        h1.set_parent(hb)
        h2.set_parent(h1)
        assert h2.get_parent_content_identifier() == h1.get_content_identifier()
        got = h2.read_buffer_at_offset(16 * MiB, 0)
    finally:
        for h in (h2, h1, hb):
            h.close()
    assert got == bytes(want)


def test_libvmdk_reads_our_stream_optimized_clone(conn, tmp_path):
    pyvmdk = pytest.importorskip("pyvmdk")
    src, dst = tmp_path / "src.vmdk", tmp_path / "so.vmdk"
    conn.create(src, SECTORS)
    with conn.open(src) as d:
        d.write(2048, bytes(range(256)) * 4096)
    conn.clone(dst, conn, src, disk_type=V.VIXDISKLIB_DISK_STREAM_OPTIMIZED)
    with conn.open(src, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        want = d.read(0, SECTORS)
    h = _pyvmdk_open(pyvmdk, dst)
    try:
        assert h.get_media_size() == 16 * MiB
        got = h.read_buffer_at_offset(16 * MiB, 0)
    finally:
        h.close()
    assert got == want
