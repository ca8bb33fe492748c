"""Error classification against failures recorded from the real servers (tests/fixtures/fs)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from batchkit.errors import (
    FileExists,
    FileNotFound,
    PermissionDenied,
    TransferError,
    TransientTransferError,
    UnsupportedOperation,
)
from batchkit.fs import classify

FS_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fs"


def _load(name: str) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((FS_FIXTURES / name).read_text())
    return data


@pytest.mark.parametrize(
    ("case", "expected", "words"),
    [
        ("stat-missing", FileNotFound, "no such file"),
        ("mv-missing", FileNotFound, "Unable to rename"),
        ("rmdir-nonempty", TransferError, "not empty"),
        ("checksum-directory", TransferError, "is a directory"),
        ("connection-refused", TransientTransferError, "Connection error"),
        ("host-unknown", TransferError, "does not resolve"),
        ("copy-missing-source", FileNotFound, "no such file"),
        ("copy-server-killed-mid-upload", TransientTransferError, "Initialization error"),
    ],
)
def test_xrootd_statuses(case: str, expected: type, words: str) -> None:
    status = _load("xrootd-statuses.json")[case]
    error = classify.xrootd_status(int(status["code"]), int(status["errno"]), str(status["message"]), "root://h//x")  # type: ignore[call-overload]
    assert type(error) is expected
    assert words in str(error)
    assert str(error).startswith("root://h//x: ")
    assert "[ERROR]" not in str(error) and "Server responded" not in str(error)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("gridftp-stat-missing", FileNotFound),
        ("gridftp-rmdir-nonempty", TransferError),  # ECOMM, but the server said "Directory not empty"
        ("gridftp-connection-refused", TransientTransferError),
        ("http-stat-missing", FileNotFound),
        ("http-checksum-unsupported", UnsupportedOperation),
        ("http-connection-refused", TransientTransferError),
        ("unknown-scheme", UnsupportedOperation),
    ],
)
def test_gfal2_errors(case: str, expected: type) -> None:
    err = _load("gfal2-errors.json")[case]
    error = classify.by_errno(int(err["code"]), str(err["message"]), "ftp://h/x")  # type: ignore[call-overload]
    assert type(error) is expected


def _raw_http(name: str, case: str) -> tuple[int, str, str]:
    raw = str(_load(name)[case])
    head, _, body = raw.partition("\r\n\r\n")
    status_line = head.split("\r\n", 1)[0]
    _, code, reason = status_line.split(" ", 2)
    return int(code), reason, body


def test_http_recorded_answers() -> None:
    code, reason, body = _raw_http("headers-xrdhttp.json", "missing")
    assert isinstance(classify.http_status(code, reason, "davs://h/x", body), FileNotFound)
    code, reason, body = _raw_http("headers-xrdhttp.json", "delete-nonempty")
    error = classify.http_status(code, reason, "davs://h/x", body)
    assert type(error) is TransferError and "not empty" in str(error)  # a 500 that must not be retried
    code, reason, body = _raw_http("headers-nginx.json", "missing")
    error = classify.http_status(code, reason, "dav://h/x", body)
    assert isinstance(error, FileNotFound) and "<" not in str(error)  # HTML stripped


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, PermissionDenied),
        (401, PermissionDenied),
        (404, FileNotFound),
        (412, FileExists),
        (429, TransientTransferError),
        (503, TransientTransferError),
        (502, TransientTransferError),
        (501, UnsupportedOperation),
        (400, TransferError),
    ],
)
def test_http_status_codes(status: int, expected: type) -> None:
    assert type(classify.http_status(status, "", "https://h/x")) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOENT, FileNotFound),
        (errno.EACCES, PermissionDenied),
        (errno.EEXIST, FileExists),
        (errno.ETIMEDOUT, TransientTransferError),
        (errno.ECONNREFUSED, TransientTransferError),
        (errno.ENOSPC, TransferError),
    ],
)
def test_errno(code: int, expected: type) -> None:
    assert type(classify.by_errno(code, "x", "/p")) is expected


def test_os_error_keeps_the_path() -> None:
    error = classify.os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "/p"), "/p")
    assert isinstance(error, FileNotFound) and isinstance(error, FileNotFoundError)
    assert error.url == "/p"
