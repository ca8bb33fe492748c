"""``batchkit cp|ls|rm|stat``: the transfer layer (:mod:`batchkit.fs`) on the command line.

``cp`` behaves like POSIX ``cp`` where that makes sense for URLs: ``cp SRC DST`` writes the
file DST, or DST/<name> when DST is an existing directory or ends with ``/``; several sources
(or ``-r``) copy into the directory DST; ``-`` is stdin (as the only source) or stdout (as the
destination). The job wrapper stages files with ``python -m batchkit cp -- SRC DST``;
``cp --pairs FILE`` copies arbitrary ``SRC<TAB>DST`` pairs in one bulk call (one process for
all of a job's files instead of one per file).

Exit codes: 0 success; 1 some files of a multi-file copy failed (each is named on stderr);
2 an error (one line on stderr, from the CLI's main); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.errors import FileNotFound, InvalidURL, TransferError, UserError
from batchkit.fs import ops, transfer, tree
from batchkit.fs.info import CopyResult, FileInfo, ProgressCallback
from batchkit.fs.progress import ProgressBar, human_bytes
from batchkit.fs.retry import RetryPolicy
from batchkit.fs.url import URL, parse_url

EXIT_PARTIAL = 1


def add_commands(sub: Any) -> None:
    """Register ``cp``, ``ls``, ``rm`` and ``stat`` on the sub-command parser ``sub``."""
    p = sub.add_parser(
        "cp",
        help="copy files between local paths and storage URLs",
        description="Copy SRC to DST, or several SRCs into the directory DST. Sources and destinations are "
        "paths or URLs (root://, davs://, dav://, https://, gsiftp://, ftp://, file://, ...); '-' is stdin/stdout. "
        "Every file is written under a temporary name, verified (size; adler32 where the server offers it) "
        "and renamed into place.",
    )
    p.add_argument("paths", nargs="*", metavar="SRC... DST", help="sources, then the destination")
    p.add_argument(
        "--pairs",
        metavar="FILE",
        help="copy the pairs listed in FILE ('-': stdin), one 'SRC<TAB>DST' per line, in one bulk call "
        "(what a job staging many files needs: one process, the protocol's bulk path)",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories recursively")
    p.add_argument("-p", "--parallel", type=int, default=None, help="files in flight at once (default 8)")
    p.add_argument(
        "--checksum",
        default="auto",
        choices=("auto", "adler32", "md5", "none"),
        help="verify with this checksum (auto: adler32 when the server offers it; none: size only)",
    )
    p.add_argument("-n", "--no-clobber", action="store_true", help="fail instead of overwriting a destination")
    p.add_argument("--retries", type=int, default=None, help="attempts per file for transient errors (default 3)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("ls", help="list a directory (or show one file)")
    p.add_argument("url", help="directory or file path/URL")
    p.add_argument("-l", "--long", action="store_true", help="type, size and modification time too")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("rm", help="remove files or directories")
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("-r", "--recursive", action="store_true", help="remove directories and their contents")
    p.add_argument("-f", "--force", action="store_true", help="a path that does not exist is not an error")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("stat", help="show size, type and modification time (and a checksum)")
    p.add_argument("url")
    p.add_argument("--checksum", choices=("adler32", "md5"), help="also print this checksum")
    p.set_defaults(func=cmd_stat)


# ---------------------------------------------------------------------------------- cp
@attrs.frozen
class _CopySettings:
    parallel: int
    overwrite: bool
    checksum: str | None
    retry: RetryPolicy

    def copy(self, src: URL | Path, dst: URL | Path, bar: ProgressCallback | None) -> None:
        transfer.copy(src, dst, overwrite=self.overwrite, checksum=self.checksum, retry=self.retry, progress=bar)


def _policy(args: argparse.Namespace) -> RetryPolicy:
    policy = RetryPolicy.from_env()
    if args.retries is not None:
        if args.retries < 1:
            raise UserError("--retries must be at least 1")
        return RetryPolicy(attempts=args.retries, backoff=policy.backoff, timeout=policy.timeout)
    return policy


def _progress(args: argparse.Namespace) -> ProgressBar | None:
    show = sys.stderr.isatty() if args.progress is None else args.progress
    return ProgressBar(sys.stderr, delay=0.0 if args.progress else 1.0) if show else None


def cmd_cp(args: argparse.Namespace) -> int:
    settings = _CopySettings(
        parallel=args.parallel or transfer.default_parallel(),
        overwrite=not args.no_clobber,
        checksum=None if args.checksum == "none" else args.checksum,
        retry=_policy(args),
    )
    if args.pairs is not None:
        if args.paths:
            raise UserError("--pairs takes no SRC/DST arguments")
        return _cp_pairs(args.pairs, settings, _progress(args))
    if len(args.paths) < 2:
        raise UserError("cp needs a source and a destination")
    *sources, destination = args.paths
    if "-" in sources and len(sources) > 1:
        raise UserError("'-' (stdin) must be the only source")
    bar = _progress(args)
    try:
        if sources == ["-"]:
            return _cp_stdin(destination, settings, bar)
        if destination == "-":
            return _cp_stdout(sources, settings, bar)
        pairs, directories = _plan(sources, destination, args.recursive, settings.retry)
        for directory in directories:
            ops.mkdir(directory, retry=settings.retry)
        return _copy_and_report(pairs, settings, bar)
    finally:
        if bar is not None:
            bar.close()


def _copy_and_report(pairs: Sequence[tuple[Any, Any]], settings: _CopySettings, bar: ProgressBar | None) -> int:
    """One bulk copy of ``pairs`` with the command's settings; the exit code from the results."""
    results = transfer.copy_many(
        pairs,
        parallel=settings.parallel,
        overwrite=settings.overwrite,
        checksum=settings.checksum,
        retry=settings.retry,
        progress=bar,
    )
    return _report(results)


