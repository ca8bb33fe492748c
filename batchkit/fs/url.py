"""URLs of the transfer layer: parsing, joining and redaction, as pure functions.

Every public function of :mod:`batchkit.fs` accepts a plain path (``data/x.root``), a
``file://`` URL or a remote URL (``root://host//path``, ``davs://host:8443/path``, ...) and
turns it into a :class:`URL` first, so each protocol module sees one shape:

* ``scheme`` is lower case; plain paths become ``file`` with an absolute ``path``;
* ``path`` always starts with ``/`` and is *decoded* text (``%20`` is a space) for the
  percent-encoded schemes (http, https, dav, davs, s3); XRootD's ``root://host//abs/path``
  and ``root://host/abs/path`` both give ``/abs/path``;
* remote schemes must have a host (:class:`~batchkit.errors.InvalidURL` otherwise).

:func:`redact` hides passwords and token-like query values so URLs can be logged and put into
error messages: nothing in :mod:`batchkit.fs` prints a URL without it.
"""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import quote, unquote, urlsplit

import attrs

from batchkit.errors import InvalidURL

#: Schemes whose paths are percent-encoded on the wire.
ENCODED_SCHEMES = frozenset({"http", "https", "dav", "davs", "s3", "s3s"})

#: Schemes addressing files on this machine.
LOCAL_SCHEMES = frozenset({"file"})

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SECRET_KEY_RE = re.compile(r"(authz|token|sig|signature|credential|password|passwd|secret|key)", re.IGNORECASE)
_USERINFO_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@?#]*)@")


_MALFORMED_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def _local_path(text: str) -> str:
    """An absolute, normalised local path (``abspath`` normalises; ``//x`` becomes ``/x``)."""
    path = os.path.abspath(text)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _normalise_path(path: str) -> str:
    """``path`` made absolute and free of ``.``/``..``/duplicate slashes (trailing ``/`` dropped)."""
    if not path:
        return "/"
    norm = posixpath.normpath("/" + path.lstrip("/"))
    return "/" if norm in ("/", "//") else norm


@attrs.frozen
class URL:
    """One parsed location. Build it with :func:`parse_url`, never by hand from user text.

    ``netloc`` is kept verbatim (``user@host:port``) so nothing the user wrote is lost;
    ``host`` and ``port`` are the parsed parts of it.
    """

    scheme: str
    netloc: str
    path: str
    query: str = ""

    @property
    def is_local(self) -> bool:
        return self.scheme in LOCAL_SCHEMES

    @property
    def host(self) -> str:
        hostport = self.netloc.rpartition("@")[2]
        if hostport.startswith("["):  # IPv6 literal
            return hostport[1:].partition("]")[0]
        return hostport.partition(":")[0]

    @property
    def port(self) -> int | None:
        hostport = self.netloc.rpartition("@")[2]
        if hostport.startswith("["):
            rest = hostport.partition("]")[2]
            return int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        _, sep, port = hostport.partition(":")
        return int(port) if sep and port.isdigit() else None

    @property
    def name(self) -> str:
        """The last path component ('' for the root)."""
        return posixpath.basename(self.path)

    @property
    def parent(self) -> URL:
        return attrs.evolve(self, path=posixpath.dirname(self.path) or "/", query="")

    @property
    def server(self) -> str:
        """``scheme://netloc``: what identifies a connection (pools and caches key on it)."""
        return f"{self.scheme}://{self.netloc}"

    def join(self, *parts: str) -> URL:
        """This URL with ``parts`` (relative, ``/``-separated) appended to the path.

        ``..`` may not climb above this URL's path; the query is dropped.
        """
        path = self.path
        for part in parts:
            for piece in part.split("/"):
                if piece in ("", "."):
                    continue
                if piece == "..":
                    raise InvalidURL(f"'..' is not allowed in {part!r}", redact(str(self)))
                path = posixpath.join(path, piece)
        return attrs.evolve(self, path=path, query="")

    def with_path(self, path: str) -> URL:
        return attrs.evolve(self, path=_normalise_path(path), query=self.query)

    def with_name(self, name: str) -> URL:
        """A sibling of this URL (same directory, other name); the query is dropped."""
        if not name or "/" in name:
            raise InvalidURL(f"bad file name {name!r}", redact(str(self)))
        return attrs.evolve(self, path=posixpath.join(posixpath.dirname(self.path), name), query="")

    def local_path(self) -> str:
        """The path on this machine of a ``file`` URL."""
        if not self.is_local:
            raise InvalidURL("not a local file URL", redact(str(self)))
        return self.path

    def encoded_path(self) -> str:
        """The path as it goes on the wire: percent-encoded for http-like schemes."""
        if self.scheme in ENCODED_SCHEMES:
            return quote(self.path, safe="/~!$&'()*+,;=:@")
        return self.path

    def __str__(self) -> str:
        if self.is_local:
            return "file://" + self.path
        path = self.encoded_path()
        if self.scheme in ("root", "roots", "xroot", "xroots"):
            path = "/" + path  # root://host//abs/path: the XRootD spelling of an absolute path
        return f"{self.scheme}://{self.netloc}{path}" + (f"?{self.query}" if self.query else "")

    def display(self) -> str:
        """What to show a user: plain paths for local files, redacted URLs otherwise."""
        return self.path if self.is_local else redact(str(self))


