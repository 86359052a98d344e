"""The rest of the API through the binding: chains (CreateChild, Attach,
SINGLE_LINK, CID checks), maintenance (Clone, Grow, Rename, Unlink, Shrink,
Defragment, CheckRepair, SpaceNeededForClone), QueryAllocatedBlocks rules,
threads, connection odds and ends, the undocumented stubs.

A function that answers VIX_E_NOT_SUPPORTED is reported as a skip (not
implemented yet); anything else it does is checked."""

from __future__ import annotations

import ctypes
import threading

import pytest

import vixdisklib as V
from vdl_helpers import (DISK_SECTORS, DISK_SIZE, GRAIN, MiB, PATTERNS, SECTOR, descriptor_dict, descriptor_text,
                         disk_files, expected_image, file_state, fill, first_diff, grain_ranges, have_qemu,
                         needs_qemu, qemu_check, qemu_info, qemu_io, read_all, run, run_child, write_patterns)

RO = V.VIXDISKLIB_FLAG_OPEN_READ_ONLY
SINGLE = V.VIXDISKLIB_FLAG_OPEN_SINGLE_LINK
G = GRAIN // SECTOR  # sectors per grain


def supported(fn, *a, **kw):
    """Call; turn VIX_E_NOT_SUPPORTED into a skip."""
    try:
        return fn(*a, **kw)
    except V.VixErrorException as e:
        if e.code == V.VIX_E_NOT_SUPPORTED:
            pytest.skip(f"{e.function}: not implemented (VIX_E_NOT_SUPPORTED): {e.text}")
        raise


@pytest.fixture
def base(conn, tmp_path):
    """64 MiB sparse base disk holding PATTERNS."""
    path = tmp_path / "base.vmdk"
    conn.create(path, DISK_SECTORS)
    with conn.open(path) as d:
        write_patterns(d)
    return path


CHILD_DATA = [(20 * MiB, 64 * 1024, 0x22), (5 * MiB, 512, 0x23), (32 * MiB - 512, 1024, 0x24)]


def _make_child(conn, base, child):
    with conn.open(base, RO) as p:
        p.create_child(child)
    with conn.open(child) as c:
        write_patterns(c, CHILD_DATA)


# ---------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------

def test_create_child_reads_through_and_base_unchanged(conn, base, tmp_path):
    before = file_state(base)
    child = tmp_path / "child.vmdk"
    progress = []
    with conn.open(base, RO) as p:
        p.create_child(child, progress=progress.append)
    assert progress and all(0 <= x <= 100 for x in progress), progress
    d = descriptor_dict(child)
    assert d["parentFileNameHint"] == "base.vmdk", d
    assert d["parentCID"] == descriptor_dict(base)["CID"]
    with conn.open(child) as c:
        info = c.info()
        assert info.num_links == 2
        assert info.parent_file_name_hint and info.parent_file_name_hint.endswith("base.vmdk")
        assert info.capacity == DISK_SECTORS
        assert read_all(c, DISK_SECTORS) == bytes(expected_image()), "child must show the parent's data"
        write_patterns(c, CHILD_DATA)
        want = bytes(expected_image(patterns=PATTERNS + CHILD_DATA))
        got = read_all(c, DISK_SECTORS)
        assert first_diff(got, want) is None, first_diff(got, want)
        # allocated blocks: union over the chain
        blocks = c.query_allocated_blocks(0, DISK_SECTORS, G)
        assert [(o * SECTOR, n * SECTOR) for o, n in blocks] == grain_ranges(PATTERNS + CHILD_DATA)
    assert file_state(base) == before, "writing the child changed the parent"
    with conn.open(child, SINGLE | RO) as c:
        assert c.info().num_links == 1
        blocks = c.query_allocated_blocks(0, DISK_SECTORS, G)
        assert [(o * SECTOR, n * SECTOR) for o, n in blocks] == grain_ranges(CHILD_DATA)
        assert c.read(0, 1) == bytes(512), "SINGLE_LINK must not read the parent"
        assert c.read(20 * 2048, 1) == fill(0x22, 512)
    if have_qemu():
        qemu_check(child)
        qemu_check(base)


