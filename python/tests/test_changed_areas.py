"""Change tracking through the C ABI: VixDiskLibExt_SetChangeTracking /
GetChangeId / FreeChangeId and VDDK 9.0's OpenEx + QueryChangedAreas /
FreeChangedAreas + GetConnectionFromDisk, called through the package's
ctypes declarations (vixdisklib._abi.FUNCTIONS)."""

from __future__ import annotations

import ctypes

import pytest

import vixdisklib as V
from vdl_helpers import DISK_SECTORS, GRAIN, KiB, MiB, SECTOR, fill, merge_ranges, needs_qemu, qemu_io, run_child

GRAIN_SECTORS = GRAIN // SECTOR

# (byte offset, byte length) of the writes of two sessions; sector aligned, several not grain aligned.
FIRST_WRITES = [
    (0, 4 * KiB),
    (5 * MiB + 4 * KiB, 4 * KiB),
    (10 * MiB - 512, 1 * KiB),  # straddles a grain boundary
    (33 * MiB, 3 * GRAIN),
    (64 * MiB - 512, 512),  # the last sector
]
SECOND_WRITES = [
    (20 * MiB + 512, 512),
    (5 * MiB + 8 * KiB, 512),  # inside a grain the first session changed
    (48 * MiB + 100 * KiB, 200 * KiB),
]


def grain_areas(writes) -> list[tuple[int, int]]:
    """Sector runs (merged) of the 64 KiB grains the byte ranges touch."""
    runs = []
    for off, length in writes:
        first, last = off // GRAIN, -(-(off + length) // GRAIN)
        runs.append((first * GRAIN_SECTORS, (last - first) * GRAIN_SECTORS))
    return merge_ranges(runs)


