"""NBD failure cases (issue 11): server gone, connection reset, export missing, server hanging
(at the handshake and mid-request), libnbd missing. Each must give a clear VixError within a
bounded time (``vixDiskLib.nbd.timeoutSecs``), never a hang or a crash; a dead handle still
closes. Cases needing their own InitEx (a config file, another libnbd) run in a child process."""

from __future__ import annotations

import ctypes
import signal
import socket
import time
from pathlib import Path

import pytest

import vixdisklib as V
from nbd_servers import (TIMEOUT_SECS, config, connect, free_port, nbd_tools, nbdkit, open_disk,  # noqa: F401
                         read, remote_params)
from vdl_helpers import run_child

pytestmark = pytest.mark.usefixtures("nbd_tools")

CHILD_HELPERS = """
import os, signal, time, threading
sys.path.insert(0, {tests!r})
from nbd_servers import connect, open_disk, read, remote_params, write
lib.init(log=LOGS.append, warn=LOGS.append, panic=LOGS.append, config={config!r})

def stop(pid):
    # SIGSTOP takes effect asynchronously: wait until the server is really stopped.
    os.kill(pid, signal.SIGSTOP)
    for _ in range(500):
        with open(f"/proc/{{pid}}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.01)
"""


def child(lib_path: str, config: Path, body: str, timeout: float = 60) -> dict:
    prelude = CHILD_HELPERS.format(tests=str(Path(__file__).parent), config=str(config))
    return run_child(lib_path, prelude + body, init=False, timeout=timeout)


def test_server_gone_is_refused_promptly(dll, vix, tmp_path):
    port = free_port()  # nothing listens there
    for server in [f"nbd://127.0.0.1:{port}", f"nbd+unix:///?socket={tmp_path}/none.sock"]:
        _, conn = connect(dll, remote_params(server))
        t = time.monotonic()
        err, h = open_disk(dll, conn)
        assert err == V.VIX_E_HOST_NETWORK_CONN_REFUSED and not h.value, (server, err)
        assert time.monotonic() - t < 5
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK


def test_export_missing_is_file_not_found(dll, vix, tmp_path):
    from nbd_servers import qemu_nbd
    from test_nbd import make_image
    img = make_image(tmp_path / "x.qcow2", "qcow2", 1 << 20, [])
    with qemu_nbd(img, "qcow2", tmp_path / "s.sock", export="disk1") as srv:
        _, conn = connect(dll, remote_params(srv.uri))
        err, h = open_disk(dll, conn, b"disk2")
        assert err == V.VIX_E_FILE_NOT_FOUND and not h.value
        err, h = open_disk(dll, conn, b"disk1")
        assert err == V.VIX_OK
        dll.VixDiskLib_Close(h)
        dll.VixDiskLib_Disconnect(conn)


def test_connection_reset_kills_the_handle_and_close_still_works(dll, vix, tmp_path):
    srv = nbdkit(["memory", "16M"], sock=tmp_path / "m.sock")
    try:
        _, conn = connect(dll, remote_params(srv.uri))
        _, h = open_disk(dll, conn)
        assert read(dll, h, 0, 8)[0] == V.VIX_OK
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        t = time.monotonic()
        err, _ = read(dll, h, 0, 8)
        assert err == V.VIX_E_HOST_TCP_CONN_LOST, err
        # The handle stays dead: later calls fail at once, sync and async alike.
        assert read(dll, h, 8, 8)[0] == V.VIX_E_HOST_TCP_CONN_LOST
        calls = []
        cb = V.VixDiskLibCompletionCB(lambda d, e: calls.append(e))
        buf = bytearray(4096)
        arr = (ctypes.c_char * 4096).from_buffer(buf)
        assert dll.VixDiskLib_ReadAsync(h, 0, 8, arr, cb, None) == V.VIX_E_HOST_TCP_CONN_LOST
        assert dll.VixDiskLib_Flush(h) == V.VIX_E_HOST_TCP_CONN_LOST
        assert time.monotonic() - t < 5
        assert dll.VixDiskLib_Wait(h) == V.VIX_OK
        assert dll.VixDiskLib_Close(h) == V.VIX_OK
        assert dll.VixDiskLib_Disconnect(conn) == V.VIX_OK
        assert calls == []
    finally:
        srv.stop()


