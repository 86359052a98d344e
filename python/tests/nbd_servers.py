"""NBD servers for the remote-disk tests (issue 11): qemu-nbd and nbdkit started by the
tests themselves on unix sockets or 127.0.0.1, stopped when the test ends, plus helpers to
reach them through VixDiskLib's connection parameters."""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

import vixdisklib as V


def missing_tools() -> list[str]:
    """What the NBD tests need and this machine lacks (scripts/setup.sh installs it all)."""
    missing = [t for t in ("qemu-nbd", "qemu-img", "qemu-io", "nbdkit") if not shutil.which(t)]
    if not any(Path(d, "libnbd.so.0").exists()
               for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")):
        missing.append("libnbd.so.0")
    return missing


def require_nbd_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"NBD tests need {', '.join(missing)}: run scripts/setup.sh "
                    "(apt-get install qemu-utils nbdkit libnbd0)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, ready, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"{what} exited with {proc.returncode}: {err}")
        if ready():
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"{what} did not start within {timeout} s")


def _tcp_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    """A running NBD server process and the serverName that reaches it."""

    def __init__(self, argv: list[str], uri: str, ready, what: str) -> None:
        self.argv = argv
        self.uri = uri
        self.what = what
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _wait_ready(self.proc, ready, what)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # A stopped (SIGSTOP) server must be continued to die on SIGTERM.
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def qemu_nbd(image: Path, fmt: str, sock: Path, read_only: bool = False, export: Optional[str] = None,
             bitmap: Optional[str] = None) -> Server:
    """qemu-nbd serving ``image`` on a unix socket, for several clients, until stopped."""
    argv = ["qemu-nbd", "-f", fmt, "--socket", str(sock), "--persistent", "--shared=32"]
    if read_only:
        argv.append("--read-only")
    if export is not None:
        argv += ["--export-name", export]
    if bitmap is not None:
        argv += ["-B", bitmap]
    argv.append(str(image))
    uri = f"nbd+unix:///?socket={sock}"
    return Server(argv, uri, lambda: sock.exists(), "qemu-nbd")


def nbdkit(plugin_args: list[str], sock: Optional[Path] = None, port: Optional[int] = None,
           extra: Optional[list[str]] = None, scheme: str = "nbd") -> Server:
    """nbdkit in the foreground on a unix socket or on 127.0.0.1:port."""
    argv = ["nbdkit", "-f", "--exit-with-parent"] + (extra or [])
    if sock is not None:
        argv += ["-U", str(sock)]
        uri = f"{scheme}+unix:///?socket={sock}"
        ready = sock.exists
    else:
        assert port is not None
        argv += ["-i", "127.0.0.1", "-p", str(port)]
        uri = f"{scheme}://127.0.0.1:{port}"
        ready = (lambda: _tcp_listening(port))
    return Server(argv + plugin_args, uri, ready, "nbdkit")


def remote_params(server: str, port: int = 0, user: Optional[bytes] = b"root") -> V.VixDiskLibConnectParams:
    """Connect params as a VDDK backup program fills them for a remote host: the NBD server
    name, plus the vCenter-only fields (vmxSpec, thumbprint, credentials) NBD ignores."""
    p = V.VixDiskLibConnectParams()
    p.serverName = server.encode()
    p.port = port
    p.vmxSpec = b"moref=vm-42"
    p.thumbPrint = b"AA:BB:CC"
    if user is not None:
        p.credType = V.VIXDISKLIB_CRED_UID
        p.creds.uid.userName = user
        p.creds.uid.password = b"secret"
    return p


def connect(dll, params: V.VixDiskLibConnectParams, modes: Optional[bytes] = b"nbd",
            read_only: bool = False) -> tuple[int, ctypes.c_void_p]:
    conn = ctypes.c_void_p()
    err = dll.VixDiskLib_ConnectEx(ctypes.byref(params), 1 if read_only else 0, None, modes, ctypes.byref(conn))
    return err, conn


def open_disk(dll, conn, export: bytes = b"", flags: int = 0) -> tuple[int, ctypes.c_void_p]:
    h = ctypes.c_void_p()
    err = dll.VixDiskLib_Open(conn, export, flags, ctypes.byref(h))
    return err, h


def read(dll, h, start: int, count: int) -> tuple[int, bytes]:
    buf = ctypes.create_string_buffer(count * 512)
    err = dll.VixDiskLib_Read(h, start, count, buf)
    return err, buf.raw


def write(dll, h, start: int, data: bytes) -> int:
    return dll.VixDiskLib_Write(h, start, len(data) // 512, data)


def capacity(dll, h) -> int:
    info = ctypes.POINTER(V.VixDiskLibInfo)()
    assert dll.VixDiskLib_GetInfo(h, ctypes.byref(info)) == V.VIX_OK
    try:
        return info.contents.capacity
    finally:
        dll.VixDiskLib_FreeInfo(info)


#: The request timeout the failure tests configure (short, so hangs are caught fast).
TIMEOUT_SECS = 2


@pytest.fixture(scope="module")
def nbd_tools() -> None:
    """Skips the module when qemu-nbd, nbdkit or libnbd are missing."""
    require_nbd_tools()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """An InitEx config file setting the NBD timeout to :data:`TIMEOUT_SECS`."""
    cfg = tmp_path / "vddk.conf"
    cfg.write_text(f'vixDiskLib.nbd.timeoutSecs = "{TIMEOUT_SECS}"\n')
    return cfg
