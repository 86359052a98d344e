"""The Pythonic layer of the vixdisklib package: VixError, zero-copy
readinto/write, futures over ReadAsync/WriteAsync, allocated-area iterators,
progress callables, context managers and the names older tests import.
Oracles: qemu-img/qemu-io on the same files."""

from __future__ import annotations

import array
import concurrent.futures as cf
import inspect
import pickle
import threading

import pytest

import vixdisklib as V
from vdl_helpers import (DISK_SECTORS, GRAIN, MiB, SECTOR, fill, needs_qemu, qemu_check, qemu_io, qemu_map_data,
                         run_child)


@pytest.fixture
def disk_path(conn, tmp_path):
    path = tmp_path / "api.vmdk"
    conn.create(path, DISK_SECTORS)
    return path


# -- errors -------------------------------------------------------------------


def test_vix_error_carries_code_name_text_and_function(conn, tmp_path):
    with pytest.raises(V.VixError) as ei:
        conn.open(tmp_path / "absent.vmdk")
    e = ei.value
    assert e.code & 0xFFFF == V.VIX_E_FILE_NOT_FOUND and e.name == "VIX_E_FILE_NOT_FOUND"
    assert e.function == "VixDiskLib_Open"
    assert e.text and e.text == conn.lib.error_text(e.code), e.text
    assert e.text in str(e) and "VIX_E_FILE_NOT_FOUND" in str(e)
    assert isinstance(e, V.VixErrorException) and V.VixErrorException is V.VixError
    back = pickle.loads(pickle.dumps(e))
    assert (back.code, back.name, back.text, back.function) == (e.code, e.name, e.text, e.function)


def test_closed_disk_raises_value_error(conn, disk_path):
    d = conn.open(disk_path)
    d.close()
    assert d.closed
    with pytest.raises(ValueError, match="closed"):
        d.read(0, 1)
    d.close()  # idempotent


# -- zero-copy reads and writes -----------------------------------------------


