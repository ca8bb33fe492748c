"""batchkit.fs: one URL-addressed file layer for users, the job wrapper and environment shipping.

::

    import batchkit.fs as bfs

    bfs.copy("hits.root", "root://eos.example.org//eos/user/me/hits.root")
    results = bfs.copy_many([(f"out/{i}.root", f"davs://dcache.example.org:2880/data/{i}.root")
                             for i in range(1000)], parallel=16)
    failed = [r for r in results if not r.ok]
    bfs.stat("root://eos.example.org//eos/user/me/hits.root").size
    bfs.checksum("root://eos.example.org//eos/user/me/hits.root", "adler32")
    bfs.listdir("ftp://gridftp.example.org:2811/data/")
    bfs.remove("dav://127.0.0.1:8080/scratch", recursive=True)

Schemes: plain paths and ``file://``; ``root://``/``xroot://`` (XRootD bindings);
``dav://``/``davs://``/``http://``/``https://`` (batchkit's WebDAV client over urllib3);
``gsiftp://``/``ftp://``/``srm://`` and whatever else a loaded gfal2 plugin serves (gfal2
bindings). See :mod:`batchkit.fs.registry` to add schemes, :mod:`batchkit.fs.transfer` for the
atomicity and retry guarantees, :mod:`batchkit.fs.credentials` for tokens and proxies, and
``docs/transfer.md`` for the whole picture.
"""

from __future__ import annotations

from batchkit.fs.base import FileSystem
from batchkit.fs.info import CopyResult, FileInfo, ProgressCallback, TransferProgress
from batchkit.fs.location import Location, PathLike
from batchkit.fs.ops import checksum, exists, listdir, mkdir, remove, stat
from batchkit.fs.registry import get_filesystem, known_schemes, register_filesystem
from batchkit.fs.retry import RetryPolicy
from batchkit.fs.transfer import copy, copy_many
from batchkit.fs.url import URL, parse_url, redact

__all__ = [
    "URL",
    "CopyResult",
    "FileInfo",
    "FileSystem",
    "Location",
    "PathLike",
    "ProgressCallback",
    "RetryPolicy",
    "TransferProgress",
    "checksum",
    "copy",
    "copy_many",
    "exists",
    "get_filesystem",
    "known_schemes",
    "listdir",
    "mkdir",
    "parse_url",
    "redact",
    "register_filesystem",
    "remove",
    "stat",
]
