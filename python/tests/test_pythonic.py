"""Issue 16: the package feels like Python -- enums, errors that are
OSErrors naming the path, log lines through `logging`, a dropped Disk that
releases its lock, a clean namespace and no import circles.  Oracles: qemu-img
and the descriptor text on disk, the lock itself (a second read-write open),
and fresh processes for whatever needs its own InitEx."""

from __future__ import annotations

import ast
import errno
import gc
import pickle
import re
import warnings
from pathlib import Path

import pytest

import vixdisklib as V
from vdl_helpers import needs_qemu, qemu_check, qemu_info, run_child

PACKAGE_DIR = Path(V.__file__).resolve().parent


def _descriptor(path: Path) -> str:
    """The embedded descriptor of a monolithicSparse/streamOptimized file (or a flat one's text file)."""
    raw = path.read_bytes()[:64 * 1024]
    start = raw.find(b"# Disk DescriptorFile")
    assert start >= 0, f"no descriptor in {path}"
    return raw[start:].split(b"\0", 1)[0].decode()


# -- enums ----------------------------------------------------------------------


@needs_qemu
def test_enums_drive_create_and_come_back_from_info(conn, tmp_path):
    path = tmp_path / "enum.vmdk"
    conn.create(path, 2048, V.DiskType.STREAM_OPTIMIZED, V.AdapterType.IDE)
    assert qemu_info(path)["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert 'ddb.adapterType = "ide"' in _descriptor(path)
    with conn.open(path, V.OpenFlag.READ_ONLY) as d:
        assert d.info().adapter_type is V.AdapterType.IDE
        assert d.transport_mode() is V.TransportMode.FILE and d.transport_mode() == "file"
        with pytest.raises(PermissionError):
            d.write(0, bytes(512))
    qemu_check(path)


def test_plain_ints_and_strings_still_work(conn, vix, tmp_path):
    path = tmp_path / "ints.vmdk"
    conn.create(path, 2048, 2, 2)  # monolithicFlat, buslogic
    assert 'createType="monolithicFlat"' in (tmp_path / "ints.vmdk").read_text()
    with conn.open(path, 4) as d:  # VIXDISKLIB_FLAG_OPEN_READ_ONLY
        assert d.info().adapter_type == 2 == V.AdapterType.SCSI_BUSLOGIC
        with pytest.raises(V.VixError):
            d.write(0, bytes(512))
    assert V.OpenFlag.READ_ONLY | V.OpenFlag.SINGLE_LINK == 6
    assert V.DiskType(V.VIXDISKLIB_DISK_VMFS_THIN) is V.DiskType.VMFS_THIN
    with vix.connect(transport_modes=[V.TransportMode.FILE]) as c2, c2.open(path, V.OpenFlag.READ_ONLY) as d:
        assert d.read(0, 1) == bytes(512)
    with vix.connect(transport_modes="file") as c3:
        assert c3.handle is not None
    assert V.TransportMode.FILE in vix.transport_modes()
    assert str(V.TransportMode.NBDSSL) == "nbdssl" and f"{V.TransportMode.NBD}" == "nbd"


def test_default_adapter_is_lsilogic(conn, tmp_path):
    """One default for every front end (the CLI's `create` says the same)."""
    import inspect

    path = tmp_path / "default.vmdk"
    conn.create(path, 2048)
    assert 'ddb.adapterType = "lsilogic"' in _descriptor(path)
    for fn in (V.Connection.create, V.Connection.clone):
        assert inspect.signature(fn).parameters["adapter_type"].default is V.AdapterType.SCSI_LSILOGIC


# -- errors ----------------------------------------------------------------------


def test_missing_file_is_a_file_not_found_error_naming_the_path(conn, tmp_path):
    missing = tmp_path / "absent.vmdk"
    with pytest.raises(FileNotFoundError) as ei:
        conn.open(missing)
    e = ei.value
    assert isinstance(e, V.VixError) and isinstance(e, OSError)
    assert e.errno == errno.ENOENT and e.filename == str(missing)
    msg = str(e)
    assert str(missing) in msg, msg
    assert msg.count("VIX_E_FILE_NOT_FOUND") == 1 and msg.count("(4)") + msg.count(", 4)") == 1, msg
    assert msg == f"VixDiskLib_Open: {missing}: {e.text}", msg
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is type(e) and (back.code, back.filename, str(back)) == (e.code, e.filename, msg)


def test_existing_file_is_a_file_exists_error(conn, tmp_path):
    path = tmp_path / "twice.vmdk"
    conn.create(path, 2048)
    with pytest.raises(FileExistsError) as ei:
        conn.create(path, 2048)
    assert ei.value.errno == errno.EEXIST and ei.value.filename == str(path)
    assert isinstance(ei.value, V.VixError) and ei.value.name == "VIX_E_FILE_ALREADY_EXISTS"


def test_read_only_is_a_permission_error_other_codes_plain_os_errors(conn, tmp_path):
    path = tmp_path / "ro.vmdk"
    conn.create(path, 2048)
    with conn.open(path, V.OpenFlag.READ_ONLY) as d:
        with pytest.raises(PermissionError) as ei:
            d.write(0, bytes(512))
        assert ei.value.errno == errno.EACCES and str(path) in str(ei.value)
        with pytest.raises(V.VixError) as ei2:
            d.read(10**9, 1)  # past the end
        assert type(ei2.value) is V.VixError and isinstance(ei2.value, OSError) and ei2.value.errno
    e = V.VixError(V.VIX_E_DISK_FULL, "VixDiskLib_Write")
    assert e.errno == errno.ENOSPC and type(e) is V.VixError
    assert str(e) == "VixDiskLib_Write: VIX_E_DISK_FULL (8)", str(e)
    assert isinstance(V.VixError(V.VIX_E_FILE_NOT_FOUND), FileNotFoundError)


def test_clone_errors_name_both_paths(conn, tmp_path):
    src, dst = tmp_path / "src.vmdk", tmp_path / "dst.vmdk"
    conn.create(src, 2048)
    conn.create(dst, 2048)
    with pytest.raises(FileExistsError) as ei:
        conn.clone(dst, conn, src)
    assert (ei.value.filename, ei.value.filename2) == (str(src), str(dst)), str(ei.value)
    assert f"{src} -> {dst}" in str(ei.value)


def test_a_missing_directory_is_named_not_an_internal_temporary_file(vix, conn, tmp_path, logs):
    """A new disk in a directory that does not exist: the log line (on stderr by default,
    through logging) names that directory, never the hidden temporary name the disk would be
    written under (".x.vmdk.tmp-new"), and Rename does not blame its existing source."""
    src = tmp_path / "src.vmdk"
    conn.create(src, 2048)
    missing = tmp_path / "no" / "dir"
    target = missing / "x.vmdk"
    calls = [
        lambda: conn.create(target, 2048),
        lambda: conn.create(target, 2048, V.DiskType.MONOLITHIC_FLAT),
        lambda: conn.clone(target, conn, src),
        lambda: conn.clone(target, conn, src, disk_type=V.DiskType.STREAM_OPTIMIZED),
        lambda: vix.rename(src, target),
    ]
    for call in calls:
        del logs["warn"][:]
        with pytest.raises(FileNotFoundError):
            call()
        said = " ".join(logs["warn"])
        assert str(missing) in said and "tmp-new" not in said, said
        assert f"file not found: {src}" not in said, said
    with conn.open(src) as d:
        del logs["warn"][:]
        with pytest.raises(FileNotFoundError):
            d.create_child(target)
        said = " ".join(logs["warn"])
        assert str(missing) in said and "tmp-new" not in said, said
    assert src.exists() and not (tmp_path / "no").exists()


# -- logging ---------------------------------------------------------------------


def test_log_lines_go_to_the_logging_module_by_default(lib_path, tmp_path):
    res = run_child(lib_path, f"""
        import io, logging
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append((record.name, record.levelname, record.getMessage()))
        logging.getLogger("vixdisklib").addHandler(Keep())
        logging.getLogger("vixdisklib").setLevel(logging.INFO)
        with V.Library(dll=dll) as lib2, lib2.connect() as c:
            try:
                c.open({str(tmp_path / "nope.vmdk")!r})
            except FileNotFoundError:
                pass
        result["records"] = records
    """, init=False)
    records = res["records"]
    assert records, "nothing reached the vixdisklib logger"
    assert {name for name, _, _ in records} == {"vixdisklib"}
    assert any(level == "INFO" and "initialised" in msg for _, level, msg in records), records
    assert any(level == "WARNING" and "nope.vmdk" in msg for _, level, msg in records), records
    assert not any(msg.endswith("\n") for _, _, msg in records), records


def test_log_print_does_not_double_space(lib_path, tmp_path):
    import subprocess
    import sys

    code = f"""
import vixdisklib as V
with V.Library({lib_path!r}, log=print, warn=print) as lib, lib.connect() as c:
    c.create({str(tmp_path / "p.vmdk")!r}, 2048)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(PACKAGE_DIR.parent), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert "initialised" in p.stdout and "created" in p.stdout, p.stdout
    assert "\n\n" not in p.stdout, repr(p.stdout)
    assert p.stderr == "", p.stderr  # nothing written behind logging's back


# -- a dropped Disk ----------------------------------------------------------------


def test_dropped_disk_releases_its_lock(conn, tmp_path, logs):
    path = tmp_path / "drop.vmdk"
    conn.create(path, 2048)
    with pytest.warns(ResourceWarning, match="not closed"):
        assert conn.open(path).read(0, 1) == bytes(512)
        gc.collect()
    with conn.open(path) as d:  # VIX_E_FILE_ALREADY_LOCKED before the finalizer
        d.write(0, b"\x11" * 512)
    with conn.open(path, V.OpenFlag.READ_ONLY) as d:
        assert d.read(0, 1) == b"\x11" * 512


def test_closed_attached_and_disconnected_disks_are_never_closed_twice(vix, conn, tmp_path, logs):
    base, child = tmp_path / "base.vmdk", tmp_path / "child.vmdk"
    conn.create(base, 2048)
    with conn.open(base) as b:
        b.create_child(child)
    before = len(logs["warn"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = conn.open(base, V.OpenFlag.READ_ONLY)
        d.close()
        del d  # closed: the finalizer was detached
        parent = conn.open(base, V.OpenFlag.READ_ONLY)
        kid = conn.open(child, V.OpenFlag.SINGLE_LINK)
        parent.attach(kid)
        del parent  # its handle belongs to kid now
        gc.collect()
        assert kid.read(0, 1) == bytes(512)
        kid.close()
        c2 = vix.connect()
        left = c2.open(base)
        c2.close()  # Disconnect closes what was left open on it
        del left
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert logs["warn"][before:] == [] or all("left open" in m for m in logs["warn"][before:]), logs["warn"][before:]
    with conn.open(base) as again:  # nothing holds the lock
        assert again.read(0, 1) == bytes(512)


# -- the namespace and the module graph ----------------------------------------------


def test_dir_shows_the_public_api_only():
    public = {n for n in dir(V) if not n.startswith("_")}
    submodules = {"disk", "errors", "library", "examples"}
    assert public - set(V.__all__) - submodules == set(), "names leaked into the package namespace"
    assert "annotations" not in public
    assert set(V.__all__) - set(dir(V)) == set()
    for name in ("DiskType", "AdapterType", "OpenFlag", "TransportMode", "VIX_E_FILE_NOT_FOUND",
                 "VIXDISKLIB_FLAG_OPEN_READ_ONLY", "Library", "VixError"):
        assert name in V.__all__, name


def _imports(path: Path, module: str) -> set[str]:
    """Package modules ``module`` (dotted) imports, type-checking-only ones included."""
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "vixdisklib")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package_parts[: len(package_parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "vixdisklib":
                continue
            if node.module:  # `from .disk import Disk`: the module (and any submodule named)
                out.add(target)
            # `from . import disk` imports the submodule, not the package's other names
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = {}
    for f in root.rglob("*.py"):
        rel = f.relative_to(root.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if f.name == "__init__.py" else rel.parts)
        modules[name] = f
    return {m: {t for t in _imports(f, m) if t in modules and t != m} for m, f in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return []

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return []


def test_the_package_has_no_import_circles():
    graph = import_graph(PACKAGE_DIR)
    assert "vixdisklib.disk" in graph and "vixdisklib._abi" in graph["vixdisklib.disk"]
    assert find_cycle(graph) == [], " -> ".join(find_cycle(graph))
    # the checker sees circles, including type-checking-only ones
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    sample = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .disk import Disk\n"
    assert "vixdisklib.disk" in _imports_from_source(sample, "vixdisklib.library")


def _imports_from_source(src: str, module: str) -> set[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.py"
        p.write_text(src)
        return _imports(p, module)


def test_message_format_has_no_doubled_code():
    e = V.VixError(V.VIX_E_FILE_NOT_FOUND, "VixDiskLib_Open",
                   "The requested file does not exist (VIX_E_FILE_NOT_FOUND, 4)", "/d/x.vmdk")
    assert str(e) == "VixDiskLib_Open: /d/x.vmdk: The requested file does not exist (VIX_E_FILE_NOT_FOUND, 4)"
    assert re.search(r"VIX_E_FILE_NOT_FOUND.*VIX_E_FILE_NOT_FOUND", str(e)) is None


def test_function_counts_in_the_package_docs_are_the_librarys():
    """A number of functions the package's docstring (help(vixdisklib)) gives is the
    number the package binds; a stale count ("the same 50 functions" with 54) fails."""
    claims = re.findall(r"(\d+)\s+(?:exported\s+)?functions", V.__doc__ or "")
    assert all(int(n) == len(V.FUNCTIONS) for n in claims), (claims, len(V.FUNCTIONS))


# -- docs/python.md ----------------------------------------------------------------------


def test_docs_python_md_blocks_parse_and_the_first_program_runs(lib_path, tmp_path):
    import subprocess
    import sys

    from vdl_helpers import REPO_ROOT

    doc = REPO_ROOT / "docs" / "python.md"
    if not doc.exists():
        pytest.skip("docs/ is not next to this copy of the tests")
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    assert len(blocks) >= 4
    for b in blocks:
        ast.parse(b)
    p = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(PACKAGE_DIR.parent), "VIXDISKLIB_LIB": lib_path, "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "b'\\xab\\xab\\xab\\xab' 131072", p.stdout
