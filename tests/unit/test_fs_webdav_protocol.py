"""PROPFIND and Digest parsing against answers recorded from nginx and XrdHttp (tests/fixtures/fs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit.errors import TransferError
from batchkit.fs.webdav_protocol import http_url, parse_digest, parse_multistatus

FS_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fs"


@pytest.mark.parametrize("server", ["nginx", "xrdhttp"])
def test_depth1_listing(server: str) -> None:
    entries = parse_multistatus((FS_FIXTURES / f"propfind-{server}-depth1.xml").read_bytes())
    by_path = {e.path: e for e in entries}
    assert set(by_path) == {"/fixture-dir", "/fixture-dir/hello world.txt", "/fixture-dir/sub"}
    assert by_path["/fixture-dir"].is_dir and by_path["/fixture-dir/sub"].is_dir
    hello = by_path["/fixture-dir/hello world.txt"]
    assert not hello.is_dir and hello.size == 6
    assert hello.mtime is not None and hello.mtime > 1.7e9
    assert by_path["/fixture-dir/sub"].size == 0  # directories report 0, not the server's 4096


@pytest.mark.parametrize("server", ["nginx", "xrdhttp"])
def test_depth0(server: str) -> None:
    (entry,) = parse_multistatus((FS_FIXTURES / f"propfind-{server}-depth0.xml").read_bytes())
    assert entry.path == "/fixture-dir" and entry.is_dir


def test_full_url_hrefs_and_failed_propstats() -> None:
    body = b"""<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">
    <d:response><d:href>https://h:2880/pnfs/a%20b.root</d:href>
      <d:propstat><d:prop><d:getcontentlength>42</d:getcontentlength><d:resourcetype/></d:prop>
      <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
      <d:propstat><d:prop><d:getlastmodified/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
    </d:response></d:multistatus>"""
    (entry,) = parse_multistatus(body)
    assert entry.path == "/pnfs/a b.root" and entry.size == 42 and entry.mtime is None and not entry.is_dir


def test_garbage_is_an_error() -> None:
    with pytest.raises(TransferError, match="unreadable PROPFIND"):
        parse_multistatus(b"<html>not xml", "dav://h/x")


def _headers(server: str, case: str) -> dict[str, str]:
    raw = json.loads((FS_FIXTURES / f"headers-{server}.json").read_text())[case]
    lines = raw.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}


def test_digest_from_xrdhttp() -> None:
    assert parse_digest(_headers("xrdhttp", "adler32").get("digest"), "adler32") == "084b021f"
    # asked for md5, XrdHttp (configured for adler32 only) still answers adler32: no md5 value
    assert parse_digest(_headers("xrdhttp", "md5").get("digest"), "md5") is None


def test_no_digest_from_nginx() -> None:
    assert parse_digest(_headers("nginx", "adler32").get("digest"), "adler32") is None


def test_digest_spellings() -> None:
    assert parse_digest("md5=sZRqySSS0jR8YjW00mERhA==, adler32=084b021f", "md5") == "b1946ac92492d2347c6235b4d2611184"
    assert parse_digest("ADLER32=084B021F", "adler32") == "084b021f"
    assert parse_digest("md5=not-base64!", "md5") is None


def test_http_url() -> None:
    assert http_url("davs", "h:8443", "/a%20b") == "https://h:8443/a%20b"
    assert http_url("dav", "h", "/x", "authz=t") == "http://h/x?authz=t"
    assert http_url("https", "h", "/x") == "https://h/x"
