"""Fixtures and helpers for the transfer-layer tests: a pytest plugin that
tests/integration/test_fs_*.py load with ``pytest_plugins = ["fs_helpers"]`` (not a conftest.py:
a second module named ``conftest`` would shadow tests/conftest.py, which other tests import by
that name). The servers are the REAL local ones (tests/services/up.sh).

``endpoint`` is parametrised over every scheme batchkit serves here: XRootD (root://),
XrdHttp (davs:// with adler32), nginx WebDAV (dav:// and davs://) and GridFTP (ftp://
through gfal2). Each test gets a fresh directory on the server (``Endpoint.url``) that maps to
a directory on this machine (``Endpoint.disk``), so tests can check what really landed on the
server's disk. ``private_xrootd`` / ``private_nginx`` start a server of the test's own on a free
port, which the test may kill.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from conftest import missing, require_service

from batchkit.fs import registry


@attrs.frozen
class Endpoint:
    name: str
    url: str  # base URL of this test's own directory on the server
    disk: Path  # the same directory on this machine's disk
    adler32: bool  # the server offers adler32 itself
    owner: str | None = None  # user the server writes files as

    def join(self, *parts: str) -> str:
        return "/".join([self.url.rstrip("/"), *parts])


def _ensure_ca_env() -> None:
    os.environ["X509_CERT_DIR"] = require_service("X509_CERT_DIR", "the test CA (tests/services/pki.sh)")


def _gfal2_or_skip() -> None:
    try:
        import gfal2  # noqa: F401
    except ImportError:
        message = "gfal2 bindings not importable in this venv: bash tests/services/gfal2-python.sh .venv"
        missing(message)


def make_endpoint(name: str) -> Endpoint:
    unique = f"bk-fs-test-{secrets.token_hex(4)}"
    if name == "root":
        base = require_service("BATCHKIT_TEST_XROOTD_URL", "XRootD")
        data = Path(require_service("BATCHKIT_TEST_XROOTD_DATA", "XRootD"))
        return Endpoint(name, f"{base}//{unique}", data / unique, True, "xrootd")
    if name == "xrdhttp":
        _ensure_ca_env()
        base = require_service("BATCHKIT_TEST_XROOTD_HTTPS_URL", "XRootD's HTTPS (XrdHttp)")
        data = Path(require_service("BATCHKIT_TEST_XROOTD_DATA", "XRootD"))
        return Endpoint(name, f"{base}/{unique}", data / unique, True, "xrootd")
    if name in ("dav", "davs"):
        if name == "davs":
            _ensure_ca_env()
        key = "BATCHKIT_TEST_DAV_URL" if name == "dav" else "BATCHKIT_TEST_DAVS_URL"
        base = require_service(key, "the nginx WebDAV server")
        data = Path(require_service("BATCHKIT_TEST_WEBDAV_DATA", "the nginx WebDAV server"))
        return Endpoint(name, f"{base}/{unique}", data / unique, False)
    if name == "ftp":
        _gfal2_or_skip()
        base = require_service("BATCHKIT_TEST_GRIDFTP_URL", "GridFTP")
        data = Path(require_service("BATCHKIT_TEST_GRIDFTP_DATA", "GridFTP"))
        return Endpoint(name, f"{base}{data}/{unique}", data / unique, True, "nobody")
    raise AssertionError(name)


ALL_ENDPOINTS = ["root", "xrdhttp", "dav", "davs", "ftp"]


@pytest.fixture(params=ALL_ENDPOINTS)
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    ep = make_endpoint(request.param)
    yield ep
    shutil.rmtree(ep.disk, ignore_errors=True)


@pytest.fixture
def root_endpoint() -> Iterator[Endpoint]:
    ep = make_endpoint("root")
    yield ep
    shutil.rmtree(ep.disk, ignore_errors=True)


@pytest.fixture
def dav_endpoint() -> Iterator[Endpoint]:
    ep = make_endpoint("dav")
    yield ep
    shutil.rmtree(ep.disk, ignore_errors=True)


@pytest.fixture
def fresh_fs_registry() -> Iterator[None]:
    """Each test starts with fresh filesystem instances (no capability caches carried over)."""
    registry.reset()
    yield
    registry.reset()


def temps_under(directory: Path) -> list[Path]:
    """batchkit temporaries (``.<name>.bkpart-<hex>``) left below ``directory``."""
    if not directory.exists():
        return []
    return [p for p in directory.rglob("*") if ".bkpart-" in p.name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@attrs.define
class PrivateServer:
    """A server process of the test's own (killable); ``url`` is its base URL."""

    url: str
    data: Path
    process: subprocess.Popen[bytes]
    start_argv: list[str] = attrs.field(factory=list)
    user: str | None = None
    port: int = 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def start_again(self) -> None:
        self.process = subprocess.Popen(
            self.start_argv, user=self.user, cwd=self.data.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)


def _private_xrootd(tmp_path: Path) -> PrivateServer:
    if shutil.which("xrootd") is None:
        require_service("BATCHKIT_TEST_XROOTD_URL", "XRootD (the xrootd binary for a private instance)")
    require_service("BATCHKIT_TEST_XROOTD_URL", "XRootD")
    port = free_port()
    # xrootd runs as the user xrootd, who cannot enter pytest's 0700 tmp_path: use /tmp directly
    top = Path(tempfile.mkdtemp(prefix=f"batchkit-test-xrd{port}-"))
    for sub in ("data", "admin", "run", "log"):
        (top / sub).mkdir(parents=True)
    config = top / "xrootd.cfg"
    config.write_text(
        f"xrd.port {port}\nxrd.allow host localhost\nall.export /\noss.localroot {top}/data\n"
        f"all.adminpath {top}/admin\nall.pidpath {top}/run\nxrootd.chksum adler32\n"
    )
    for path in [top, *top.rglob("*")]:
        shutil.chown(path, "xrootd", "xrootd")
    argv = ["xrootd", "-c", str(config), "-l", str(top / "log" / "xrootd.log"), "-n", f"bktest{port}"]
    process = subprocess.Popen(argv, user="xrootd", cwd=top, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return PrivateServer(f"root://localhost:{port}", top / "data", process, argv, "xrootd", port)


def _private_nginx(tmp_path: Path) -> PrivateServer:
    require_service("BATCHKIT_TEST_DAV_URL", "the nginx WebDAV server")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    top = tmp_path / f"nginx{port}"
    (top / "data").mkdir(parents=True)
    (top / "tmp").mkdir()
    config = top / "nginx.conf"
    config.write_text(
        f"""load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
daemon off; master_process off; user root; pid {top}/nginx.pid; error_log {top}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off; client_body_temp_path {top}/tmp;
  server {{
    listen 127.0.0.1:{port}; root {top}/data; client_max_body_size 0;
    location / {{
      dav_methods PUT DELETE MKCOL COPY MOVE; dav_ext_methods PROPFIND OPTIONS; create_full_put_path on;
    }}
  }}
}}
"""
    )
    argv = [nginx, "-c", str(config), "-p", str(top), "-e", str(top / "error.log")]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return PrivateServer(f"dav://127.0.0.1:{port}", top / "data", process, argv, None, port)


@pytest.fixture
def private_xrootd(tmp_path: Path) -> Iterator[PrivateServer]:
    server = _private_xrootd(tmp_path)
    yield server
    server.kill()
    shutil.rmtree(server.data.parent, ignore_errors=True)


@pytest.fixture
def private_nginx(tmp_path: Path) -> Iterator[PrivateServer]:
    server = _private_nginx(tmp_path)
    yield server
    server.kill()


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data
