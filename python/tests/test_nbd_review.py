"""Regressions from the review of the NBD transport (issue 11): completion callbacks that call
the library, forked children holding inherited remote handles, Close after unflushed writes on
a dead connection, and requests the client library refuses. Every case runs in a child process
with a short ``vixDiskLib.nbd.timeoutSecs`` and a hard time limit, so a hang fails the test
instead of stalling the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

import vixdisklib as V
from nbd_servers import nbdkit, require_nbd_tools
from vdl_helpers import run_child

pytestmark = pytest.mark.usefixtures("nbd_tools")

TIMEOUT_SECS = 2


@pytest.fixture(scope="module")
def nbd_tools():
    require_nbd_tools()


@pytest.fixture
def config(tmp_path) -> Path:
    cfg = tmp_path / "vddk.conf"
    cfg.write_text(f'vixDiskLib.nbd.timeoutSecs = "{TIMEOUT_SECS}"\n')
    return cfg


PRELUDE = """
import os, signal, time, threading
sys.path.insert(0, {tests!r})
from nbd_servers import connect, open_disk, read, remote_params, write
lib.init(log=LOGS.append, warn=LOGS.append, panic=LOGS.append, config={config!r})
_, conn = connect(dll, remote_params({uri!r}))
err, h = open_disk(dll, conn)
assert err == V.VIX_OK, err
"""


def child(lib_path: str, config: Path, uri: str, body: str, timeout: float = 20) -> dict:
    prelude = PRELUDE.format(tests=str(Path(__file__).parent), config=str(config), uri=uri)
    return run_child(lib_path, prelude + body, init=False, timeout=timeout)


def test_a_completion_callback_may_call_the_library_synchronously(lib_path, tmp_path, config):
    # Callbacks used to run on the one thread that drives every NBD socket: a callback making
    # a synchronous call on a remote disk waited for that very thread, forever.
    srv = nbdkit(["memory", "16M"], sock=tmp_path / "cb.sock")
    try:
        res = child(lib_path, config, srv.uri, """
inner = []
done = threading.Event()
def on_done(data, err):
    inner.append((err, read(dll, h, 8, 8)[0]))
    done.set()
cb = V.VixDiskLibCompletionCB(on_done)
buf = ctypes.create_string_buffer(4096)
t = time.monotonic()
result["async"] = dll.VixDiskLib_ReadAsync(h, 0, 8, buf, cb, None)
result["fired"] = done.wait(TIMEOUT)
result["secs"] = time.monotonic() - t
result["inner"] = inner
if result["fired"]:
    result["wait"] = dll.VixDiskLib_Wait(h)
    result["close"] = dll.VixDiskLib_Close(h)
    dll.VixDiskLib_Disconnect(conn)
else:
    sys.stdout.write("\\n@@RESULT@@" + json.dumps(result) + "\\n")
    sys.stdout.flush()
    os._exit(0)
""".replace("TIMEOUT", str(TIMEOUT_SECS * 3)))
    finally:
        srv.stop()
    assert res["async"] == V.VIX_ASYNC
    assert res["fired"], "the callback's synchronous read never finished"
    assert res["inner"] == [[V.VIX_OK, V.VIX_OK]]
    assert res["secs"] < TIMEOUT_SECS
    assert res["wait"] == V.VIX_OK and res["close"] == V.VIX_OK