@needs_qemu
def test_readinto_fills_the_callers_buffers_in_place(conn, disk_path):
    qemu_io("vmdk", disk_path, "write -P 0x5a 1048576 65536", "write -P 0xa5 2097152 4096")
    with conn.open(disk_path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        ba = bytearray(64 * 1024)
        assert d.readinto(2048, ba) == len(ba)
        assert ba == fill(0x5A, len(ba))
        # a slice of a bigger buffer: only that slice changes
        big = bytearray(b"\x01" * (3 * SECTOR))
        d.readinto(4096, memoryview(big)[SECTOR:2 * SECTOR])
        assert big == b"\x01" * SECTOR + fill(0xA5, SECTOR) + b"\x01" * SECTOR
        # multi-byte items: sizes count in bytes, not items
        words = array.array("I", [7]) * (SECTOR // 4)
        d.readinto(4096, words)
        assert words.tobytes() == fill(0xA5, SECTOR)
        assert d.read_into is not None  # the single-file binding's name still works
        with pytest.raises(TypeError):
            d.readinto(0, bytes(SECTOR))
        with pytest.raises(ValueError, match="multiple of 512"):
            d.readinto(0, bytearray(100))


def test_readinto_and_write_with_numpy(conn, disk_path):
    np = pytest.importorskip("numpy")
    with conn.open(disk_path) as d:
        src = np.arange(GRAIN // 8, dtype=np.uint64)
        d.write(256, src)
        dst = np.zeros(GRAIN // 8, dtype=np.uint64)
        d.readinto(256, dst)
        assert np.array_equal(src, dst)
        with pytest.raises(ValueError, match="contiguous"):
            d.readinto(256, np.zeros((2, GRAIN // 8), dtype=np.uint64)[:, ::2])


@needs_qemu
def test_write_accepts_any_bytes_like(conn, disk_path):
    with conn.open(disk_path) as d:
        d.write(0, fill(0x11, SECTOR))  # bytes: passed as is
        d.write(1, bytearray(fill(0x22, SECTOR)))  # writable: passed in place
        d.write(2, memoryview(fill(0x33, 2 * SECTOR))[SECTOR:])  # read-only view: copied once
        d.write(3, array.array("B", fill(0x44, SECTOR)))
        with pytest.raises(ValueError, match="multiple of 512"):
            d.write(4, b"x" * 100)
    qemu_check(disk_path)
    qemu_io("vmdk", disk_path, "read -P 0x11 0 512", "read -P 0x22 512 512", "read -P 0x33 1024 512",
            "read -P 0x44 1536 512", "read -P 0 2048 512", read_only=True)


# -- futures ------------------------------------------------------------------


@needs_qemu
def test_futures_resolve_from_the_completion_callback(conn, disk_path):
    n = 48
    with conn.open(disk_path) as d:
        done_threads: set[int] = set()
        writes = [d.submit_write(i * 512, fill(i + 1, 256 * SECTOR)) for i in range(n)]
        for f in writes:
            f.add_done_callback(lambda _f: done_threads.add(threading.get_ident()))
        finished, pending = cf.wait(writes, timeout=20)
        assert not pending, f"{len(pending)} write futures never resolved (no Wait called)"
        assert all(f.result() is None for f in writes)
        assert not writes[0].cancel(), "an I/O in flight cannot be cancelled"
        reads = [d.submit_read(i * 512, 256) for i in range(n)]
        buf = bytearray(n * SECTOR)
        into = [d.submit_readinto(i * 512 + 255, memoryview(buf)[i * SECTOR:(i + 1) * SECTOR]) for i in range(n)]
        assert [f.result(timeout=20) for f in reads] == [fill(i + 1, 256 * SECTOR) for i in range(n)]
        assert all(f.result(timeout=20) == SECTOR for f in into)
        assert buf == b"".join(fill(i + 1, SECTOR) for i in range(n))
        d.wait()
    qemu_check(disk_path)
    qemu_io("vmdk", disk_path, *[f"read -P {i + 1:#x} {i * 512 * SECTOR} {256 * SECTOR}" for i in range(n)],
            read_only=True)


def test_future_fails_with_vix_error_out_of_range(conn, tmp_path):
    path = tmp_path / "small.vmdk"
    conn.create(path, 2048)
    with conn.open(path) as d:
        try:
            fut = d.submit_read(2046, 4)
        except V.VixError as e:  # refused at submission: also acceptable
            assert e.code & 0xFFFF == V.VIX_E_DISK_OUTOFRANGE
            return
        with pytest.raises(V.VixError) as ei:
            fut.result(timeout=20)
        assert ei.value.code & 0xFFFF == V.VIX_E_DISK_OUTOFRANGE and ei.value.text


# -- allocated areas ----------------------------------------------------------


@needs_qemu
def test_allocated_areas_match_qemu_map(conn, disk_path):
    qemu_io("vmdk", disk_path, "write -P 1 0 4096", "write -P 2 1048576 131072", "write -P 3 1179648 512",
            f"write -P 4 {63 * MiB} 512")
    with conn.open(disk_path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
        areas = list(d.allocated_areas())
        part = list(d.allocated_areas(2048 + 64, 2048))
    qemu = [(s // GRAIN * GRAIN, -(-(s + n) // GRAIN) * GRAIN - s // GRAIN * GRAIN) for s, n in
            qemu_map_data(disk_path)]
    assert [a.byte_range for a in areas] == qemu
    assert all(isinstance(a, V.Area) for a in areas)
    assert part == [V.Area(2048 + 64, 256 - 64 + 128)]  # clipped to the query, runs merged


@needs_qemu
def test_allocated_areas_cross_query_windows_and_report_the_tail(conn, tmp_path):
    """One QueryAllocatedBlocks call covers at most MAX_CHUNK_NUMBER chunks
    (32 GiB at 128 sectors): an area across that boundary comes back whole;
    a capacity that is not a whole number of chunks ends in a reported tail."""
    path = tmp_path / "big.vmdk"
    window = V.VIXDISKLIB_MAX_CHUNK_NUMBER * V.VIXDISKLIB_MIN_CHUNK_SIZE
    capacity = window + 4096 + 3
    conn.create(path, capacity)
    with conn.open(path) as d:
        d.write(window - 128, fill(0x7E, 256 * SECTOR))
        areas = list(d.allocated_areas())
    assert areas == [V.Area(window - 128, 256), V.Area(capacity - 3, 3)]
    qemu_check(path)
    assert qemu_map_data(path)[0] == ((window - 128) * SECTOR, 256 * SECTOR)


def test_windowed_areas_merges_and_clips():
    calls = []

    def query(start, count, chunk):
        calls.append((start, count, chunk))
        return [V.Area(start, chunk), V.Area(start + count - chunk, chunk)]

    chunk = 4
    window = V.VIXDISKLIB_MAX_CHUNK_NUMBER * chunk
    got = list(V.windowed_areas(query, 2, 2 * window + 5, chunk))
    assert calls == [(0, window, 4), (window, window, 4), (2 * window, 4, 4)]
    # the end of window 1 touches the start of window 2: merged; the tail (2 sectors) joins the last chunk
    assert got == [V.Area(2, 2), V.Area(window - 4, 8), V.Area(2 * window - 4, 4 + 4 + 3)]


# -- progress callables -------------------------------------------------------


@needs_qemu
def test_progress_callable_and_its_exception(conn, tmp_path):
    seen: list[int] = []
    base = tmp_path / "p.vmdk"
    conn.create(base, DISK_SECTORS, progress=seen.append)
    assert seen and seen[-1] == 100 and all(0 <= p <= 100 for p in seen), seen

    class Stop(Exception):
        pass

    def boom(pct):
        raise Stop(pct)

    child = tmp_path / "p-child.vmdk"
    with conn.open(base) as d, pytest.raises(Stop):
        d.create_child(child, progress=boom)
    # VixDiskLib ignores the callback's verdict: the child exists and is sound
    qemu_check(child)
    with conn.open(child) as c:
        assert c.info().num_links == 2


# -- context managers in a fresh process --------------------------------------


def test_context_managers_release_everything(lib_path, tmp_path):
    path = tmp_path / "ctx.vmdk"
    res = run_child(lib_path, f"""
        lines = []
        with V.Library(dll=dll, log=lines.append, warn=lines.append) as lib2:
            with lib2.connect() as c:
                c.create({str(path)!r}, 2048)
                with c.open({str(path)!r}) as d:
                    d.write(0, b"\\x42" * 512)
                result["disk_closed"] = d.closed
                # the lock is gone: a second read-write open works
                with c.open({str(path)!r}) as d2:
                    result["data"] = d2.read(0, 1) == b"\\x42" * 512
            result["conn_closed"] = c.handle is None
        result["exited"] = not lib2.initialized
        try:
            with V.Library(dll=dll) as lib3, lib3.connect() as c3, c3.open({str(path)!r} + ".nope"):
                pass
        except V.VixError as e:
            result["error"] = e.name
        result["exited_after_error"] = not lib3.initialized
    """, init=False)
    assert res == {"disk_closed": True, "data": True, "conn_closed": True, "exited": True,
                   "error": "VIX_E_FILE_NOT_FOUND", "exited_after_error": True}


# -- the names other tests and users import -----------------------------------


def test_old_top_level_names_still_import():
    for name in ("load", "find_library", "Library", "Connection", "Disk", "DiskInfo", "AsyncRequest",
                 "VixErrorException", "VixError", "iter_chunks", "format_va_list", "FUNCTIONS", "ERROR_CODES",
                 "ERROR_NAMES", "STRUCT_SIZES", "VixDiskLibCompletionCB", "VixDiskLibGenericLogFunc",
                 "VIX_OK", "VIX_ASYNC", "VIX_E_DISK_CID_MISMATCH", "VIXDISKLIB_FLAG_OPEN_READ_ONLY"):
        assert hasattr(V, name), name
    assert V.Library.connect.__annotations__ and V.Disk.readinto.__doc__


def test_every_public_name_has_a_docstring():
    import vixdisklib.examples.nightly_redo_logs as ex1
    import vixdisklib.examples.past_generation as ex2
    import vixdisklib.examples.backup_recovery as ex3

    missing = []
    for mod in (V, V.errors, V.library, V.disk, V._abi, ex1, ex2, ex3):
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{mod.__name__}.{name}")
            if inspect.isclass(obj):
                for mname, m in vars(obj).items():
                    if not mname.startswith("_") and inspect.isfunction(m) and not m.__doc__:
                        missing.append(f"{mod.__name__}.{name}.{mname}")
    assert missing == [], f"public names without a docstring: {missing}"