def test_child_after_parent_modified_is_cid_mismatch(conn, base, tmp_path):
    child = tmp_path / "child.vmdk"
    _make_child(conn, base, child)
    with conn.open(base) as p:
        p.write(3000, fill(0x77, 512))
    try:
        with conn.open(child) as c:
            c.read(0, 8)  # falls through to the parent
    except V.VixErrorException as e:
        assert e.code == V.VIX_E_DISK_CID_MISMATCH, e
    else:
        pytest.fail("a child whose parent changed was opened and read without VIX_E_DISK_CID_MISMATCH")
    with conn.open(child, SINGLE | RO) as c:  # the child alone is still fine
        assert c.read(20 * 2048, 1) == fill(0x22, 512)


def test_parent_handle_read_only_after_create_child(conn, tmp_path):
    """After CreateChild the parent handle must not write (it would break the
    child's parentCID); the child reads the parent's data."""
    parent = tmp_path / "p.vmdk"
    conn.create(parent, 2048)
    with conn.open(parent) as p:
        p.write(0, fill(0x01, 512))
        p.create_child(tmp_path / "c.vmdk")
        with pytest.raises(V.VixErrorException) as ei:
            p.write(8, fill(0x02, 512))
        assert ei.value.code == V.VIX_E_FILE_READ_ONLY
        assert p.read(0, 1) == fill(0x01, 512)
    with conn.open(tmp_path / "c.vmdk") as c:
        assert c.read(0, 1) == fill(0x01, 512) and c.read(8, 1) == bytes(512)


def test_missing_parent(conn, base, tmp_path):
    child = tmp_path / "child.vmdk"
    _make_child(conn, base, child)
    base.rename(tmp_path / "moved.vmdk")
    with pytest.raises(V.VixErrorException) as ei:
        conn.open(child)
    assert ei.value.code in (V.VIX_E_DISK_OPENPARENT, V.VIX_E_FILE_NOT_FOUND), ei.value


@needs_qemu
def test_qemu_reads_our_child(conn, base, tmp_path):
    child = tmp_path / "child.vmdk"
    _make_child(conn, base, child)
    p = run(["qemu-img", "info", "--backing-chain", "--output=json", str(child)])
    assert '"backing-filename": "base.vmdk"' in p.stdout, p.stdout
    ref = tmp_path / "want.raw"
    ref.write_bytes(bytes(expected_image(patterns=PATTERNS + CHILD_DATA)))
    p = run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(ref), str(child)], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    import json
    entries = json.loads(run(["qemu-img", "map", "--output=json", str(child)]).stdout)
    depth0 = [(e["start"], e["length"]) for e in entries if e["depth"] == 0 and e.get("data")]
    from vdl_helpers import merge_ranges
    assert merge_ranges(depth0) == grain_ranges(CHILD_DATA), entries


@needs_qemu
def test_we_read_qemu_chain(vix, base, tmp_path):
    snap1 = tmp_path / "snap1.vmdk"
    snap2 = tmp_path / "snap2.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", str(snap1)])
    qemu_io("vmdk", snap1, "write -P 0xcd 512k 64k", "write -P 0x5e 33M 4k")
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-b", "snap1.vmdk", "-F", "vmdk", str(snap2)])
    qemu_io("vmdk", snap2, "write -P 0x6f 33M 512")
    out = tmp_path / "snap2.raw"
    run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(snap2), str(out)])
    with vix.connect() as c:
        with c.open(snap2, RO) as d:
            assert d.info().num_links == 3
            got = read_all(d, DISK_SECTORS)
    assert first_diff(got, out.read_bytes()) is None, first_diff(got, out.read_bytes())


