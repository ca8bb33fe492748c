"""The interface every protocol implements, and the one atomic copy algorithm they share.

A :class:`FileSystem` serves one or more URL schemes for every host (one instance per
process, created lazily by :mod:`batchkit.fs.registry`). It implements a few *primitives* --
``stat``, ``listdir``, ``mkdir``, ``remove_file``, ``remove_dir``, ``rename``,
``server_checksum``, and raw ``upload``/``download`` that may leave a partial file behind --
and inherits the guarantees from here:

* :meth:`FileSystem.put_one` / :meth:`FileSystem.get_one` never leave a half-written
  destination: they write a temporary sibling (``.<name>.bkpart-<random>``), check its size
  and checksum, then rename it over the destination; any failure, including
  ``KeyboardInterrupt``, removes the temporary (best effort: a server that died mid-transfer
  cannot be asked to delete anything, so its temporary stays behind, under a name no reader
  asks for).
* :meth:`FileSystem.put_many` / :meth:`FileSystem.get_many` run many of those on a thread
  pool. Protocols with a real bulk mechanism (XRootD's ``CopyProcess``, gfal2's list copy)
  override them and must keep the same guarantees.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import secrets
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Protocol

import attrs

from batchkit.errors import ChecksumMismatch, FileNotFound, TransferError, UnsupportedOperation
from batchkit.fs import checksums
from batchkit.fs.classify import os_error
from batchkit.fs.info import FileInfo
from batchkit.fs.retry import RetryPolicy
from batchkit.fs.url import URL

log = logging.getLogger(__name__)

#: Marker in the names of temporary files (``.<name>.bkpart-<8 hex>``).
TEMP_MARKER = ".bkpart-"


def temp_name(name: str) -> str:
    """A fresh temporary name for a file that will be renamed to ``name``."""
    return f".{name[:180]}{TEMP_MARKER}{secrets.token_hex(4)}"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARKER in name


class ProgressSink(Protocol):
    """Where implementations report progress; ``pos`` is the item's position in the call."""

    def bytes(self, pos: int, done: int) -> None:
        """Item ``pos`` has transferred ``done`` bytes so far (absolute, restarts at 0 on retry)."""

    def finished(self, pos: int, ok: bool) -> None:
        """Item ``pos`` is finished (``ok``: successfully)."""


class NullProgress:
    def bytes(self, pos: int, done: int) -> None:
        pass

    def finished(self, pos: int, ok: bool) -> None:
        pass


@attrs.frozen
class TransferOptions:
    """Per-call settings of a bulk transfer.

    ``checksum``: ``"auto"`` compares adler32 when the remote side offers it (size only
    otherwise); ``"adler32"``/``"md5"`` require that checksum (the copy fails with
    :class:`~batchkit.errors.UnsupportedOperation` if the server cannot give it); None
    checks the size only.
    """

    checksum: str | None = "auto"
    parallel: int = 8
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)


@attrs.frozen
class PutItem:
    """Upload the local file ``local`` (``size`` bytes) to ``url``."""

    local: Path
    url: URL
    size: int


@attrs.frozen
class GetItem:
    """Download ``url`` to the local file ``local`` (the parent directory is created)."""

    url: URL
    local: Path


@attrs.frozen(eq=False)
class Outcome:
    """What became of one item: ``error`` None on success; ``checksum`` "algo:hex" if compared."""

    error: TransferError | None = None
    size: int | None = None
    checksum: str | None = None


def verify_size(expected: int, actual: int, url: URL) -> None:
    if expected != actual:
        raise ChecksumMismatch(f"size after transfer is {actual} bytes, expected {expected}", url.display())


def compare_checksums(algo: str, expected: str, actual: str, url: URL) -> str:
    """``"algo:hex"`` when both agree; raises :class:`ChecksumMismatch` otherwise."""
    want = checksums.normalise(algo, expected)
    got = checksums.normalise(algo, actual)
    if want != got:
        raise ChecksumMismatch(f"{algo} after transfer is {got}, expected {want}", url.display())
    return f"{algo}:{want}"


