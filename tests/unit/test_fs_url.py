"""URL parsing, joining and redaction (pure)."""

from __future__ import annotations

import os

import pytest

from batchkit.errors import InvalidURL
from batchkit.fs.url import URL, parse_url, redact


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "path"),
    [
        ("root://eos.cern.ch//eos/user/x.root", "root", "eos.cern.ch", None, "/eos/user/x.root"),
        ("root://eos.cern.ch:1094/eos/user/x.root", "root", "eos.cern.ch", 1094, "/eos/user/x.root"),
        ("ROOT://Host//a", "root", "Host", None, "/a"),
        ("davs://dcache.example.org:2880/pnfs/a%20b.txt", "davs", "dcache.example.org", 2880, "/pnfs/a b.txt"),
        ("https://[::1]:8443/x", "https", "::1", 8443, "/x"),
        ("gsiftp://se.example.org:2811/data/f", "gsiftp", "se.example.org", 2811, "/data/f"),
        ("file:///tmp/x", "file", "", None, "/tmp/x"),
        ("file://localhost/tmp/x", "file", "", None, "/tmp/x"),
        ("/tmp/a/../b//c/", "file", "", None, "/tmp/b/c"),
    ],
)
def test_parse(text: str, scheme: str, host: str, port: int | None, path: str) -> None:
    url = parse_url(text)
    assert (url.scheme, url.host, url.port, url.path) == (scheme, host, port, path)


def test_relative_path_is_made_absolute() -> None:
    assert parse_url("data/x.root").path == os.path.join(os.getcwd(), "data/x.root")
    assert parse_url("data/x.root").is_local


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("root:///eos/x", "missing host"),
        ("davs:///x", "missing host"),
        ("file://otherhost/x", "remote host"),
        ("https://host:notaport/x", "port"),
        ("root://host//x#frag", "fragment"),
        ("", "empty"),
        ("root:/host/x", "malformed"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidURL, match=message):
        parse_url(text)


def test_str_round_trips() -> None:
    for text in (
        "root://eos.cern.ch//eos/user/x.root",
        "davs://h:2880/a%20b/c.txt",
        "root://h:1094//p?authz=abc",
        "file:///tmp/x",
    ):
        assert str(parse_url(text)) == text
    assert str(parse_url("root://h/p")) == "root://h//p"


def test_join_parent_name() -> None:
    url = parse_url("root://h//data/run")
    child = url.join("a/b", "c.root")
    assert str(child) == "root://h//data/run/a/b/c.root"
    assert child.name == "c.root"
    assert child.parent.path == "/data/run/a/b"
    assert url.with_name("other").path == "/data/other"
    with pytest.raises(InvalidURL):
        url.join("../escape")
    with pytest.raises(InvalidURL):
        url.with_name("a/b")


def test_join_drops_query() -> None:
    url = parse_url("davs://h/dir?authz=secret")
    assert url.join("x").query == ""
    assert url.server == "davs://h"


def test_redact_hides_passwords_and_tokens() -> None:
    assert redact("davs://user:pw@host/p?authz=abc&x=1") == "davs://user:***@host/p?authz=***&x=1"
    assert redact("https://h/p?X-Amz-Signature=s&access_token=t") == "https://h/p?X-Amz-Signature=***&access_token=***"
    assert redact("root://h//p") == "root://h//p"
    assert "secret" not in parse_url("root://h//p?authz=secret").display()


def test_local_path_only_for_files() -> None:
    assert URL("file", "", "/x").local_path() == "/x"
    with pytest.raises(InvalidURL):
        parse_url("root://h//x").local_path()


def test_redact_text_in_log_lines() -> None:
    from batchkit.fs.url import redact_text

    line = 'https://h:443 "PROPFIND /missing?authz=eyJ.abc.def&n=1 HTTP/1.1" 404 0 davs://u:pw@h/x'
    assert redact_text(line) == 'https://h:443 "PROPFIND /missing?authz=***&n=1 HTTP/1.1" 404 0 davs://u:***@h/x'
