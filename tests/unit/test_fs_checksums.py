"""Checksum computation and the servers' spellings of them (pure)."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pytest

from batchkit.errors import UnsupportedOperation
from batchkit.fs import checksums


def test_of_file_matches_zlib_and_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40000  # 10 MB: more than one read chunk
    path = tmp_path / "f"
    path.write_bytes(data)
    assert checksums.of_file(path, "adler32") == f"{zlib.adler32(data):08x}"
    assert checksums.of_file(path, "md5") == hashlib.md5(data).hexdigest()
    assert checksums.of_chunks([data[:7], data[7:]], "adler32") == f"{zlib.adler32(data):08x}"


def test_known_values(tmp_path: Path) -> None:
    path = tmp_path / "hello"
    path.write_bytes(b"hello\n")
    assert checksums.of_file(path, "adler32") == "084b021f"  # what xrootd answered (fixtures)
    assert checksums.of_file(path, "MD5") == "b1946ac92492d2347c6235b4d2611184"


@pytest.mark.parametrize(
    ("algo", "value", "expected"),
    [
        ("adler32", "084b021f", "084b021f"),
        ("adler32", "84b021f", "084b021f"),  # leading zero dropped by some HTTP servers
        ("adler32", "adler32 084b021f\x00", "084b021f"),  # XRootD query checksum
        ("adler32", "adler32:084B021F", "084b021f"),
        ("md5", "b1946ac92492d2347c6235b4d2611184", "b1946ac92492d2347c6235b4d2611184"),
        ("md5", "sZRqySSS0jR8YjW00mERhA==", "b1946ac92492d2347c6235b4d2611184"),  # RFC 3230 base64
    ],
)
def test_normalise(algo: str, value: str, expected: str) -> None:
    assert checksums.normalise(algo, value) == expected


@pytest.mark.parametrize(("algo", "value"), [("adler32", "xyz"), ("adler32", "123456789"), ("md5", "abc")])
def test_normalise_rejects(algo: str, value: str) -> None:
    with pytest.raises(ValueError):
        checksums.normalise(algo, value)


def test_unknown_algorithm() -> None:
    with pytest.raises(UnsupportedOperation, match="sha1"):
        checksums.check_algorithm("sha1")