def read_pairs(text: str) -> list[tuple[str, str]]:
    """``SRC<TAB>DST`` lines (blank lines and ``#`` comments skipped) as pairs (pure)."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise UserError(f"--pairs line {number}: expected 'SRC<TAB>DST', got {line!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


def _cp_pairs(source: str, settings: _CopySettings, bar: ProgressBar | None) -> int:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise UserError(f"cannot read --pairs {source}: {exc}") from None
    pairs = read_pairs(text)
    try:
        return _copy_and_report(pairs, settings, bar) if pairs else 0
    finally:
        if bar is not None:
            bar.close()


def _plan(
    sources: Sequence[str], destination: str, recursive: bool, policy: RetryPolicy
) -> tuple[list[tuple[URL, URL]], list[URL]]:
    """The (source, destination) file pairs and the directories to create, cp-style."""
    dst = parse_url(destination)
    dst_info = _stat_or_none(dst, policy)
    into = len(sources) > 1 or destination.endswith("/") or (dst_info is not None and dst_info.is_dir)
    if len(sources) > 1 and dst_info is not None and not dst_info.is_dir:
        raise UserError(f"target {dst.display()} is not a directory")
    pairs: list[tuple[URL, URL]] = []
    directories: list[URL] = []
    for text in sources:
        src = parse_url(text)
        info = _stat_or_none(src, policy) if recursive else None
        if recursive and info is None:
            raise FileNotFound("No such file or directory", src.display())
        target = dst.join(src.name) if into else dst
        if info is not None and info.is_dir:
            if not src.name and into:
                raise InvalidURL("cannot copy the root directory into another directory", src.display())
            tree_files, tree_dirs = tree.tree_pairs(src, target)
            pairs.extend(tree_files)
            directories.extend(tree_dirs)
        else:
            pairs.append((src, target))
    if into and dst_info is None:
        directories.insert(0, dst)
    return pairs, directories


def _stat_or_none(url: URL, policy: RetryPolicy) -> FileInfo | None:
    try:
        return ops.stat(url, retry=policy)
    except FileNotFound:
        return None


def _cp_stdin(destination: str, settings: _CopySettings, bar: ProgressCallback | None) -> int:
    dst = parse_url(destination)
    if destination.endswith("/") or (_stat_or_none(dst, settings.retry) or _NOT_DIR).is_dir:
        raise UserError("copying stdin needs a file name as destination, not a directory")
    with tempfile.TemporaryDirectory(prefix="batchkit-stdin-") as tmp:
        local = Path(tmp) / "stdin"
        with open(local, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1024 * 1024)
        settings.copy(local, dst, bar)
    return 0


def _cp_stdout(sources: Sequence[str], settings: _CopySettings, bar: ProgressCallback | None) -> int:
    with tempfile.TemporaryDirectory(prefix="batchkit-stdout-") as tmp:
        for n, text in enumerate(sources):
            local = Path(tmp) / str(n)
            settings.copy(parse_url(text), local, bar)
            with open(local, "rb") as data:
                shutil.copyfileobj(data, sys.stdout.buffer, 1024 * 1024)
            os.unlink(local)
    sys.stdout.buffer.flush()
    return 0


_NOT_DIR = FileInfo("", "", 0, False)


def _report(results: Sequence[CopyResult]) -> int:
    failed = [r for r in results if not r.ok]
    if len(results) == 1 and failed:
        assert failed[0].error is not None
        raise failed[0].error
    for result in failed:
        print(f"batchkit: cp: {result.src} -> {result.dst}: {result.error}", file=sys.stderr)
    if failed:
        print(f"batchkit: cp: {len(failed)} of {len(results)} files failed", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


# ---------------------------------------------------------------------------------- ls, rm, stat
def _when(mtime: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime)) if mtime else "-"


def cmd_ls(args: argparse.Namespace) -> int:
    info = ops.stat(args.url)
    entries = ops.listdir(args.url) if info.is_dir else [info]
    for entry in entries:
        name = entry.name + ("/" if entry.is_dir else "")
        if args.long:
            kind = "d" if entry.is_dir else "-"
            print(f"{kind} {entry.size:>14} {_when(entry.mtime)} {name}")
        else:
            print(name)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    failures = 0
    for url in args.urls:
        try:
            ops.remove(url, recursive=args.recursive, missing_ok=args.force)
        except TransferError as exc:
            if len(args.urls) == 1:
                raise
            print(f"batchkit: rm: {exc}", file=sys.stderr)
            failures += 1
    return EXIT_PARTIAL if failures else 0


def cmd_stat(args: argparse.Namespace) -> int:
    info = ops.stat(args.url)
    print(f"url:   {info.url}")
    print(f"type:  {'directory' if info.is_dir else 'file'}")
    print(f"size:  {info.size} ({human_bytes(info.size)})")
    print(f"mtime: {_when(info.mtime)}")
    if args.checksum:
        print(f"{args.checksum}: {ops.checksum(args.url, args.checksum)}")
    return 0
