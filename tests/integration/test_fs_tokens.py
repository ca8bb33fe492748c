"""Bearer tokens reach HTTPS servers, never plain HTTP ones, and never a log line or an error.

The server here is a small real HTTPS server (Python's http.server with the test PKI's host
certificate) that records the headers it receives, because nginx and XrdHttp in the test set-up
ignore tokens and cannot tell us what they were sent.
"""

from __future__ import annotations

import http.server
import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_service

import batchkit.fs as bfs
from batchkit.errors import FileNotFound

TOKEN = "eyJhbGciOiJSUzI1NiJ9.batchkit-test-token.c2lnbmF0dXJl"
MULTISTATUS = (
    b'<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/x</D:href><D:propstat>'
    b"<D:prop><D:getcontentlength>3</D:getcontentlength><D:resourcetype/></D:prop>"
    b"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"
)

pytest_plugins = ["fs_helpers"]
pytestmark = pytest.mark.usefixtures("fresh_fs_registry")


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_PROPFIND(self) -> None:
        self.seen.append(dict(self.headers))
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.path.startswith("/missing"):
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")
            return
        self.send_response(207)
        self.send_header("Content-Length", str(len(MULTISTATUS)))
        self.end_headers()
        self.wfile.write(MULTISTATUS)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(tls: bool) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    if tls:
        pki = Path(require_service("BATCHKIT_TEST_CA_PEM", "the test CA")).parent
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / "host.pem", pki / "host.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    try:
        yield f"{'davs' if tls else 'dav'}://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def https_recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("X509_CERT_DIR", require_service("X509_CERT_DIR", "the test CA"))
    yield from _serve(tls=True)


@pytest.fixture
def http_recorder() -> Iterator[str]:
    yield from _serve(tls=False)


def test_token_goes_to_https_only(
    https_recorder: str, http_recorder: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BEARER_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    assert bfs.stat(f"{https_recorder}/x").size == 3
    assert Recorder.seen[-1].get("Authorization") == f"Bearer {TOKEN}"
    assert bfs.stat(f"{http_recorder}/x").size == 3
    assert "Authorization" not in Recorder.seen[-1]  # plain http: anyone on the path could read it
    with pytest.raises(FileNotFound) as info:
        bfs.stat(f"{https_recorder}/missing?authz={TOKEN}")
    assert TOKEN not in str(info.value) and "authz=***" in str(info.value)
    assert TOKEN not in caplog.text


def test_token_file_discovery_is_read_per_operation(
    https_recorder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "bt"
    token_file.write_text("first-token\n")
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token_file))
    bfs.stat(f"{https_recorder}/x")
    assert Recorder.seen[-1]["Authorization"] == "Bearer first-token"
    token_file.write_text("refreshed-token\n")  # an agent renewed it on disk
    bfs.stat(f"{https_recorder}/x")
    assert Recorder.seen[-1]["Authorization"] == "Bearer refreshed-token"
