"""Real bytes both ways through every scheme, checked on the server's disk and by checksum."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

pytest.register_assert_rewrite("fs_helpers")  # it is loaded as a plugin too (pytest_plugins below)
from fs_helpers import Endpoint, temps_under, write_random  # noqa: E402

import batchkit.fs as bfs  # noqa: E402
from batchkit.errors import FileExists, FileNotFound, TransferError  # noqa: E402

pytest_plugins = ["fs_helpers"]
pytestmark = pytest.mark.usefixtures("fresh_fs_registry")


def test_upload_download_stat_list_remove(endpoint: Endpoint, tmp_path: Path) -> None:
    data = write_random(tmp_path / "in.bin", 3 * 1024 * 1024 + 17)
    adler = f"{zlib.adler32(data):08x}"
    remote = endpoint.join("sub", "dir", "file.bin")

    up = bfs.copy(tmp_path / "in.bin", remote)
    assert up.ok and up.size == len(data)
    # what the server really stored, read from its own disk
    assert (endpoint.disk / "sub" / "dir" / "file.bin").read_bytes() == data
    if endpoint.adler32:
        assert up.checksum == f"adler32:{adler}"  # verified against the server's own adler32
    info = bfs.stat(remote)
    assert (info.size, info.is_dir, info.name) == (len(data), False, "file.bin")
    assert bfs.stat(endpoint.join("sub")).is_dir
    assert [e.name for e in bfs.listdir(endpoint.join("sub", "dir"))] == ["file.bin"]
    assert bfs.checksum(remote, "adler32") == adler
    assert bfs.exists(remote)

    down = bfs.copy(remote, tmp_path / "out" / "file.bin")
    assert (tmp_path / "out" / "file.bin").read_bytes() == data
    assert down.size == len(data)

    bfs.remove(remote)
    assert not bfs.exists(remote)
    assert not (endpoint.disk / "sub" / "dir" / "file.bin").exists()
    bfs.remove(endpoint.join("sub"), recursive=True)
    assert not (endpoint.disk / "sub").exists()
    assert temps_under(endpoint.disk) == [] and temps_under(tmp_path) == []


def test_overwrite_replaces_and_no_clobber_refuses(endpoint: Endpoint, tmp_path: Path) -> None:
    remote = endpoint.join("f.txt")
    (tmp_path / "a").write_bytes(b"first version, rather long\n")
    (tmp_path / "b").write_bytes(b"second\n")
    bfs.copy(tmp_path / "a", remote)
    bfs.copy(tmp_path / "b", remote)
    assert (endpoint.disk / "f.txt").read_bytes() == b"second\n"
    with pytest.raises(FileExists):
        bfs.copy(tmp_path / "a", remote, overwrite=False)
    assert (endpoint.disk / "f.txt").read_bytes() == b"second\n"
    assert temps_under(endpoint.disk) == []


def test_missing_remote_file(endpoint: Endpoint, tmp_path: Path) -> None:
    missing = endpoint.join("no", "such", "file")
    with pytest.raises(FileNotFound) as info:
        bfs.stat(missing)
    assert "no/such/file" in str(info.value)
    with pytest.raises(FileNotFound):
        bfs.copy(missing, tmp_path / "x")
    assert not (tmp_path / "x").exists() and temps_under(tmp_path) == []
    assert not bfs.exists(missing)
    with pytest.raises(FileNotFound):
        bfs.remove(missing)
    bfs.remove(missing, missing_ok=True)


def test_remove_non_empty_directory_needs_recursive(endpoint: Endpoint, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    bfs.copy(tmp_path / "f", endpoint.join("d", "f"))
    with pytest.raises(TransferError, match="recursive"):
        bfs.remove(endpoint.join("d"))
    assert (endpoint.disk / "d" / "f").exists()  # nothing was deleted
    bfs.remove(endpoint.join("d"), recursive=True)
    assert not (endpoint.disk / "d").exists()


def test_mkdir_with_parents_and_existing(endpoint: Endpoint) -> None:
    bfs.mkdir(endpoint.join("x", "y", "z"))
    bfs.mkdir(endpoint.join("x", "y", "z"))
    assert (endpoint.disk / "x" / "y" / "z").is_dir()


def test_empty_file(endpoint: Endpoint, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    bfs.copy(tmp_path / "empty", endpoint.join("empty"))
    assert (endpoint.disk / "empty").read_bytes() == b""
    bfs.copy(endpoint.join("empty"), tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == b""


@pytest.mark.parametrize("endpoint", ["root", "ftp"], indirect=True)
def test_md5_on_request(endpoint: Endpoint, tmp_path: Path) -> None:
    import hashlib

    data = write_random(tmp_path / "f", 1000)
    remote = endpoint.join("f")
    if endpoint.name == "root":  # xrootd is configured for adler32 only: md5 must be refused
        from batchkit.errors import UnsupportedOperation

        with pytest.raises(UnsupportedOperation, match="md5"):
            bfs.copy(tmp_path / "f", remote, checksum="md5")
        assert not (endpoint.disk / "f").exists() and temps_under(endpoint.disk) == []
    else:
        result = bfs.copy(tmp_path / "f", remote, checksum="md5")
        assert result.checksum == "md5:" + hashlib.md5(data).hexdigest()


def test_local_to_remote_to_remote(tmp_path: Path) -> None:
    """remote -> remote (root:// -> dav://) is relayed through a local temporary file."""
    from fs_helpers import make_endpoint

    src, dst = make_endpoint("root"), make_endpoint("dav")
    try:
        data = write_random(tmp_path / "f", 200_000)
        bfs.copy(tmp_path / "f", src.join("f"))
        result = bfs.copy(src.join("f"), dst.join("copied", "f"))
        assert result.ok and (dst.disk / "copied" / "f").read_bytes() == data
    finally:
        import shutil

        shutil.rmtree(src.disk, ignore_errors=True)
        shutil.rmtree(dst.disk, ignore_errors=True)
    assert os.listdir(tmp_path) == ["f"]