def test_hanging_server_times_out_sync_and_async(lib_path, tmp_path, config):
    srv = nbdkit(["memory", "16M"], sock=tmp_path / "h.sock")
    try:
        res = child(lib_path, config, f"""
_, conn = connect(dll, remote_params({srv.uri!r}))
err, h = open_disk(dll, conn)
result["open"] = err
result["read_ok"] = read(dll, h, 0, 8)[0]
stop({srv.proc.pid})
t = time.monotonic()
result["read_hung"] = read(dll, h, 0, 8)[0]
result["read_secs"] = time.monotonic() - t
result["again"] = read(dll, h, 0, 8)[0]
result["close"] = dll.VixDiskLib_Close(h)
result["disconnect"] = dll.VixDiskLib_Disconnect(conn)

# A fresh connection whose async request hangs: its callback reports the timeout by itself.
os.kill({srv.proc.pid}, signal.SIGCONT)
_, conn = connect(dll, remote_params({srv.uri!r}))
err, h = open_disk(dll, conn)
stop({srv.proc.pid})
got = threading.Event()
codes = []
cb = V.VixDiskLibCompletionCB(lambda d, e: (codes.append(e), got.set()))
buf = ctypes.create_string_buffer(4096)
t = time.monotonic()
result["async"] = dll.VixDiskLib_ReadAsync(h, 0, 8, buf, cb, None)
result["callback_fired"] = got.wait(30)
result["async_secs"] = time.monotonic() - t
result["codes"] = codes
result["wait"] = dll.VixDiskLib_Wait(h)
result["close2"] = dll.VixDiskLib_Close(h)
dll.VixDiskLib_Disconnect(conn)
result["logs"] = LOGS
""")
    finally:
        srv.stop()
    assert res["open"] == V.VIX_OK and res["read_ok"] == V.VIX_OK
    assert res["read_hung"] == V.VIX_E_NET_HTTP_OPERATION_TIMEDOUT
    assert TIMEOUT_SECS - 0.5 < res["read_secs"] < TIMEOUT_SECS + 3
    assert res["again"] == V.VIX_E_NET_HTTP_OPERATION_TIMEDOUT
    assert res["close"] == V.VIX_OK and res["disconnect"] == V.VIX_OK
    assert res["async"] == V.VIX_ASYNC and res["callback_fired"]
    assert res["codes"] == [V.VIX_E_NET_HTTP_OPERATION_TIMEDOUT]
    assert res["async_secs"] < TIMEOUT_SECS + 3
    assert res["wait"] == V.VIX_OK and res["close2"] == V.VIX_OK
    assert any("no answer within 2 s" in m for m in res["logs"])


def test_a_long_queue_on_a_slow_but_answering_server_is_not_a_timeout(lib_path, tmp_path, config):
    # A backup program may queue far more async requests than the server answers within the
    # timeout (nbdkit's vddk plugin, a full-disk ReadAsync fan-out). One server thread and
    # 50 ms a read: 100 reads take 5 s, more than the 2 s timeout and the 4 s bound a
    # synchronous read waits before killing the connection, yet every request is answered
    # within 50 ms of its turn. The timeout bounds the server's silence, not a queue.
    srv = nbdkit(["--filter=delay", "-t", "1", "memory", "16M", "rdelay=50ms"], sock=tmp_path / "q.sock")
    try:
        res = child(lib_path, config, f"""
_, conn = connect(dll, remote_params({srv.uri!r}))
err, h = open_disk(dll, conn)
result["open"] = err
codes = []
cb = V.VixDiskLibCompletionCB(lambda d, e: codes.append(e))
bufs = [ctypes.create_string_buffer(4096) for _ in range(100)]
t = time.monotonic()
result["submitted"] = [dll.VixDiskLib_ReadAsync(h, 8 * i, 8, b, cb, None) for i, b in enumerate(bufs)]
result["sync_read"] = read(dll, h, 0, 8)[0]
result["wait"] = dll.VixDiskLib_Wait(h)
result["secs"] = time.monotonic() - t
result["codes"] = codes
result["close"] = dll.VixDiskLib_Close(h)
dll.VixDiskLib_Disconnect(conn)
""")
    finally:
        srv.stop()
    assert res["open"] == V.VIX_OK
    assert res["submitted"] == [V.VIX_ASYNC] * 100
    assert res["codes"] == [V.VIX_OK] * 100, sorted(set(res["codes"]))
    assert res["sync_read"] == V.VIX_OK, V.ERROR_NAMES.get(res["sync_read"], res["sync_read"])
    assert res["secs"] > TIMEOUT_SECS + 2, "the queue drained too fast to test anything"
    assert res["wait"] == V.VIX_OK and res["close"] == V.VIX_OK


def test_server_silent_at_handshake_times_out(lib_path, tmp_path, config):
    # A listening socket nobody serves: the kernel completes the TCP handshake, then silence.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        res = child(lib_path, config, f"""
_, conn = connect(dll, remote_params("nbd://127.0.0.1:{port}"))
t = time.monotonic()
err, h = open_disk(dll, conn)
result["open"] = err
result["null"] = not h.value
result["secs"] = time.monotonic() - t
result["disconnect"] = dll.VixDiskLib_Disconnect(conn)
""")
    assert res["open"] == V.VIX_E_NET_HTTP_OPERATION_TIMEDOUT and res["null"]
    assert TIMEOUT_SECS - 0.5 < res["secs"] < TIMEOUT_SECS + 3
    assert res["disconnect"] == V.VIX_OK


def test_missing_libnbd_is_not_supported_with_an_install_hint(lib_path, tmp_path, config, monkeypatch):
    monkeypatch.setenv("VIXDISKLIB_LIBNBD", "/nonexistent/libnbd.so.0")
    res = child(lib_path, config, f"""
conn = ctypes.c_void_p()
result["remote"] = connect(dll, remote_params("nbd://127.0.0.1:10809"))[0]
local = ctypes.c_void_p()
result["local"] = dll.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(local))
dll.VixDiskLib_Disconnect(local)
result["logs"] = LOGS
""")
    assert res["remote"] == V.VIX_E_NOT_SUPPORTED
    assert res["local"] == V.VIX_OK
    assert any("apt-get install libnbd0" in m for m in res["logs"]), res["logs"]