def parse_url(value: str | os.PathLike[str] | URL) -> URL:
    """``value`` as a :class:`URL`; raises :class:`~batchkit.errors.InvalidURL` when it cannot be one.

    Plain paths are made absolute against the current directory (``~`` is not expanded:
    the shell does that). ``file://host/...`` is refused unless the host is ``localhost``.
    """
    if isinstance(value, URL):
        return value
    text = os.fspath(value)
    if not isinstance(text, str):
        raise InvalidURL(f"expected a text path or URL, got {type(value).__name__}")
    if not text:
        raise InvalidURL("empty path")
    if "\x00" in text:
        raise InvalidURL("NUL character in path", redact(text))
    match = _SCHEME_RE.match(text)
    if match is None:
        if text.startswith("file:"):
            return URL("file", "", _local_path(text[5:]))
        if ":/" in text and _MALFORMED_RE.match(text) and not os.path.exists(text):
            raise InvalidURL("malformed URL (expected scheme://host/path)", redact(text))
        return URL("file", "", _local_path(text))
    scheme = match.group(1).lower()
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidURL(f"cannot parse URL: {exc}", redact(text)) from None
    if parts.fragment:
        raise InvalidURL("URL fragments ('#...') are not allowed", redact(text))
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidURL("file:// URLs must not name a remote host", redact(text))
        return URL("file", "", _normalise_path(unquote(parts.path)))
    if not parts.hostname:
        raise InvalidURL("missing host", redact(text))
    path = unquote(parts.path) if scheme in ENCODED_SCHEMES else parts.path
    return URL(scheme, parts.netloc, _normalise_path(path), parts.query)


def redact(text: str) -> str:
    """``text`` (a URL) with its password and token-like query values replaced by ``***``.

    >>> redact("davs://u:pw@host/p?authz=abc&x=1")
    'davs://u:***@host/p?authz=***&x=1'
    """
    text = _USERINFO_RE.sub(lambda m: m.group(1) + _hide_password(m.group(2)) + "@", text, count=1)
    base, sep, query = text.partition("?")
    if not sep:
        return text
    fields = []
    for field in query.split("&"):
        key, eq, _value = field.partition("=")
        fields.append(f"{key}=***" if eq and _SECRET_KEY_RE.search(key) else field)
    return base + "?" + "&".join(fields)


_SECRET_PARAM_RE = re.compile(
    r"([?&][^=&\s\"']*(?:authz|token|sig|signature|credential|password|passwd|secret|key)[^=&\s\"']*=)[^&\s\"']+",
    re.IGNORECASE,
)
_TEXT_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]+:)[^/@\s]+@")


def redact_text(text: str) -> str:
    """Free text (a log line, a library's error) with URL passwords and token-like query values hidden."""
    return _TEXT_USERINFO_RE.sub(r"\1***@", _SECRET_PARAM_RE.sub(r"\1***", text))


def _hide_password(userinfo: str) -> str:
    user, sep, _password = userinfo.partition(":")
    return f"{user}:***" if sep else userinfo