@needs_qemu
@pytest.mark.parametrize("hint", ["relative", "absolute"])
def test_parent_hint_relative_and_absolute(vix, conn, tmp_path, hint):
    """qemu children whose parentFileNameHint is ../base/base.vmdk or an
    absolute path: resolved against the child's directory."""
    (tmp_path / "base").mkdir()
    (tmp_path / "snaps").mkdir()
    b = tmp_path / "base" / "base.vmdk"
    conn.create(b, 2048)
    with conn.open(b) as d:
        d.write(0, fill(0xAB, 4096))
    backing = "../base/base.vmdk" if hint == "relative" else str(b)
    child = tmp_path / "snaps" / "child.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-b", backing, "-F", "vmdk", "child.vmdk"], cwd=child.parent)
    with conn.open(child, RO) as d:
        info = d.info()
        assert info.num_links == 2 and info.parent_file_name_hint == backing
        assert d.read(0, 8) == fill(0xAB, 4096)


def test_attach(lib_path, base, tmp_path):
    """VMware's documented redo-log sequence: Open(parent), CreateChild,
    Open(child, SINGLE_LINK), IsAttachPossible, Attach; the child then shows
    the combined chain; Close(child), then Close(parent) must not crash."""
    redo = tmp_path / "redo.vmdk"
    before = file_state(base)
    res = run_child(lib_path, f"""
        conn = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn))
        parent, child = ctypes.c_void_p(), ctypes.c_void_p()
        assert dll.VixDiskLib_Open(conn, {str(base)!r}.encode(), 4, ctypes.byref(parent)) == 0
        result["create_child"] = dll.VixDiskLib_CreateChild(parent, {str(redo)!r}.encode(), 1, None, None)
        result["open_child"] = dll.VixDiskLib_Open(conn, {str(redo)!r}.encode(), 2, ctypes.byref(child))
        result["possible"] = dll.VixDiskLib_IsAttachPossible(parent, child)
        result["attach"] = dll.VixDiskLib_Attach(parent, child)
        buf = ctypes.create_string_buffer(512)
        result["read"] = dll.VixDiskLib_Read(child, 0, 1, buf)
        result["parent_data"] = buf.raw == b"\\xab" * 512
        wbuf = ctypes.create_string_buffer(b"\\x42" * 512, 512)
        result["write"] = dll.VixDiskLib_Write(child, 0, 1, wbuf)
        result["read2"] = dll.VixDiskLib_Read(child, 0, 1, buf)
        result["child_data"] = buf.raw == b"\\x42" * 512
        result["close_child"] = dll.VixDiskLib_Close(child)
        result["close_parent"] = dll.VixDiskLib_Close(parent)
        result["disconnect"] = dll.VixDiskLib_Disconnect(conn)
        """)
    for k in ("create_child", "open_child", "possible", "attach", "read", "write", "read2", "close_child",
              "disconnect"):
        assert res[k] == V.VIX_OK, (k, res)
    assert res["parent_data"] and res["child_data"], res
    assert res["close_parent"] in (V.VIX_OK, V.VIX_E_INVALID_ARG), res
    assert file_state(base) == before, "the parent changed"


# ---------------------------------------------------------------------------
# Maintenance
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dst_type", [V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, V.VIXDISKLIB_DISK_MONOLITHIC_FLAT,
                                      V.VIXDISKLIB_DISK_STREAM_OPTIMIZED, V.VIXDISKLIB_DISK_SPLIT_SPARSE],
                         ids=["sparse", "flat", "stream", "split-sparse"])
def test_clone(conn, base, tmp_path, dst_type):
    dst = tmp_path / "clone.vmdk"
    progress = []
    supported(conn.clone, dst, conn, base, disk_type=dst_type, progress=progress.append)
    assert progress and max(progress) <= 100, progress
    with conn.open(dst, RO) as d:
        assert d.info().capacity == DISK_SECTORS
        assert read_all(d, DISK_SECTORS) == bytes(expected_image())
    with pytest.raises(V.VixErrorException) as ei:
        conn.clone(dst, conn, base, disk_type=dst_type)
    assert ei.value.code == V.VIX_E_FILE_ALREADY_EXISTS
    conn.clone(dst, conn, base, disk_type=dst_type, overwrite=True)
    if have_qemu():
        qemu_check(dst)
        ref = tmp_path / "ref.raw"
        ref.write_bytes(bytes(expected_image()))
        p = run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(ref), str(dst)], check=False)
        assert p.returncode == 0, p.stdout + p.stderr


