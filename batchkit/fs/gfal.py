"""``gsiftp://``, ``ftp://``, ``srm://`` and every other scheme a loaded gfal2 plugin serves.

Through the gfal2 Python bindings (Debian/EL ``python3-gfal2``; PyPI ``gfal2-python`` does
not build against every libgfal2). One gfal2 context per thread: contexts carry per-call
state (credentials, options), so threads do not share them.

Bulk uploads and downloads are one ``filecopy`` with the whole list of sources and
destinations (gfal2's bulk API); verification and renames then run on a small thread pool.
``ctx.cancel()`` aborts a running ``filecopy`` on ``KeyboardInterrupt``.

Not offered: ``sftp://`` -- gfal2 2.21's sftp plugin reports success on files above ~1-2 MB
that it truncated (measured); see :data:`batchkit.fs.registry.REFUSED`.

Credentials: gfal2 reads ``X509_USER_PROXY`` and ``X509_CERT_DIR`` itself; the discovered
bearer token is handed to it with ``cred_set`` for https/davs URLs only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import stat as stat_flags
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, TypeVar

import gfal2

from batchkit.errors import FileNotFound, TransferError
from batchkit.fs import checksums, credentials
from batchkit.fs.base import (
    FileSystem,
    GetItem,
    Outcome,
    ProgressSink,
    PutItem,
    TransferOptions,
    discard_failed_downloads,
    temp_name,
    verify_size,
)
from batchkit.fs.classify import by_errno
from batchkit.fs.info import FileInfo
from batchkit.fs.interruptible import run_interruptible
from batchkit.fs.url import URL, parse_url

T = TypeVar("T")

#: gfal2 plugin (name before the version) -> the URL schemes it serves
PLUGIN_SCHEMES: dict[str, tuple[str, ...]] = {
    "file": ("file",),
    "gridftp": ("gsiftp", "ftp"),
    "http": ("http", "https", "dav", "davs", "s3", "s3s", "gcloud", "gclouds", "swift", "swifts"),
    "xrootd": ("root", "xroot", "roots", "xroots"),
    "srm": ("srm",),
    "dcap": ("dcap", "gsidcap"),
    "rfio": ("rfio",),
    "lfc": ("lfn",),
}

_NOT_SUPPORTED = (38, 93, 95)  # ENOSYS, EPROTONOSUPPORT, EOPNOTSUPP: "checksum not supported" & co


def error_for(exc: Any, url: str) -> TransferError:
    """A typed error for a ``gfal2.GError`` (its ``code`` is an errno)."""
    message = " ".join(str(getattr(exc, "message", None) or exc).split())
    return by_errno(int(getattr(exc, "code", 0) or 0), message, url)


def file_url(path: Path | str) -> str:
    return "file://" + os.path.abspath(path)


def create_context() -> Any:
    """``gfal2.creat_context()`` without its lasting change to the caller's signal mask.

    creat_context blocks nearly every signal in the calling thread (so that the threads it
    starts do not take them) and leaves them blocked (measured with gfal2 2.21: SigBlk
    fffffffe3ff9ea07). Left so, Ctrl+C no longer reaches the program, and every process it
    starts afterwards inherits the mask: a local-backend job could no longer be stopped with
    SIGTERM, a ``law run`` started from it could not be interrupted. gfal2's own threads,
    started inside the call, keep the blocked mask; only the caller's is restored.
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        return gfal2.creat_context()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class GfalFileSystem(FileSystem):
    """Any storage a gfal2 plugin reaches."""

    schemes = ("gsiftp", "ftp", "srm")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._no_checksum: set[tuple[str, str]] = set()
        plugins = {name.rsplit("-", 1)[0] for name in self.context().get_plugin_names()}
        self.served = frozenset(s for plugin in plugins for s in PLUGIN_SCHEMES.get(plugin, ()))

    def serves(self, scheme: str) -> bool:
        """Whether a loaded gfal2 plugin serves ``scheme`` (sftp never: see the module doc)."""
        return scheme in self.served and scheme != "sftp"

    def context(self) -> Any:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = create_context()
            self._local.ctx = ctx
        return ctx

    def _prepare(self, ctx: Any, url: URL) -> Any:
        """``ctx`` with the bearer token set for ``url``'s server (https/davs only)."""
        if url.scheme in ("https", "davs"):
            token = credentials.find_bearer_token()
            if token is not None:
                ctx.cred_set(url.server, gfal2.cred_new("BEARER", token.value))
        return ctx

    def _call(self, url: URL, operation: Callable[[Any, str], T]) -> T:
        ctx = self._prepare(self.context(), url)
        text = str(url)
        try:
            return operation(ctx, text)
        except gfal2.GError as exc:
            raise error_for(exc, url.display()) from None

    def _params(self) -> Any:
        params = self.context().transfer_parameters()
        params.overwrite = True
        params.create_parent = True
        params.timeout = int(max(60, self.policy.timeout * 10))
        params.set_checksum(gfal2.checksum_mode.none, "", "")  # batchkit compares checksums itself
        return params

    # ---------------------------------------------------------------- metadata
    def stat(self, url: URL) -> FileInfo:
        st = self._call(url, lambda ctx, u: ctx.stat(u))
        return FileInfo(url.display(), url.name, int(st.st_size), stat_flags.S_ISDIR(st.st_mode), float(st.st_mtime))

    def listdir(self, url: URL) -> list[FileInfo]:
        def run(ctx: Any, text: str) -> list[FileInfo]:
            handle = ctx.opendir(text)
            entries: list[FileInfo] = []
            while True:
                dirent, st = handle.readpp()
                if dirent is None:
                    return entries
                if dirent.d_name in (".", ".."):
                    continue
                child = url.join(dirent.d_name)
                entries.append(
                    FileInfo(
                        child.display(),
                        dirent.d_name,
                        int(st.st_size),
                        stat_flags.S_ISDIR(st.st_mode),
                        float(st.st_mtime) or None,
                    )
                )

        return self._call(url, run)

    def mkdir(self, url: URL, parents: bool = True) -> None:
        try:
            if parents:
                self._call(url, lambda ctx, u: ctx.mkdir_rec(u, 0o755))
            else:
                self._call(url, lambda ctx, u: ctx.mkdir(u, 0o755))
        except TransferError as exc:
            if isinstance(exc, FileNotFound):
                raise
            try:
                if self.stat(url).is_dir:
                    return
            except TransferError:
                pass
            raise

    def remove_file(self, url: URL) -> None:
        self._call(url, lambda ctx, u: ctx.unlink(u))

    def remove_dir(self, url: URL) -> None:
        self._call(url, lambda ctx, u: ctx.rmdir(u))

    def rename(self, src: URL, dst: URL) -> None:
        self._call(src, lambda ctx, u: ctx.rename(u, str(dst)))

    def server_checksum(self, url: URL, algorithm: str) -> str | None:
        algo = checksums.check_algorithm(algorithm)
        if (url.server, algo) in self._no_checksum:
            return None
        ctx = self._prepare(self.context(), url)
        try:
            value = ctx.checksum(str(url), algo.upper())
        except gfal2.GError as exc:
            if int(exc.code or 0) in _NOT_SUPPORTED or "not supported" in str(exc).lower():
                self._no_checksum.add((url.server, algo))
                return None
            raise error_for(exc, url.display()) from None
        return checksums.normalise(algo, str(value))

    # ---------------------------------------------------------------- transfers
    def upload(self, local: Path, url: URL, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        (error,) = self._filecopy([file_url(local)], [str(url)], [pos], progress, cancel)
        if error is not None:
            raise error_for(error, url.display())

    def download(self, url: URL, local: Path, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        (error,) = self._filecopy([str(url)], [file_url(local)], [pos], progress, cancel)
        if error is not None:
            raise error_for(error, url.display())

    def _filecopy(
        self,
        sources: Sequence[str],
        targets: Sequence[str],
        positions: Sequence[int],
        progress: ProgressSink,
        cancel: threading.Event,
    ) -> list[Any]:
        """One gfal2 ``filecopy`` (bulk when several); a GError or None per pair.

        Runs in a helper thread with the calling thread's context (the caller only waits, and
        ``cancel()`` is meant to be called from another thread) so the caller can cancel it.
        """
        ctx = self.context()
        for text in (*sources, *targets):
            if text.startswith(("https://", "davs://")):
                self._prepare(ctx, parse_url(text))

        def run() -> list[Any]:
            params = self._params()
            if len(sources) != 1:
                return list(ctx.filecopy(params, list(sources), list(targets)))

            def monitor(src: Any, dst: Any, average: Any, instant: Any, transferred: Any, elapsed: Any) -> None:
                progress.bytes(positions[0], int(transferred))

            params.monitor_callback = monitor
            try:
                ctx.filecopy(params, sources[0], targets[0])
            except gfal2.GError as exc:
                return [exc]
            return [None]

        return run_interruptible(run, cancel, ctx.cancel, name="batchkit-gfal-copy")

    def put_many(
        self, items: Sequence[PutItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        tmps = [item.url.with_name(temp_name(item.url.name)) for item in items]
        outcomes: list[Outcome | None] = [None] * len(items)
        try:
            errors = self._filecopy(
                [file_url(item.local) for item in items], [str(t) for t in tmps], range(len(items)), progress, cancel
            )
            for i, error in enumerate(errors):
                if error is not None:
                    shown = str(items[i].local) if "source" in str(error).lower() else items[i].url.display()
                    outcomes[i] = Outcome(error=error_for(error, shown))

            def finish(i: int) -> Outcome:
                item = items[i]
                verify_size(item.size, self.stat(tmps[i]).size, item.url)
                summary = self._verify_remote(tmps[i], item.local, options, item.url)
                self.rename(tmps[i], item.url)
                return Outcome(size=item.size, checksum=summary)

            self._finish_all(finish, outcomes, options.parallel)
        except BaseException:
            for tmp in tmps:
                self._remove_quietly(tmp)
            raise
        for i, outcome in enumerate(outcomes):
            if outcome is None or outcome.error is not None:
                self._remove_quietly(tmps[i])
        return _report(progress, outcomes)

    def get_many(
        self, items: Sequence[GetItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        sizes: dict[int, int] = {}
        for i, item in enumerate(items):
            try:
                info = self.stat(item.url)
                if info.is_dir:
                    raise TransferError("is a directory (copy it recursively)", item.url.display())
                item.local.parent.mkdir(parents=True, exist_ok=True)
                sizes[i] = info.size
            except TransferError as exc:
                outcomes[i] = Outcome(error=exc)
            except OSError as exc:
                outcomes[i] = Outcome(error=TransferError(str(exc), str(item.local.parent)))
        live = sorted(sizes)
        tmps = {i: items[i].local.with_name(temp_name(items[i].local.name)) for i in live}
        try:
            if live:
                errors = self._filecopy(
                    [str(items[i].url) for i in live], [file_url(tmps[i]) for i in live], live, progress, cancel
                )
                for i, error in zip(live, errors):
                    if error is not None:
                        outcomes[i] = Outcome(error=error_for(error, items[i].url.display()))

            def finish(i: int) -> Outcome:
                verify_size(sizes[i], tmps[i].stat().st_size, items[i].url)
                summary = self._verify_remote(items[i].url, tmps[i], options, items[i].url)
                os.replace(tmps[i], items[i].local)
                return Outcome(size=sizes[i], checksum=summary)

            self._finish_all(finish, outcomes, options.parallel)
        finally:
            discard_failed_downloads(tmps, outcomes)
        return _report(progress, outcomes)

    @staticmethod
    def _finish_all(finish: Callable[[int], Outcome], outcomes: list[Outcome | None], parallel: int) -> None:
        """Run ``finish(i)`` for every item still without an outcome, on a small pool."""
        pending = [i for i, o in enumerate(outcomes) if o is None]

        def run(i: int) -> None:
            try:
                outcomes[i] = finish(i)
            except TransferError as exc:
                outcomes[i] = Outcome(error=exc)
            except OSError as exc:
                outcomes[i] = Outcome(error=TransferError(str(exc)))

        if len(pending) <= 1 or parallel <= 1:
            for i in pending:
                run(i)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(parallel, len(pending))) as pool:
            for future in [pool.submit(run, i) for i in pending]:
                future.result()


def _report(progress: ProgressSink, outcomes: Sequence[Outcome | None]) -> list[Outcome]:
    final = [o if o is not None else Outcome(error=TransferError("not transferred")) for o in outcomes]
    for pos, outcome in enumerate(final):
        progress.finished(pos, outcome.error is None)
    return final


with contextlib.suppress(Exception):
    gfal2.set_verbose(gfal2.verbose_level.warning)
