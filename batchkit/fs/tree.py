"""Whole directory trees: walk one, copy one (``batchkit cp -r``).

A tree copy is one :func:`~batchkit.fs.copy_many` call over every file below the source,
so it gets the protocol's bulk path, per-file results and retries; the destination's
directories (empty ones included) are created first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from batchkit.fs.info import CopyResult, ProgressCallback
from batchkit.fs.ops import filesystem_for
from batchkit.fs.retry import RetryPolicy, default_policy, with_failover
from batchkit.fs.transfer import copy_many
from batchkit.fs.url import URL, parse_url


def walk(top: URL) -> Iterator[tuple[str, list[str], list[str]]]:
    """Like :func:`os.walk` for any URL: ``(relative dir, [subdirs], [files])``, top first.

    Relative directories use ``/`` and are ``""`` for ``top`` itself.
    """
    fs = filesystem_for(top)
    pending = [""]
    while pending:
        rel = pending.pop(0)
        here = top.join(rel) if rel else top
        entries = fs.listdir(here)
        dirs = sorted(e.name for e in entries if e.is_dir)
        files = sorted(e.name for e in entries if not e.is_dir)
        yield rel, dirs, files
        pending.extend(f"{rel}/{d}" if rel else d for d in dirs)


def tree_pairs(src: URL, dst: URL) -> tuple[list[tuple[URL, URL]], list[URL]]:
    """Every file below ``src`` paired with its place below ``dst``; plus the directories to create."""
    pairs: list[tuple[URL, URL]] = []
    directories: list[URL] = [dst]
    for rel, dirs, files in walk(src):
        here_src = src.join(rel) if rel else src
        here_dst = dst.join(rel) if rel else dst
        directories.extend(here_dst.join(d) for d in dirs)
        pairs.extend((here_src.join(name), here_dst.join(name)) for name in files)
    return pairs, directories


def copy_tree(
    src: str | os.PathLike[str] | URL,
    dst: str | os.PathLike[str] | URL,
    *,
    parallel: int = 8,
    overwrite: bool = True,
    checksum: str | None = "auto",
    retry: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
) -> list[CopyResult]:
    """Copy the directory ``src`` to ``dst`` (which becomes the copy of ``src``), file by file."""
    source, target = parse_url(src), parse_url(dst)
    policy = retry or default_policy()
    pairs, directories = with_failover([source], lambda u: tree_pairs(u, target), policy)
    target_fs = filesystem_for(target)
    ordered = sorted(set(directories), key=lambda u: u.path)
    leaves = [
        d
        for i, d in enumerate(ordered)
        if i + 1 == len(ordered) or not ordered[i + 1].path.startswith(d.path.rstrip("/") + "/")
    ]
    for directory in leaves:  # the parents come with them (an extra mkdir of a parent is harmless)
        with_failover([directory], lambda u: target_fs.mkdir(u, parents=True), policy)
    return copy_many(pairs, parallel=parallel, overwrite=overwrite, checksum=checksum, retry=policy, progress=progress)