def test_clone_of_child_flattens_chain(conn, base, tmp_path):
    child = tmp_path / "child.vmdk"
    _make_child(conn, base, child)
    dst = tmp_path / "flat-clone.vmdk"
    supported(conn.clone, dst, conn, child)
    assert descriptor_dict(dst)["parentCID"] == "ffffffff"
    assert "parentFileNameHint" not in descriptor_dict(dst)
    with conn.open(dst, RO) as d:
        assert d.info().num_links == 1
        assert read_all(d, DISK_SECTORS) == bytes(expected_image(patterns=PATTERNS + CHILD_DATA))


def test_space_needed_for_clone(conn, base):
    with conn.open(base, RO) as d:
        flat = supported(d.space_needed_for_clone, V.VIXDISKLIB_DISK_MONOLITHIC_FLAT)
        assert flat >= DISK_SIZE
        sparse = d.space_needed_for_clone(V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE)
        assert sparse >= sum(n for _, n in grain_ranges())
        assert d.space_needed_for_clone(V.VIXDISKLIB_DISK_UNKNOWN) > 0


@pytest.mark.parametrize("dtype", [V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, V.VIXDISKLIB_DISK_MONOLITHIC_FLAT],
                         ids=["sparse", "flat"])
def test_grow(conn, tmp_path, dtype):
    path = tmp_path / "g.vmdk"
    conn.create(path, 2048, disk_type=dtype)
    with conn.open(path) as d:
        d.write(2047, fill(0x31, 512))
    supported(conn.grow, path, 8192, True)
    with conn.open(path) as d:
        assert d.info().capacity == 8192
        assert d.read(2047, 1) == fill(0x31, 512)
        assert d.read(2048, 6144) == bytes(6144 * SECTOR)
        d.write(8191, fill(0x32, 512))
    if have_qemu():
        qemu_check(path)
        assert qemu_info(path)["virtual-size"] == 8192 * SECTOR


