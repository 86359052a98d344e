"""Interop with qemu-img / qemu-io (vmdk-format.md section 7) and libvmdk.

Disks we create must be valid for qemu (check, info, compare, map, qemu-io
pattern reads) and readable/writable by qemu; disks qemu creates must read
back through our library byte for byte.  Skipped when qemu is missing."""

from __future__ import annotations

import itertools
import shutil
import struct

import pytest

import vixdisklib as V
from vdl_helpers import (DISK_SECTORS, DISK_SIZE, GRAIN, KiB, MiB, PATTERNS, SECTOR, descriptor_dict,
                         expected_image, file_state, fill, first_diff, grain_ranges, make_ref_raw, needs_qemu,
                         qemu_check, qemu_info, qemu_io, qemu_map_data, read_all, run, sparse_header,
                         write_patterns)

pytestmark = needs_qemu

SUBFORMATS = {
    "monolithicSparse": V.VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
    "monolithicFlat": V.VIXDISKLIB_DISK_MONOLITHIC_FLAT,
}


@pytest.fixture(scope="module")
def expected():
    return bytes(expected_image())


@pytest.fixture(scope="module")
def ref_raw(tmp_path_factory, expected):
    path = make_ref_raw(tmp_path_factory.mktemp("ref") / "ref.raw")
    assert path.read_bytes() == expected, "harness: qemu-io reference differs from the Python model"
    return path


@pytest.fixture(scope="module")
def ours(vix, tmp_path_factory):
    """Our disks with PATTERNS written, one per subformat (do not modify)."""
    out = {}
    with vix.connect() as c:
        for name, dtype in SUBFORMATS.items():
            path = tmp_path_factory.mktemp(name) / "ours.vmdk"
            c.create(path, DISK_SECTORS, disk_type=dtype)
            with c.open(path) as d:
                write_patterns(d)
            out[name] = path
    return out


def _copy_disk(src, dst_dir):
    dst_dir.mkdir(parents=True, exist_ok=True)
    for p in src.parent.iterdir():
        if p.name.startswith(src.stem) and p.suffix == ".vmdk":
            shutil.copy2(p, dst_dir / p.name)
    return dst_dir / src.name


def _runs(image: bytes, patterns=PATTERNS):
    """(offset, length, byte) runs of constant content covering the image."""
    cuts = {0, len(image)}
    for off, ln, _ in patterns:
        cuts |= {off, off + ln}
    cuts = sorted(cuts)
    return [(a, b - a, image[a]) for a, b in itertools.pairwise(cuts)]


# ---------------------------------------------------------------------------
# A: created by us, consumed by qemu
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_ours_passes_qemu_img_check(ours, fmt):
    qemu_check(ours[fmt])


@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_ours_qemu_img_info(ours, fmt):
    info = qemu_info(ours[fmt])
    assert info["format"] == "vmdk"
    assert info["virtual-size"] == DISK_SIZE
    data = info["format-specific"]["data"]
    assert data["create-type"] == fmt
    assert data["parent-cid"] == 0xFFFFFFFF
    assert data["cid"] not in (0xFFFFFFFF, 0xFFFFFFFE)
    if fmt == "monolithicSparse":
        assert info["cluster-size"] == 65536
    else:
        assert [e["filename"].rsplit("/", 1)[-1] for e in data["extents"]] == ["ours-flat.vmdk"]
    desc = descriptor_dict(ours[fmt])
    assert int(desc["CID"], 16) == data["cid"], "qemu and the descriptor disagree on the CID"


@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_ours_compare_equal_to_reference(ours, ref_raw, fmt):
    p = run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(ref_raw), str(ours[fmt])], check=False)
    assert p.returncode == 0, f"qemu-img compare rc={p.returncode}: {p.stdout}{p.stderr}"
    assert "Images are identical" in p.stdout


