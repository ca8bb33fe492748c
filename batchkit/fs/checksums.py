"""Checksums as the storage world spells them: adler32 (8 hex digits) and md5 (32 hex digits).

Servers answer in several spellings -- XRootD ``b"adler32 0a1b2c3d\\x00"``, HTTP
``Digest: adler32=a1b2c3d`` (leading zeros may be missing), ``Digest: md5=<base64>``
(RFC 3230), gfal2 ``"0a1b2c3d"`` -- and :func:`normalise` turns each into one canonical form
so comparing two of them is ``==``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import zlib
from collections.abc import Iterable

from batchkit.errors import UnsupportedOperation

ALGORITHMS = ("adler32", "md5")

_CHUNK = 4 * 1024 * 1024


def check_algorithm(name: str) -> str:
    """``name`` in canonical lower case; raise for algorithms batchkit cannot compute locally."""
    algo = name.strip().lower()
    if algo not in ALGORITHMS:
        raise UnsupportedOperation(f"unknown checksum algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
    return algo


class RunningChecksum:
    """A checksum fed chunk by chunk (to checksum data while it streams past)."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = check_algorithm(algorithm)
        self._adler = 1
        self._md5 = hashlib.md5(usedforsecurity=False) if self.algorithm == "md5" else None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._md5 is not None:
            self._md5.update(data)
        else:
            self._adler = zlib.adler32(data, self._adler)

    def hexdigest(self) -> str:
        if self._md5 is not None:
            return self._md5.hexdigest()
        return f"{self._adler & 0xFFFFFFFF:08x}"


def of_chunks(chunks: Iterable[bytes], algorithm: str) -> str:
    running = RunningChecksum(algorithm)
    for chunk in chunks:
        running.update(chunk)
    return running.hexdigest()


def of_file(path: str | os.PathLike[str], algorithm: str) -> str:
    """The checksum of a local file, read in 4 MiB chunks (zlib/hashlib release the GIL)."""
    running = RunningChecksum(algorithm)
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            running.update(chunk)
    return running.hexdigest()


def normalise(algorithm: str, value: str) -> str:
    """``value`` as canonical lower-case hex of ``algorithm`` (zero-padded; base64 md5 decoded).

    Raises ValueError when ``value`` is not a checksum of that algorithm.
    """
    algo = check_algorithm(algorithm)
    text = value.strip().strip("\x00").strip()
    if ":" in text and text.split(":", 1)[0].lower() == algo:  # "adler32:0a1b2c3d"
        text = text.split(":", 1)[1]
    if " " in text and text.split(" ", 1)[0].lower() == algo:  # XRootD "adler32 0a1b2c3d"
        text = text.split(" ", 1)[1].strip()
    width = 8 if algo == "adler32" else 32
    if algo == "md5" and len(text) != 32:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"not an md5 checksum: {value!r}") from None
        if len(raw) != 16:
            raise ValueError(f"not an md5 checksum: {value!r}")
        return raw.hex()
    try:
        number = int(text, 16)
    except ValueError:
        raise ValueError(f"not an {algo} checksum: {value!r}") from None
    if len(text) > width or number >= 16**width:
        raise ValueError(f"not an {algo} checksum: {value!r}")
    return f"{number:0{width}x}"