def wanted_algorithm(option: str | None) -> str | None:
    """The algorithm to try for ``TransferOptions.checksum`` (None: size only)."""
    if option is None or option == "size":
        return None
    return "adler32" if option == "auto" else checksums.check_algorithm(option)


def _local_temp(path: Path) -> Path:
    return path.with_name(temp_name(path.name))


def remove_local_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove temporary file %s: %s", path, exc)


def discard_failed_downloads(tmps: Mapping[int, Path], outcomes: Sequence[Outcome | None]) -> None:
    """Remove the temporary file of every download that did not succeed.

    Bulk downloads write ``tmps[i]`` and rename it into place only once verified; whatever
    did not get that far (failed, or never finished because of an interrupt) is removed, so
    no partial destination survives.
    """
    for i, tmp in tmps.items():
        outcome = outcomes[i]
        if outcome is None or outcome.error is not None:
            remove_local_quietly(tmp)


class FileSystem(ABC):
    """One protocol (see the module docstring). Methods take parsed :class:`URL` values."""

    #: the URL schemes this class serves
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy.from_env()

    # ---------------------------------------------------------------- primitives
    @abstractmethod
    def stat(self, url: URL) -> FileInfo:
        """Metadata of ``url``; :class:`~batchkit.errors.FileNotFound` if it does not exist."""

    @abstractmethod
    def listdir(self, url: URL) -> list[FileInfo]:
        """The entries of the directory ``url`` (no ``.``/``..``), in the server's order."""

    @abstractmethod
    def mkdir(self, url: URL, parents: bool = True) -> None:
        """Create the directory ``url`` (and its parents); an existing directory is fine."""

    @abstractmethod
    def remove_file(self, url: URL) -> None:
        """Delete one file."""

    @abstractmethod
    def remove_dir(self, url: URL) -> None:
        """Delete one empty directory."""

    @abstractmethod
    def rename(self, src: URL, dst: URL) -> None:
        """Rename ``src`` to ``dst`` on the same server, replacing ``dst`` if it exists."""

    @abstractmethod
    def server_checksum(self, url: URL, algorithm: str) -> str | None:
        """The checksum the server computes for ``url``, or None if it offers none of that kind."""

    @abstractmethod
    def upload(self, local: Path, url: URL, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        """Write the local file to ``url`` (raw: may leave a partial file on failure)."""

    @abstractmethod
    def download(self, url: URL, local: Path, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        """Write ``url`` to the local path (raw: may leave a partial file on failure)."""

    # ---------------------------------------------------------------- derived operations
    def remove_tree(self, url: URL) -> None:
        """Delete a directory and everything below it (depth first)."""
        for entry in self.listdir(url):
            child = url.join(entry.name)
            if entry.is_dir:
                self.remove_tree(child)
            else:
                self.remove_file(child)
        self.remove_dir(url)

    def checksum(self, url: URL, algorithm: str) -> str:
        """The checksum of ``url``: the server's, or computed by reading the file through."""
        algo = checksums.check_algorithm(algorithm)
        value = self.server_checksum(url, algo)
        if value is not None:
            return checksums.normalise(algo, value)
        with tempfile.TemporaryDirectory(prefix="batchkit-sum-") as tmp:
            local = Path(tmp) / "data"
            self.download(url, local, 0, NullProgress(), threading.Event())
            return checksums.of_file(local, algo)

    def put_one(
        self, item: PutItem, options: TransferOptions, pos: int, progress: ProgressSink, cancel: threading.Event
    ) -> Outcome:
        """Upload one file atomically (temporary name, verify, rename)."""
        tmp = item.url.with_name(temp_name(item.url.name))
        try:
            self.upload(item.local, tmp, pos, progress, cancel)
            verify_size(item.size, self.stat(tmp).size, item.url)
            summary = self._verify_remote(tmp, item.local, options, item.url)
            self.rename(tmp, item.url)
        except BaseException:
            self._remove_quietly(tmp)
            raise
        return Outcome(size=item.size, checksum=summary)

    def get_one(
        self, item: GetItem, options: TransferOptions, pos: int, progress: ProgressSink, cancel: threading.Event
    ) -> Outcome:
        """Download one file atomically into ``item.local``."""
        info = self.stat(item.url)
        if info.is_dir:
            raise TransferError("is a directory (copy it recursively)", item.url.display())
        try:
            item.local.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, str(item.local.parent)) from None
        tmp = _local_temp(item.local)
        try:
            self.download(item.url, tmp, pos, progress, cancel)
            verify_size(info.size, tmp.stat().st_size, item.url)
            summary = self._verify_remote(item.url, tmp, options, item.url)
            os.replace(tmp, item.local)
        except BaseException:
            remove_local_quietly(tmp)
            raise
        return Outcome(size=info.size, checksum=summary)

    def _verify_remote(self, remote: URL, local: Path, options: TransferOptions, shown: URL) -> str | None:
        """Compare the server's checksum of ``remote`` with the local file's (None: not offered)."""
        algo = wanted_algorithm(options.checksum)
        if algo is None:
            return None
        value = self.server_checksum(remote, algo)
        if value is None:
            if options.checksum != "auto":
                raise UnsupportedOperation(f"the server offers no {algo} checksum", shown.display())
            return None
        return compare_checksums(algo, checksums.of_file(local, algo), value, shown)

    def put_many(
        self, items: Sequence[PutItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        """Upload many files, ``options.parallel`` at a time; one :class:`Outcome` per item."""
        for parent in sorted({item.url.parent for item in items}, key=str):
            with contextlib.suppress(TransferError):  # the upload itself will report it, per file
                self.mkdir(parent, parents=True)
        return self._run_pool(
            [
                lambda pos=pos, item=item: self.put_one(item, options, pos, progress, cancel)
                for pos, item in enumerate(items)
            ],
            options.parallel,
            progress,
            cancel,
        )

    def get_many(
        self, items: Sequence[GetItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        """Download many files, ``options.parallel`` at a time; one :class:`Outcome` per item."""
        return self._run_pool(
            [
                lambda pos=pos, item=item: self.get_one(item, options, pos, progress, cancel)
                for pos, item in enumerate(items)
            ],
            options.parallel,
            progress,
            cancel,
        )

    # ---------------------------------------------------------------- helpers
    def _remove_quietly(self, url: URL) -> None:
        try:
            self.remove_file(url)
        except FileNotFound:
            pass
        except Exception as exc:  # the original error matters more than a failed clean-up
            log.warning("could not remove temporary %s: %s", url.display(), exc)

    @staticmethod
    def _run_pool(
        jobs: Sequence[_Job], parallel: int, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        outcomes: list[Outcome] = [Outcome() for _ in jobs]

        def run(pos: int) -> None:
            if cancel.is_set():
                outcomes[pos] = Outcome(error=TransferError("cancelled"))
                return
            try:
                outcomes[pos] = jobs[pos]()
            except TransferError as exc:
                outcomes[pos] = Outcome(error=exc)
            progress.finished(pos, outcomes[pos].error is None)

        if parallel <= 1 or len(jobs) == 1:
            for pos in range(len(jobs)):
                run(pos)
            return outcomes
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(parallel, len(jobs)), thread_name_prefix="batchkit-fs"
        )
        try:
            futures = [pool.submit(run, pos) for pos in range(len(jobs))]
            for future in futures:
                future.result()
        except BaseException:
            cancel.set()  # workers stop at their next chunk and remove their temporaries
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return outcomes


class _Job(Protocol):
    def __call__(self) -> Outcome: ...
