"""Fixtures: the loaded library, one InitEx for the whole session (with
recording Python log callbacks), a local connection per test."""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # keep python/ free of __pycache__ (pytest honours this too)

import pytest  # noqa: E402

import vixdisklib as V  # noqa: E402

# Messages the session's log/warn/panic callbacks received.
LOGS: dict[str, list[str]] = {"log": [], "warn": [], "panic": []}


@pytest.fixture(scope="session")
def dll():
    try:
        return V.load()
    except (FileNotFoundError, OSError) as e:
        pytest.fail(f"cannot load libvixDiskLib.so: {e}", pytrace=False)


@pytest.fixture(scope="session")
def lib_path(dll) -> str:
    return dll.path


@pytest.fixture(scope="session")
def vix(dll):
    lib = V.Library(dll=dll)
    lib.init(log=LOGS["log"].append, warn=LOGS["warn"].append, panic=LOGS["panic"].append)
    yield lib
    lib.exit()


@pytest.fixture
def conn(vix):
    with vix.connect() as c:
        yield c


@pytest.fixture
def logs():
    return LOGS