def test_shrink_and_defragment_keep_data(conn, base):
    """Shrink reclaims grains that hold only zeros (capacity unchanged);
    Defragment keeps the data; both leave a consistent disk."""
    zeroed = (48 * MiB + 64 * 1024, 128 * 1024)  # the two whole 0x88 grains of PATTERNS
    with conn.open(base) as d:
        d.write(zeroed[0] // SECTOR, bytes(zeroed[1]))
    size_before = base.stat().st_size
    want = expected_image()
    want[zeroed[0]:zeroed[0] + zeroed[1]] = bytes(zeroed[1])
    with conn.open(base) as d:
        progress = []
        supported(d.shrink, progress=progress.append)
        assert progress and max(progress) <= 100, progress
        blocks = [(o * SECTOR, n * SECTOR) for o, n in d.query_allocated_blocks(0, DISK_SECTORS, G)]
        remaining = [(o, n) for o, n in grain_ranges() if not (o == zeroed[0] and n == zeroed[1])]
        assert blocks == remaining, f"after Shrink: {blocks}"
        assert d.info().capacity == DISK_SECTORS
        supported(d.defragment)
        assert read_all(d, DISK_SECTORS) == bytes(want)
    assert base.stat().st_size <= size_before - zeroed[1], "Shrink did not give the space back"
    if have_qemu():
        qemu_check(base)


def test_check_repair_on_good_disk(conn, base):
    before = file_state(base)
    supported(conn.check_repair, base, False)
    conn.check_repair(base, True)
    assert file_state(base) == before, "CheckRepair changed a healthy disk"


@pytest.mark.parametrize("dtype", [V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, V.VIXDISKLIB_DISK_MONOLITHIC_FLAT],
                         ids=["sparse", "flat"])
def test_rename(vix, conn, tmp_path, dtype):
    src = tmp_path / "src.vmdk"
    dst = tmp_path / "dst.vmdk"
    conn.create(src, DISK_SECTORS, disk_type=dtype)
    with conn.open(src) as d:
        write_patterns(d)
    vix.rename(src, dst)
    assert disk_files(src) == [], f"left behind: {disk_files(src)}"
    names = [p.name for p in disk_files(dst)]
    assert "dst.vmdk" in names
    text = descriptor_text(dst)
    assert "src" not in text, f"descriptor still names the old files:\n{text}"
    if dtype == V.VIXDISKLIB_DISK_MONOLITHIC_FLAT:
        assert "dst-flat.vmdk" in names and '"dst-flat.vmdk"' in text
    else:
        assert '"dst.vmdk"' in text, "the embedded extent line should name the new file"
    with conn.open(dst, RO) as d:
        assert read_all(d, DISK_SECTORS) == bytes(expected_image())
    if have_qemu():
        qemu_check(dst)


@pytest.mark.parametrize("dtype", [V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE, V.VIXDISKLIB_DISK_MONOLITHIC_FLAT],
                         ids=["sparse", "flat"])
def test_unlink(conn, tmp_path, dtype):
    path = tmp_path / "u.vmdk"
    keep = tmp_path / "u-keep.txt"
    keep.write_text("not part of the disk")
    conn.create(path, 2048, disk_type=dtype)
    conn.unlink(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u-keep.txt"]
    with pytest.raises(V.VixErrorException) as ei:
        conn.unlink(path)
    assert ei.value.code == V.VIX_E_FILE_NOT_FOUND


@pytest.mark.parametrize("dtype,create_type", [(V.VIXDISKLIB_DISK_SPLIT_SPARSE, "twoGbMaxExtentSparse"),
                                               (V.VIXDISKLIB_DISK_SPLIT_FLAT, "twoGbMaxExtentFlat")],
                         ids=["split-sparse", "split-flat"])
def test_create_split(conn, tmp_path, dtype, create_type):
    path = tmp_path / "split.vmdk"
    cap = 5 * 1024 * 2048  # 5 GiB -> 3 extents
    supported(conn.create, path, cap, disk_type=dtype)
    assert descriptor_dict(path)["createType"] == create_type
    assert len(disk_files(path)) == 4, [p.name for p in disk_files(path)]
    edge = 2047 * 2048  # VMware's 2047 MiB split; also crosses qemu's 2048 MiB one below
    writes = [(edge - 4, fill(0x41, 8 * SECTOR)), (2048 * 2048 - 4, fill(0x42, 8 * SECTOR)), (cap - 1, fill(0x43, 512))]
    with conn.open(path) as d:
        for s, b in writes:
            d.write(s, b)
        for s, b in writes:
            assert d.read(s, len(b) // SECTOR) == b
    if have_qemu():
        qemu_check(path)
        assert qemu_info(path)["virtual-size"] == cap * SECTOR
        qemu_io("vmdk", path, *[f"read -P {b[0]:#x} {s * SECTOR} {len(b)}" for s, b in writes], read_only=True)


@needs_qemu
def test_create_stream_optimized_sequential(conn, tmp_path):
    path = tmp_path / "so.vmdk"
    supported(conn.create, path, DISK_SECTORS, disk_type=V.VIXDISKLIB_DISK_STREAM_OPTIMIZED)
    seq = sorted((o, n, b) for o, n, b in PATTERNS if (o, n, b) != (10 * MiB + 32 * 1024, 4096, 0xCE))
    merged = []  # drop overlaps: the stream is write-once, in order
    for o, n, b in seq:
        if merged and o < merged[-1][0] + merged[-1][1]:
            continue
        merged.append((o, n, b))
    with conn.open(path) as d:
        write_patterns(d, merged)
    info = qemu_info(path)
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    ref = tmp_path / "ref.raw"
    ref.write_bytes(bytes(expected_image(patterns=merged)))
    p = run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(ref), str(path)], check=False)
    assert p.returncode == 0, p.stdout + p.stderr


# ---------------------------------------------------------------------------
# QueryAllocatedBlocks rules (nbdkit / VMware sample behaviour)
# ---------------------------------------------------------------------------

def test_query_allocated_blocks_argument_rules(conn, base, dll):
    with conn.open(base, RO) as d:
        def qab(start, n, chunk):
            p = ctypes.POINTER(V.VixDiskLibBlockList)()
            r = dll.VixDiskLib_QueryAllocatedBlocks(d.handle, start, n, chunk, ctypes.byref(p))
            if r == V.VIX_OK:
                dll.VixDiskLib_FreeBlockList(p)
            return r
        assert qab(0, 128, 128) == V.VIX_OK
        assert qab(0, DISK_SECTORS, V.VIXDISKLIB_MAX_CHUNK_SIZE // 2) == V.VIX_OK
        assert qab(0, 128, 64) == V.VIX_E_INVALID_ARG  # chunk < MIN_CHUNK_SIZE
        assert qab(64, 128, 128) == V.VIX_E_INVALID_ARG  # unaligned start
        assert qab(0, 200, 128) == V.VIX_E_INVALID_ARG  # count not a multiple of the chunk
        assert qab(0, DISK_SECTORS + 128, 128) == V.VIX_E_INVALID_ARG  # past the end
        assert qab(0, 128, 0) == V.VIX_E_INVALID_ARG
        p = ctypes.POINTER(V.VixDiskLibBlockList)()
        assert dll.VixDiskLib_QueryAllocatedBlocks(d.handle, 0, 128, 128, None) == V.VIX_E_INVALID_ARG
        assert dll.VixDiskLib_FreeBlockList(p) in (V.VIX_OK, V.VIX_E_INVALID_ARG)  # NULL: harmless


@needs_qemu
def test_query_allocated_blocks_unaligned_tail(vix, tmp_path):
    """nbdkit's test-vddk-real-unaligned-chunk: 3 data chunks, a hole chunk,
    then 3 sectors; the query up to the last whole chunk gives one block."""
    raw = tmp_path / "r.raw"
    raw.write_bytes(bytes(range(256)) * (3 * 128 * 2) + bytes(128 * 512 + 3 * 512))
    vm = tmp_path / "r.vmdk"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", str(raw), str(vm)])
    with vix.connect() as c, c.open(vm, RO) as d:
        cap = d.info().capacity
        assert cap == 4 * 128 + 3
        assert d.query_allocated_blocks(0, 512, 128) == [(0, 384)]
        assert d.read(384, 131) == raw.read_bytes()[384 * 512:]


# ---------------------------------------------------------------------------
# Threads, connections, lifecycle odds and ends
# ---------------------------------------------------------------------------

def test_concurrent_sync_io_on_one_handle(conn, tmp_path):
    path = tmp_path / "mt.vmdk"
    conn.create(path, DISK_SECTORS)
    errors = []
    with conn.open(path) as d:
        def worker(t):
            try:
                for i in range(40):
                    s = (t * 40 + i) * 96 + 17  # distinct, unaligned, crossing grains
                    data = bytes([t + 1, i + 1]) * (48 * SECTOR)
                    d.write(s, data)
                    got = d.read(s, 96)
                    if got != data:
                        errors.append((t, i, s))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert errors == []
    with conn.open(path, RO) as d:
        for t in range(8):
            for i in range(40):
                s = (t * 40 + i) * 96 + 17
                assert d.read(s, 96) == bytes([t + 1, i + 1]) * (48 * SECTOR)
    if have_qemu():
        qemu_check(path)


def test_disconnect_and_exit_with_open_handles(lib_path, tmp_path):
    """Disconnect invalidates handles (later calls fail, no crash); Exit with
    open handles does not crash."""
    path = tmp_path / "x.vmdk"
    res = run_child(lib_path, f"""
        conn = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn))
        cp = V.VixDiskLibCreateParams(diskType=1, adapterType=3, hwVersion=4, capacity=2048)
        assert dll.VixDiskLib_Create(conn, {str(path)!r}.encode(), ctypes.byref(cp), None, None) == 0
        h = ctypes.c_void_p()
        assert dll.VixDiskLib_Open(conn, {str(path)!r}.encode(), 0, ctypes.byref(h)) == 0
        result["disconnect"] = dll.VixDiskLib_Disconnect(conn)
        buf = ctypes.create_string_buffer(512)
        result["read_after"] = dll.VixDiskLib_Read(h, 0, 1, buf)
        result["close_after"] = dll.VixDiskLib_Close(h)
        conn2 = ctypes.c_void_p(); dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn2))
        h2 = ctypes.c_void_p()
        result["reopen"] = dll.VixDiskLib_Open(conn2, {str(path)!r}.encode(), 0, ctypes.byref(h2))
        dll.VixDiskLib_Exit()   # with h2 and conn2 still open
        lib.initialized = False
        """)
    assert res["disconnect"] == V.VIX_OK
    assert res["read_after"] != V.VIX_OK, "a handle must not work after its connection was disconnected"
    assert res["close_after"] in (V.VIX_OK, V.VIX_E_INVALID_ARG)
    assert res["reopen"] == V.VIX_OK, "Disconnect must release the disk lock"
    if have_qemu():
        qemu_check(path)


def test_init_deprecated_with_null_loggers(lib_path, tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    res = run_child(lib_path, f"""
        import os
        os.environ["TMPDIR"] = {str(logdir)!r}
        result["init"] = dll.VixDiskLib_Init(6, 8, None, None, None, None)
        conn = ctypes.c_void_p()
        result["connect"] = dll.VixDiskLib_Connect(None, ctypes.byref(conn))
        h = ctypes.c_void_p()
        result["open_missing"] = dll.VixDiskLib_Open(conn, b"/nonexistent/x.vmdk", 0, ctypes.byref(h))
        result["disconnect"] = dll.VixDiskLib_Disconnect(conn)
        dll.VixDiskLib_Exit()
        dll.VixDiskLib_Exit()  # Exit twice: idempotent
        """, init=False)
    assert res["init"] == V.VIX_OK and res["connect"] == V.VIX_OK and res["disconnect"] == V.VIX_OK
    assert res["open_missing"] == V.VIX_E_FILE_NOT_FOUND


def test_remote_connection_only_offers_nbd(dll, vix):
    """A remote serverName is an NBD server (issue 11): transports other than nbd/nbdssl are
    refused, and PrepareForAccess/EndAccess have nothing to notify."""
    p = dll.VixDiskLib_AllocateConnectParams()
    try:
        p.contents.serverName = b"esx.example.invalid"
        p.contents.credType = V.VIXDISKLIB_CRED_UID
        conn = ctypes.c_void_p()
        err = dll.VixDiskLib_ConnectEx(p, 1, None, b"hotadd:san", ctypes.byref(conn))
        assert err == V.VIX_E_NOT_SUPPORTED and not conn.value, err
        assert dll.VixDiskLib_PrepareForAccess(p, b"test") == V.VIX_OK
        assert dll.VixDiskLib_EndAccess(p, b"test") == V.VIX_OK
    finally:
        p.contents.serverName = None
        dll.VixDiskLib_FreeConnectParams(p)


def test_local_connection_helpers(dll, vix, conn):
    pp = ctypes.POINTER(V.VixDiskLibConnectParams)()
    assert dll.VixDiskLib_GetConnectParams(conn.handle, ctypes.byref(pp)) == V.VIX_OK
    assert pp and pp.contents.serverName is None
    dll.VixDiskLib_FreeConnectParams(pp)
    assert dll.VixDiskLib_PrepareForAccess(conn.params, b"pytest") == V.VIX_OK
    assert dll.VixDiskLib_EndAccess(conn.params, b"pytest") == V.VIX_OK
    assert dll.VixDiskLib_Cleanup(conn.params, None, None) == V.VIX_OK


def test_undocumented_stubs(dll, vix):
    assert dll.VixDiskLib_SetInjectedFault(1, 1, V.VIX_E_FAIL) == 0
    err = ctypes.c_int(-1)
    assert dll.VixDiskLib_IsFaultEnabled_Func(1, ctypes.byref(err)) == 0
    dll.VixDiskLib_SetConfigOption(0, None)


def test_transport_mode_null_handle(dll, vix):
    assert dll.VixDiskLib_GetTransportMode(None) is None
