"""Failures against real servers: bad URLs, refused access, servers killed mid-transfer,
retries that succeed once a server is back, failover across bases, untrusted TLS."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("fs_helpers")  # it is loaded as a plugin too (pytest_plugins below)
from fs_helpers import Endpoint, PrivateServer, free_port, make_endpoint, temps_under, write_random  # noqa: E402

import batchkit.fs as bfs  # noqa: E402
from batchkit.errors import (  # noqa: E402
    FileNotFound,
    InvalidURL,
    PermissionDenied,
    TransferError,
    TransientTransferError,
    UnsupportedScheme,
)
from batchkit.fs import RetryPolicy, TransferProgress  # noqa: E402

FAST = RetryPolicy(attempts=2, backoff=0.1, timeout=10)

pytest_plugins = ["fs_helpers"]
pytestmark = pytest.mark.usefixtures("fresh_fs_registry")


# ------------------------------------------------------------------------------ bad URLs
def test_unknown_scheme(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UnsupportedScheme, match="nosuch"):
        bfs.copy(tmp_path / "f", "nosuch://host/x")
    with pytest.raises(UnsupportedScheme, match="truncates"):
        bfs.stat("sftp://127.0.0.1:22/x")


@pytest.mark.parametrize("url", ["root:///data/x", "davs:///x", "dav://:8080/x", "ftp:///tmp/x"])
def test_missing_host(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidURL, match="missing host"):
        bfs.stat(url)
    results = bfs.copy_many([(tmp_path / "absent", url)])
    assert isinstance(results[0].error, InvalidURL)


def test_unresolvable_host_is_not_retried() -> None:
    started = time.monotonic()
    for url in ("root://no-such-host.invalid//x", "davs://no-such-host.invalid/x"):
        with pytest.raises(TransferError) as info:
            bfs.stat(url, retry=RetryPolicy(attempts=3, backoff=5))
        assert not isinstance(info.value, TransientTransferError)
        assert "no-such-host.invalid" in str(info.value) and "resolve" in str(info.value)
    assert time.monotonic() - started < 5  # no backoff sleeps happened


def test_refused_connection_is_transient_and_retried() -> None:
    port = free_port()  # nothing listens there
    for url in (f"root://localhost:{port}//x", f"dav://127.0.0.1:{port}/x"):
        started = time.monotonic()
        with pytest.raises(TransientTransferError) as info:
            bfs.stat(url, retry=RetryPolicy(attempts=3, backoff=0.2))
        assert "gave up after 3 attempts" in str(info.value)
        assert time.monotonic() - started >= 0.6  # slept 0.2 + 0.4 between the rounds


# ------------------------------------------------------------------------------ permissions
def test_permission_denied_xrootd(root_endpoint: Endpoint, tmp_path: Path) -> None:
    locked = root_endpoint.disk / "locked"
    locked.mkdir(parents=True)
    os.chmod(locked, 0o755)  # owned by root: the xrootd user may read, not write
    (tmp_path / "f").write_text("x")
    with pytest.raises(PermissionDenied) as info:
        bfs.copy(tmp_path / "f", root_endpoint.join("locked", "f"))
    assert "locked" in str(info.value)
    assert os.listdir(locked) == []


def test_permission_denied_gridftp(tmp_path: Path) -> None:
    endpoint = make_endpoint("ftp")
    try:
        locked = endpoint.disk / "locked"
        locked.mkdir(parents=True)
        os.chmod(endpoint.disk, 0o777)
        os.chmod(locked, 0o755)  # root's; the server runs anonymous sessions as nobody
        (tmp_path / "f").write_text("x")
        with pytest.raises(PermissionDenied):
            bfs.copy(tmp_path / "f", endpoint.join("locked", "f"), retry=FAST)
        assert os.listdir(locked) == []
    finally:
        shutil.rmtree(endpoint.disk, ignore_errors=True)


# ------------------------------------------------------------------------------ servers killed mid-transfer
def _killer(server: PrivateServer, total: int) -> tuple[list[bool], object]:
    killed = [False]

    def progress(report: TransferProgress) -> None:
        if not killed[0] and 0 < report.bytes_done < total:
            server.kill()
            killed[0] = True

    return killed, progress


@pytest.mark.parametrize("server_kind", ["xrootd", "nginx"])
def test_server_killed_during_upload(server_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server: PrivateServer = request.getfixturevalue(f"private_{server_kind}")
    size = 512 * 1024 * 1024
    source = tmp_path / "big.dat"
    with open(source, "wb") as handle:
        handle.truncate(size)
    killed, progress = _killer(server, size)
    target = f"{server.url}//upload/big.dat" if server_kind == "xrootd" else f"{server.url}/upload/big.dat"
    with pytest.raises(TransientTransferError) as info:
        bfs.copy(source, target, retry=FAST, progress=progress)  # type: ignore[arg-type]
    assert killed[0], "the copy finished before the server could be killed"
    assert "gave up after 2 attempts" in str(info.value)
    assert not (server.data / "upload" / "big.dat").exists()  # no partial file under the real name
    # a temporary may stay behind on the dead server (nobody could delete it) but never the real name
    assert (
        all(p.name.startswith(".big.dat.bkpart-") for p in (server.data / "upload").glob("*"))
        or not (server.data / "upload").exists()
    )


@pytest.mark.parametrize("server_kind", ["xrootd", "nginx"])
def test_server_killed_during_download(server_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server: PrivateServer = request.getfixturevalue(f"private_{server_kind}")
    size = 512 * 1024 * 1024
    (server.data / "dl").mkdir(parents=True)
    with open(server.data / "dl" / "big.dat", "wb") as handle:
        handle.truncate(size)
    if server_kind == "xrootd":
        shutil.chown(server.data / "dl" / "big.dat", "xrootd", "xrootd")
    killed, progress = _killer(server, size)
    source = f"{server.url}//dl/big.dat" if server_kind == "xrootd" else f"{server.url}/dl/big.dat"
    target = tmp_path / "local" / "big.dat"
    with pytest.raises(TransientTransferError):
        bfs.copy(source, target, retry=FAST, progress=progress)  # type: ignore[arg-type]
    assert killed[0]
    assert not target.exists()
    assert temps_under(tmp_path) == []  # the local temporary is always removed


def test_retry_succeeds_when_the_server_comes_back(private_xrootd: PrivateServer, tmp_path: Path) -> None:
    data = write_random(tmp_path / "f", 100_000)
    private_xrootd.kill()
    restart = threading.Timer(0.5, private_xrootd.start_again)
    restart.start()
    try:
        result = bfs.copy(tmp_path / "f", f"{private_xrootd.url}//back/f", retry=RetryPolicy(attempts=6, backoff=0.4))
    finally:
        restart.join()
    assert result.ok and result.attempts > 1
    assert (private_xrootd.data / "back" / "f").read_bytes() == data


def test_copy_many_with_a_dead_server_reports_each_pair(
    private_xrootd: PrivateServer, dav_endpoint: Endpoint, tmp_path: Path
) -> None:
    for i in range(3):
        write_random(tmp_path / f"f{i}", 1000)
    private_xrootd.kill()
    pairs = [(tmp_path / f"f{i}", f"{private_xrootd.url}//x/f{i}") for i in range(3)]
    pairs += [(tmp_path / f"f{i}", dav_endpoint.join(f"f{i}")) for i in range(3)]
    results = bfs.copy_many(pairs, retry=FAST)  # type: ignore[arg-type]
    assert [r.ok for r in results] == [False, False, False, True, True, True]
    assert all(isinstance(r.error, TransientTransferError) for r in results[:3])
    assert all(r.attempts == 2 for r in results[:3])
    assert sorted(os.listdir(dav_endpoint.disk)) == ["f0", "f1", "f2"]


# ------------------------------------------------------------------------------ failover across bases
def test_location_fails_over_to_the_next_base(dav_endpoint: Endpoint, root_endpoint: Endpoint, tmp_path: Path) -> None:
    dead = free_port()
    store = bfs.Location([f"dav://127.0.0.1:{dead}/nowhere", dav_endpoint.url])
    data = write_random(tmp_path / "f", 5000)
    result = bfs.copy(tmp_path / "f", store / "sub" / "f", retry=FAST)
    assert result.ok and result.dst == dav_endpoint.join("sub", "f")
    assert (dav_endpoint.disk / "sub" / "f").read_bytes() == data
    assert bfs.stat(store / "sub" / "f", retry=FAST).size == 5000
    assert [e.name for e in bfs.listdir(store / "sub", retry=FAST)] == ["f"]
    # a permanent answer from the first live base is believed, not failed over
    mixed = bfs.Location([root_endpoint.url, dav_endpoint.url])
    with pytest.raises(FileNotFound):
        bfs.stat(mixed / "sub" / "f", retry=FAST)  # exists on the dav base only
    # bulk: every pair fails over on its own
    pairs = [(tmp_path / "f", store / f"bulk{i}") for i in range(5)]
    assert all(r.ok for r in bfs.copy_many(pairs, retry=FAST))
    assert sorted(p.name for p in dav_endpoint.disk.glob("bulk*")) == [f"bulk{i}" for i in range(5)]


def test_xrootd_failover(root_endpoint: Endpoint, tmp_path: Path) -> None:
    store = bfs.Location([f"root://localhost:{free_port()}//data", root_endpoint.url])
    data = write_random(tmp_path / "f", 5000)
    bfs.copy(tmp_path / "f", store / "f", retry=FAST)
    assert (root_endpoint.disk / "f").read_bytes() == data


# ------------------------------------------------------------------------------ TLS
def test_untrusted_server_certificate_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = make_endpoint("davs")
    monkeypatch.setenv("X509_CERT_DIR", str(tmp_path))  # an empty CA directory: the test CA is not trusted
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    with pytest.raises(TransferError) as info:
        bfs.stat(endpoint.url, retry=RetryPolicy(attempts=3, backoff=5))
    assert not isinstance(info.value, TransientTransferError)
    assert "certificate" in str(info.value).lower()