@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_ours_convert_to_raw(ours, expected, tmp_path, fmt):
    out = tmp_path / "out.raw"
    run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(ours[fmt]), str(out)])
    assert first_diff(out.read_bytes(), expected) is None, first_diff(out.read_bytes(), expected)


def test_ours_sparse_map_matches_written_grains(ours):
    got = qemu_map_data(ours["monolithicSparse"])
    want = grain_ranges()
    assert got == want, f"qemu-img map data ranges\n got  {got}\n want {want}"


@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_ours_qemu_io_pattern_reads(ours, expected, fmt):
    cmds = [f"read -P {b:#x} {o} {n}" for o, n, b in _runs(expected)]
    qemu_io("vmdk", ours[fmt], *cmds, read_only=True)


def _check_sparse_layout(path):
    """Structural checks libvmdk/VirtualBox depend on: newline detector bytes,
    grain/GT geometry, GD and RGD trees identical in content, grains inside
    the file and grain aligned, clean-shutdown flag cleared after close."""
    h = sparse_header(path)
    raw = path.read_bytes()
    assert h["magic"] == 0x564D444B
    assert h["newlines"] == b"\n \r\n"
    assert h["version"] == 1 and not (h["flags"] & 4), "no zeroed-grain GTEs unless asked for"
    assert h["grain"] == 128 and h["num_gtes"] == 512 and h["desc_off"] == 1
    assert h["overhead"] % 128 == 0
    assert h["unclean"] == 0, "uncleanShutdown must be 0 after Close"
    ngd = -(-h["capacity"] // (h["grain"] * h["num_gtes"]))
    gd = struct.unpack_from(f"<{ngd}I", raw, h["gd"] * 512)
    assert all(gd), "every grain table must be pre-allocated"
    gts = {}
    for i, g in enumerate(gd):
        gts[i] = raw[g * 512:g * 512 + 4 * h["num_gtes"]]
    if h["flags"] & 2:
        rgd = struct.unpack_from(f"<{ngd}I", raw, h["rgd"] * 512)
        for i, r in enumerate(rgd):
            assert r and r != gd[i], f"RGD[{i}]={r} GD[{i}]={gd[i]}"
            assert raw[r * 512:r * 512 + 4 * h["num_gtes"]] == gts[i], f"GT {i} != redundant GT {i}"
    for i, gt in gts.items():
        for j, e in enumerate(struct.unpack(f"<{h['num_gtes']}I", gt)):
            if e:
                assert e >= h["overhead"], f"GT[{i}][{j}]={e} inside metadata"
                assert e % h["grain"] == 0, f"GT[{i}][{j}]={e}: grain not grain aligned"
                assert (e + h["grain"]) * 512 <= len(raw), f"GT[{i}][{j}]={e} beyond end of file"


def test_ours_sparse_layout(ours):
    _check_sparse_layout(ours["monolithicSparse"])


@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_qemu_writes_into_ours_and_we_read_back(vix, ours, expected, tmp_path, fmt):
    path = _copy_disk(ours[fmt], tmp_path / "copy")
    cid_before = descriptor_dict(path)["CID"]
    qemu_io("vmdk", path, "write -P 0x22 20M 64k")
    qemu_check(path)
    want = bytearray(expected)
    want[20 * MiB:20 * MiB + 64 * KiB] = fill(0x22, 64 * KiB)
    with vix.connect() as c:
        with c.open(path) as d:
            got = read_all(d, DISK_SECTORS)
            assert first_diff(got, bytes(want)) is None, first_diff(got, bytes(want))
            # then we write next to / inside qemu's grain
            d.write((21 * MiB) // SECTOR, fill(0x23, 4096))
            d.write((20 * MiB + 4096) // SECTOR, fill(0x24, 512))
    want[21 * MiB:21 * MiB + 4096] = fill(0x23, 4096)
    want[20 * MiB + 4096:20 * MiB + 4608] = fill(0x24, 512)
    qemu_check(path)
    out = tmp_path / "out.raw"
    run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(path), str(out)])
    assert first_diff(out.read_bytes(), bytes(want)) is None, first_diff(out.read_bytes(), bytes(want))
    assert descriptor_dict(path)["CID"] != cid_before
    if fmt == "monolithicSparse":
        _check_sparse_layout(path)


# ---------------------------------------------------------------------------
# B: created by qemu, read (and written) by us
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("subformat", ["monolithicSparse", "monolithicFlat", "streamOptimized",
                                       "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"])
def test_read_qemu_converted(vix, ref_raw, expected, tmp_path, subformat):
    path = tmp_path / "c.vmdk"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}", str(ref_raw),
         str(path)])
    before = file_state(path)
    with vix.connect() as c:
        with c.open(path, V.VIXDISKLIB_FLAG_OPEN_READ_ONLY) as d:
            info = d.info()
            assert info.capacity == DISK_SECTORS
            assert info.num_links == 1
            got = read_all(d, DISK_SECTORS)
    assert first_diff(got, expected) is None, first_diff(got, expected)
    assert file_state(path) == before, "a read-only open modified the files"