def write_all(disk: V.Disk, writes, byte: int) -> None:
    for off, length in writes:
        disk.write(off // SECTOR, fill(byte, length))


def set_tracking(dll, conn, path, enable: bool = True) -> int:
    return dll.VixDiskLibExt_SetChangeTracking(conn.handle, None if path is None else str(path).encode(),
                                               1 if enable else 0)


def get_change_id(dll, handle) -> tuple[int, str | None]:
    p = ctypes.c_void_p()
    err = dll.VixDiskLibExt_GetChangeId(handle, ctypes.byref(p))
    if err != V.VIX_OK:
        assert not p.value, "a failed GetChangeId must leave NULL"
        return err, None
    text = ctypes.string_at(p.value).decode()
    dll.VixDiskLibExt_FreeChangeId(p)
    return err, text


def change_id(dll, handle) -> str:
    err, text = get_change_id(dll, handle)
    assert err == V.VIX_OK, V.ERROR_NAMES.get(err & 0xFFFF, err)
    return text


def open_ex(dll, conn, path, since, flags=V.VIXDISKLIB_FLAG_OPEN_READ_ONLY):
    params = V.VixDiskLibOpenParams(path=str(path).encode(), flags=flags,
                                    changeId=None if since is None else since.encode())
    h = V.VixDiskLibHandle()
    err = dll.VixDiskLib_OpenEx(conn.handle, ctypes.byref(params), ctypes.byref(h))
    return err, h


def query_piece(dll, handle, start):
    """One QueryChangedAreas answer as (err, start, length, [(offset, length)])."""
    q = V.VixDiskLibQueryChangedAreaParams(startOffset=start)
    info = ctypes.POINTER(V.VixDiskLibDiskChangeInfo)()
    err = dll.VixDiskLib_QueryChangedAreas(handle, ctypes.byref(q), ctypes.byref(info))
    if err != V.VIX_OK:
        assert not info, "a failed QueryChangedAreas must leave NULL"
        return err, None, None, None
    piece = info.contents
    areas = [(b.offset, b.length) for b in piece.areas.contents.block_array()]
    out = (err, piece.startOffset, piece.length, areas)
    dll.VixDiskLib_FreeChangedAreas(info)
    return out


def query_all(dll, handle, capacity) -> list[tuple[int, int]]:
    """The caller's loop of VDDK 9.0: startOffset += length until the disk is covered."""
    start, areas = 0, []
    while start < capacity:
        err, got_start, length, piece = query_piece(dll, handle, start)
        assert err == V.VIX_OK, V.ERROR_NAMES.get(err & 0xFFFF, err)
        assert got_start == start and 0 < length <= capacity - start
        assert all(start <= o and o + n <= start + length and n > 0 for o, n in piece)
        assert piece == sorted(piece)
        areas += piece
        start += length
    return merge_ranges(areas)


@pytest.fixture
def tracked(vix, conn, tmp_path):
    """A 64 MiB sparse disk with change tracking on."""
    path = tmp_path / "tracked.vmdk"
    conn.create(path, DISK_SECTORS)
    assert set_tracking(vix.dll, conn, path) == V.VIX_OK
    return path


def test_set_change_tracking_needs_a_closed_disk(vix, conn, tmp_path):
    dll = vix.dll
    path = tmp_path / "d.vmdk"
    conn.create(path, DISK_SECTORS)
    with conn.open(path) as d:
        assert set_tracking(dll, conn, path) == V.VIX_E_FILE_ALREADY_LOCKED
        assert get_change_id(dll, d.handle)[0] == V.VIX_E_DISK_NOTSUPPORTED
    assert set_tracking(dll, conn, path) == V.VIX_OK
    assert set_tracking(dll, conn, path) == V.VIX_OK  # already on: a no-op
    with conn.open(path) as d:
        assert change_id(dll, d.handle)
    assert set_tracking(dll, conn, None) == V.VIX_E_INVALID_ARG
    assert dll.VixDiskLibExt_SetChangeTracking(None, str(path).encode(), 1) == V.VIX_E_INVALID_ARG


def test_change_id_is_stable_without_writes_and_new_after_one(vix, conn, tracked):
    dll = vix.dll
    with conn.open(tracked) as d:
        first = change_id(dll, d.handle)
        assert change_id(dll, d.handle) == first
        d.read(0, 8)
        assert change_id(dll, d.handle) == first
        d.write(100, fill(0x5A, SECTOR))
        second = change_id(dll, d.handle)
        assert second != first
        assert second.split("/")[0] == first.split("/")[0]  # same history, later number
        assert change_id(dll, d.handle) == second
    with conn.open(tracked, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        assert change_id(dll, d.handle) == second
    assert dll.VixDiskLibExt_GetChangeId(None, ctypes.byref(ctypes.c_void_p())) == V.VIX_E_INVALID_ARG
    with conn.open(tracked) as d:
        assert dll.VixDiskLibExt_GetChangeId(d.handle, None) == V.VIX_E_INVALID_ARG
    dll.VixDiskLibExt_FreeChangeId(None)


def test_query_changed_areas_returns_what_was_written(vix, conn, tracked):
    dll = vix.dll
    with conn.open(tracked) as d:
        t1 = change_id(dll, d.handle)
        write_all(d, FIRST_WRITES, 0xA1)
        t2 = change_id(dll, d.handle)
        write_all(d, SECOND_WRITES, 0xB2)
        t3 = change_id(dll, d.handle)

    for since, writes in ((t1, FIRST_WRITES + SECOND_WRITES), (t2, SECOND_WRITES), (t3, [])):
        err, h = open_ex(dll, conn, tracked, since)
        assert err == V.VIX_OK
        try:
            assert query_all(dll, h, DISK_SECTORS) == grain_areas(writes), since
            # One piece covers a 64 MiB disk whole.
            err, start, length, _ = query_piece(dll, h, 0)
            assert (err, start, length) == (V.VIX_OK, 0, DISK_SECTORS)
            # A start inside the disk: areas clipped to [start, end).
            mid = 33 * MiB // SECTOR + 17
            err, start, length, areas = query_piece(dll, h, mid)
            assert (err, start, length) == (V.VIX_OK, mid, DISK_SECTORS - mid)
            want = [(max(o, mid), o + n - max(o, mid)) for o, n in grain_areas(writes) if o + n > mid]
            assert areas == want
        finally:
            assert dll.VixDiskLib_Close(h) == V.VIX_OK


def test_star_gives_the_allocated_areas(vix, conn, tmp_path, tracked):
    dll = vix.dll
    with conn.open(tracked) as d:
        write_all(d, FIRST_WRITES, 0xC3)
    untracked = tmp_path / "untracked.vmdk"
    conn.create(untracked, DISK_SECTORS)
    with conn.open(untracked) as d:
        write_all(d, SECOND_WRITES, 0xD4)
    for path, writes in ((tracked, FIRST_WRITES), (untracked, SECOND_WRITES)):
        with conn.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
            allocated = merge_ranges(d.query_allocated_blocks(0, DISK_SECTORS, GRAIN_SECTORS))
        err, h = open_ex(dll, conn, path, "*")
        assert err == V.VIX_OK
        try:
            got = query_all(dll, h, DISK_SECTORS)
        finally:
            dll.VixDiskLib_Close(h)
        assert got == allocated == grain_areas(writes)


def test_unknown_or_stale_change_id_is_object_not_found(vix, conn, tracked):
    dll = vix.dll
    with conn.open(tracked) as d:
        d.write(0, fill(1, SECTOR))
        current = change_id(dll, d.handle)
    uuid, seq = current.split("/")
    other = ("00" if uuid[:2] != "00" else "11") + uuid[2:]
    for since in (f"{other}/{seq}", f"{uuid}/{int(seq) + 1000}"):
        err, h = open_ex(dll, conn, tracked, since)
        assert err == V.VIX_OK  # the id is checked by the query, not by the open
        try:
            assert query_piece(dll, h, 0)[0] == V.VIX_E_OBJECT_NOT_FOUND, since
        finally:
            dll.VixDiskLib_Close(h)
    # Turning tracking off and on starts a new history: the old id is unknown.
    assert set_tracking(dll, conn, tracked, False) == V.VIX_OK
    assert set_tracking(dll, conn, tracked, True) == V.VIX_OK
    err, h = open_ex(dll, conn, tracked, current)
    assert err == V.VIX_OK
    try:
        assert query_piece(dll, h, 0)[0] == V.VIX_E_OBJECT_NOT_FOUND
    finally:
        dll.VixDiskLib_Close(h)
    # Not a change id at all.
    err, h = open_ex(dll, conn, tracked, "not an id")
    assert err == V.VIX_OK
    try:
        assert query_piece(dll, h, 0)[0] == V.VIX_E_INVALID_ARG
    finally:
        dll.VixDiskLib_Close(h)


@needs_qemu
def test_a_read_only_handle_hands_out_no_id_it_cannot_keep(vix, conn, tracked):
    """After another program wrote the disk, a read-only handle cannot make a new id durable,
    so it must not issue one: the same number would name other content after a second
    foreign write, and an incremental since it would miss that write."""
    dll = vix.dll
    with conn.open(tracked) as d:
        d.write(0, fill(1, SECTOR))
        change_id(dll, d.handle)
    qemu_io("vmdk", tracked, "write -P 0x71 1M 64k")
    with conn.open(tracked, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        err, ro_id = get_change_id(dll, d.handle)
    qemu_io("vmdk", tracked, "write -P 0x72 2M 64k")
    if err != V.VIX_OK:
        assert err == V.VIX_E_FILE_READ_ONLY, V.ERROR_NAMES.get(err & 0xFFFF, err)
        return
    err, h = open_ex(dll, conn, tracked, ro_id)
    assert err == V.VIX_OK
    try:
        got = query_piece(dll, h, 0)
        if got[0] == V.VIX_OK:
            second = 2 * MiB // SECTOR
            assert any(o <= second < o + n for o, n in query_all(dll, h, DISK_SECTORS)), \
                f"the write after id {ro_id} is missing"
        else:
            assert got[0] == V.VIX_E_OBJECT_NOT_FOUND
    finally:
        dll.VixDiskLib_Close(h)


def test_untracked_disk_is_disk_notsupported(vix, conn, tmp_path, tracked):
    dll = vix.dll
    with conn.open(tracked) as d:
        some_id = change_id(dll, d.handle)
    path = tmp_path / "plain.vmdk"
    conn.create(path, DISK_SECTORS)
    err, h = open_ex(dll, conn, path, some_id)
    assert err == V.VIX_OK
    try:
        assert query_piece(dll, h, 0)[0] == V.VIX_E_DISK_NOTSUPPORTED
        assert get_change_id(dll, h)[0] == V.VIX_E_DISK_NOTSUPPORTED
    finally:
        dll.VixDiskLib_Close(h)


def test_bad_arguments_are_invalid_arg(vix, conn, tracked):
    dll = vix.dll
    with conn.open(tracked) as d:
        since = change_id(dll, d.handle)
    err, h = open_ex(dll, conn, tracked, since)
    assert err == V.VIX_OK
    try:
        for start in (DISK_SECTORS, DISK_SECTORS + 1, 2**64 - 1):
            assert query_piece(dll, h, start)[0] == V.VIX_E_INVALID_ARG, start
        q = V.VixDiskLibQueryChangedAreaParams(startOffset=0)
        info = ctypes.POINTER(V.VixDiskLibDiskChangeInfo)()
        assert dll.VixDiskLib_QueryChangedAreas(h, None, ctypes.byref(info)) == V.VIX_E_INVALID_ARG
        assert dll.VixDiskLib_QueryChangedAreas(h, ctypes.byref(q), None) == V.VIX_E_INVALID_ARG
        assert dll.VixDiskLib_QueryChangedAreas(None, ctypes.byref(q), ctypes.byref(info)) == V.VIX_E_INVALID_ARG
        assert not info
        # GetConnectionFromDisk gives back the connection the disk was opened through.
        c = V.VixDiskLibConnection()
        assert dll.VixDiskLib_GetConnectionFromDisk(h, ctypes.byref(c)) == V.VIX_OK
        assert c.value == conn.handle.value
        assert dll.VixDiskLib_GetConnectionFromDisk(h, None) == V.VIX_E_INVALID_ARG
        assert dll.VixDiskLib_GetConnectionFromDisk(None, ctypes.byref(c)) == V.VIX_E_INVALID_ARG
        assert c.value is None
    finally:
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
    assert dll.VixDiskLib_GetConnectionFromDisk(h, ctypes.byref(V.VixDiskLibConnection())) == V.VIX_E_INVALID_ARG

    # Opened without a change id (NULL, "", or plain Open): nothing to compare against.
    for since in (None, ""):
        err, h = open_ex(dll, conn, tracked, since)
        assert err == V.VIX_OK
        try:
            assert query_piece(dll, h, 0)[0] == V.VIX_E_INVALID_ARG
        finally:
            dll.VixDiskLib_Close(h)
    with conn.open(tracked) as d:
        assert query_piece(dll, d.handle, 0)[0] == V.VIX_E_INVALID_ARG

    # OpenEx argument checks.
    h = V.VixDiskLibHandle()
    params = V.VixDiskLibOpenParams(path=str(tracked).encode(), flags=0, changeId=None)
    assert dll.VixDiskLib_OpenEx(conn.handle, None, ctypes.byref(h)) == V.VIX_E_INVALID_ARG
    assert dll.VixDiskLib_OpenEx(conn.handle, ctypes.byref(params), None) == V.VIX_E_INVALID_ARG
    assert dll.VixDiskLib_OpenEx(None, ctypes.byref(params), ctypes.byref(h)) == V.VIX_E_INVALID_ARG
    assert not h.value
    assert open_ex(dll, conn, tracked.with_name("missing.vmdk"), "*")[0] == V.VIX_E_FILE_NOT_FOUND
    params.path = None
    assert dll.VixDiskLib_OpenEx(conn.handle, ctypes.byref(params), ctypes.byref(h)) == V.VIX_E_INVALID_ARG

    # FreeChangedAreas: NULL and foreign pointers are ignored.
    dll.VixDiskLib_FreeChangedAreas(None)
    foreign = V.VixDiskLibDiskChangeInfo()
    dll.VixDiskLib_FreeChangedAreas(ctypes.byref(foreign))


def test_open_ex_writes_like_open(vix, conn, tracked):
    """OpenEx with flags 0 opens read-write and locks like Open."""
    dll = vix.dll
    err, h = open_ex(dll, conn, tracked, None, flags=0)
    assert err == V.VIX_OK
    try:
        buf = ctypes.create_string_buffer(fill(0x3C, SECTOR), SECTOR)
        assert dll.VixDiskLib_Write(h, 7, 1, buf) == V.VIX_OK
        assert open_ex(dll, conn, tracked, None, flags=0)[0] == V.VIX_E_FILE_ALREADY_LOCKED
    finally:
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
    with conn.open(tracked, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        assert d.read(7, 1) == fill(0x3C, SECTOR)


def test_8x_sized_connect_params_are_accepted(lib_path):
    """A client built with an 8.x header passes a 128-byte ConnectParams: put
    one right before an inaccessible page, so a read past it would crash."""
    res = run_child(lib_path, """
        import mmap
        page = mmap.PAGESIZE
        area = mmap.mmap(-1, 2 * page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(area))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        result["mprotect"] = libc.mprotect(base + page, page, 0)  # PROT_NONE
        old = ctypes.cast(base + page - 128, ctypes.POINTER(V.VixDiskLibConnectParams))
        conn = V.VixDiskLibConnection()
        result["connectex"] = dll.VixDiskLib_ConnectEx(old, 0, None, None, ctypes.byref(conn))
        result["disconnect"] = dll.VixDiskLib_Disconnect(conn)
        result["connect"] = dll.VixDiskLib_Connect(old, ctypes.byref(conn))
        result["disconnect2"] = dll.VixDiskLib_Disconnect(conn)
        result["cleanup"] = dll.VixDiskLib_Cleanup(old, None, None)
        p = dll.VixDiskLib_AllocateConnectParams()
        result["alloc_136_zeroed"] = ctypes.string_at(p, 136) == bytes(136)
        dll.VixDiskLib_FreeConnectParams(p)
    """)
    assert res == {"mprotect": 0, "connectex": 0, "disconnect": 0, "connect": 0, "disconnect2": 0,
                   "cleanup": 0, "alloc_136_zeroed": True}
