"""The package's examples (the seed scenario's nightly redo logs and past
generation), run in-process and as commands, checked with qemu-img."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import vixdisklib as V
from vdl_helpers import PYTHON_DIR, SECTOR, merge_ranges, needs_qemu, qemu_check, qemu_info, qemu_io, qemu_map_data
from vixdisklib.examples import nightly_redo_logs as nightly
from vixdisklib.examples import past_generation as past


def _expected_writes(generation: int) -> list[tuple[int, int, int]]:
    out = [nightly.BASE_DATA]
    for night in range(1, generation + 1):
        out += nightly.night_writes(night)
    return out


@pytest.fixture
def chain(conn, tmp_path):
    progress: list[int] = []
    gens = nightly.build_chain(conn, tmp_path, progress=progress.append)
    assert progress and max(progress) == 100
    return tmp_path, gens


@needs_qemu
def test_nightly_redo_logs_make_a_sound_chain(chain):
    directory, gens = chain
    assert [g.name for g in gens] == ["base.vmdk", "base-000001.vmdk", "base-000002.vmdk", "base-000003.vmdk"]
    for gen, path in enumerate(gens):
        qemu_check(path)
        info = qemu_info(path)
        assert info["virtual-size"] == nightly.CAPACITY * SECTOR
        if gen:
            assert os.path.basename(info["backing-filename"]) == gens[gen - 1].name
        # qemu reads every generation as the writes up to that night, byte for byte
        cmds = [f"read -P {byte:#x} {start * SECTOR} {count * SECTOR}"
                for start, count, byte in _overlay(_expected_writes(gen))]
        qemu_io("vmdk", path, *cmds, read_only=True)


def _overlay(writes):
    """Split writes so later ones win: sector -> byte, back into runs."""
    sectors: dict[int, int] = {}
    for start, count, byte in writes:
        for s in range(start, start + count):
            sectors[s] = byte
    runs = []
    for s in sorted(sectors):
        if runs and runs[-1][0] + runs[-1][1] == s and runs[-1][2] == sectors[s]:
            runs[-1][1] += 1
        else:
            runs.append([s, 1, sectors[s]])
    return [tuple(r) for r in runs]


@needs_qemu
@pytest.mark.parametrize("generation", [0, 1, 3])
def test_past_generation_reads_as_its_night(conn, chain, generation):
    directory, gens = chain
    report = past.inspect_generation(conn, directory, generation)
    assert report.ok, report.mismatches
    assert report.num_links == generation + 1
    # the areas it read are the 64 KiB chunks qemu-img map reports as data for that generation
    grain = 128 * SECTOR
    qemu = merge_ranges([(s // grain * grain, -(-(s + n) // grain) * grain - s // grain * grain)
                         for s, n in qemu_map_data(gens[generation])])
    assert [a.byte_range for a in report.areas] == qemu


@needs_qemu
def test_past_generation_notices_a_changed_generation(conn, chain):
    directory, gens = chain
    start, count, _byte = nightly.night_writes(1)[0]
    qemu_io("vmdk", gens[1], f"write -P 0x77 {start * SECTOR} {SECTOR}")
    report = past.inspect_generation(conn, directory, 1)
    assert not report.ok and report.mismatches[0].startswith(f"sector {start}:"), report.mismatches


def test_examples_run_as_commands(lib_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "PYTHONDONTWRITEBYTECODE": "1"}
    if V.load().found_by != "bundled":
        env["VIXDISKLIB_LIB"] = lib_path
    run = [sys.executable, "-m"]
    p = subprocess.run(run + ["vixdisklib.examples.nightly_redo_logs", str(tmp_path / "n"), "2"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "generation 2: base-000002.vmdk, 3 link(s), parent base-000001.vmdk" in p.stdout, p.stdout
    p = subprocess.run(run + ["vixdisklib.examples.past_generation", str(tmp_path / "n"), "1"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and "past_generation: all checks passed" in p.stdout, p.stdout + p.stderr
    # a fresh directory: the example builds its own chain first
    p = subprocess.run(run + ["vixdisklib.examples.past_generation", str(tmp_path / "fresh"), "3"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and "4 links" in p.stdout, p.stdout + p.stderr