def test_qemu_created_empty_then_we_write(vix, ref_raw, tmp_path):
    path = tmp_path / "q.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", str(path), "64M"])
    with vix.connect() as c:
        with c.open(path) as d:
            info = d.info()
            assert info.capacity == DISK_SECTORS
            assert info.adapter_type == V.VIXDISKLIB_ADAPTER_IDE  # qemu's default ddb.adapterType
            assert read_all(d, DISK_SECTORS) == bytes(DISK_SIZE)
            write_patterns(d)
    qemu_check(path)
    p = run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(ref_raw), str(path)], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert qemu_map_data(path) == grain_ranges()
    _check_sparse_layout(path)


def test_zeroed_grains(vix, ref_raw, expected, tmp_path):
    """qemu's zeroed-grain GTEs (value 1, version 2) read as zeros, and a
    partial write into a zeroed grain keeps the rest of the grain zero."""
    path = tmp_path / "z.vmdk"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "zeroed_grain=on", str(ref_raw), str(path)])
    qemu_io("vmdk", path, "write -z 64k 64k", "write -z 1M 128k")
    h = sparse_header(path)
    assert h["version"] == 2 and h["flags"] & 4, h
    mp = run(["qemu-img", "map", "--output=json", str(path)]).stdout
    assert '"start": 65536, "length": 65536, "depth": 0, "present": true, "zero": true, "data": false' in mp, mp
    want = bytearray(expected)
    want[64 * KiB:128 * KiB] = bytes(64 * KiB)
    want[1 * MiB:1 * MiB + 128 * KiB] = bytes(128 * KiB)
    with vix.connect() as c:
        with c.open(path) as d:
            got = read_all(d, DISK_SECTORS)
            assert first_diff(got, bytes(want)) is None, first_diff(got, bytes(want))
            d.write((64 * KiB + 4096) // SECTOR, fill(0x5A, 512))
            want[64 * KiB + 4096:64 * KiB + 4608] = fill(0x5A, 512)
            assert d.read((64 * KiB) // SECTOR, GRAIN // SECTOR) == bytes(want[64 * KiB:128 * KiB])
    qemu_check(path)
    out = tmp_path / "z.raw"
    run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(path), str(out)])
    assert first_diff(out.read_bytes(), bytes(want)) is None, first_diff(out.read_bytes(), bytes(want))


# ---------------------------------------------------------------------------
# libvmdk (pyvmdk), if installed
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", SUBFORMATS)
def test_libvmdk_reads_ours(ours, expected, fmt):
    pyvmdk = pytest.importorskip("pyvmdk")
    h = pyvmdk.handle()
    h.open(str(ours[fmt]))
    try:
        h.open_extent_data_files()
        assert h.get_media_size() == DISK_SIZE
        got = h.read_buffer_at_offset(DISK_SIZE, 0)
    finally:
        h.close()
    assert first_diff(got, expected) is None, first_diff(got, expected)
