"""The one error hierarchy of batchkit.

Every error batchkit raises on purpose derives from :class:`BatchkitError`, so callers can
catch the whole family with one clause, and the CLI can tell a user error (print one line,
exit non-zero, no traceback) from a bug (show the traceback).

Three branches matter to callers:

* :class:`UserError` -- the input is wrong (bad spec, unknown backend, directory already
  used by another submission, ...). Retrying will not help; the message says what to fix.
  The validation errors also derive from :class:`ValueError` so code written against plain
  Python conventions keeps working.
* :class:`BackendError` -- a scheduler or a command said no, or answered something we
  cannot read. It carries the command and the scheduler's own words.
* :class:`TransientError` -- a failure that is expected to go away (timeouts, "try again",
  connection refused). batchkit retries these with backoff before they ever reach you;
  when one does reach you, the retries were used up.

Errors of the transfer layer (:mod:`batchkit.fs`) live here too so that one ``except``
covers a whole workflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class BatchkitError(Exception):
    """Base class of every error batchkit raises on purpose."""


# ----------------------------------------------------------------------------- user errors
class UserError(BatchkitError):
    """The caller asked for something that cannot work; the message says what to change."""


class SpecError(UserError, ValueError):
    """A job description or a resource value is invalid (raised at construction)."""


class UnknownBackendError(UserError, KeyError):
    """No backend is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(UserError, ImportError):
    """An optional dependency (Python package or command-line tool) is not installed.

    The message always names what to install, e.g. ``pip install 'batchkit[xrootd]'``.
    """


class SubmissionExistsError(UserError):
    """The directory already holds a *different* submission."""


class SubmissionNotFoundError(UserError):
    """There is no submission record in the given directory."""


class SubmissionBusyError(UserError):
    """Another process is supervising this submission right now."""


class RecordCorruptError(UserError):
    """The submission record cannot be read (truncated, not a batchkit record, ...).

    Nothing is changed on disk when this is raised.
    """


class JobFileError(UserError, ValueError):
    """A jobs file (JSON/YAML/TOML list of specs) cannot be read."""


# ----------------------------------------------------------------------------- backend errors
class BackendError(BatchkitError):
    """A scheduler or external command failed or answered something unexpected."""


class CommandError(BackendError):
    """An external command exited non-zero (or could not be started).

    Attributes keep everything a user needs to reproduce it: the argv list, the exit code
    and what the command printed.
    """

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        message: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip()
        if message is None:
            what = "could not be started" if returncode is None else f"exited with {returncode}"
            message = f"`{' '.join(self.argv[:6])}{' ...' if len(self.argv) > 6 else ''}` {what}"
            if detail:
                message += f": {detail[:2000]}"
        super().__init__(message)


class ParseError(BackendError):
    """A scheduler printed something batchkit cannot interpret."""

    def __init__(self, message: str, text: str = "") -> None:
        self.text = text
        super().__init__(message + (f"; output was: {text[:500]!r}" if text else ""))


class SubmitError(BackendError):
    """A submission was rejected, possibly after part of it went through.

    ``submitted`` maps the position (row) of every job that *was* accepted to its job id, so
    the caller can record those and retry only the rest.
    """

    def __init__(self, message: str, submitted: Mapping[int, str] | None = None) -> None:
        self.submitted = dict(submitted or {})
        super().__init__(message)


class TransientError(BatchkitError):
    """A failure expected to go away by itself (timeout, busy server, refused connection)."""


class TransientCommandError(CommandError, TransientError):
    """An external command failed in a way that is worth retrying."""


class CommandTimeoutError(TransientCommandError):
    """An external command did not finish within its time limit (it was killed)."""


# ----------------------------------------------------------------------------- transfer errors
class TransferError(BatchkitError):
    """A file operation failed. ``url`` names the file, the message the server's words."""

    def __init__(self, message: str, url: str = "") -> None:
        self.url = url
        super().__init__(f"{url}: {message}" if url else message)


class FileNotFound(TransferError, FileNotFoundError):
    """The file or directory does not exist (not retried)."""


class PermissionDenied(TransferError, PermissionError):
    """The server refused access (not retried)."""


class FileExists(TransferError, FileExistsError):
    """The destination exists and overwriting was not asked for."""


class ChecksumMismatch(TransferError):
    """Source and destination checksums (or sizes) differ after a copy."""


class UnsupportedScheme(UserError, TransferError):
    """No filesystem implementation is registered for the URL's scheme."""


class InvalidURL(UserError, TransferError):
    """The URL cannot be parsed or lacks a required part (e.g. the host)."""


class UnsupportedOperation(UserError, TransferError):
    """The protocol or this server cannot do what was asked (e.g. it offers no md5 checksums)."""


class TransientTransferError(TransferError, TransientError):
    """A file operation failed in a way that is worth retrying."""
