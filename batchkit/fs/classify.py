"""Map each protocol's failure reports onto batchkit's typed transfer errors (pure functions).

The decision that matters is *transient or not* (see :mod:`batchkit.fs.retry`):

* transient: timeouts, refused/reset/dropped connections, "server busy"/overloaded, HTTP
  5xx (except 501/505), XRootD socket and stream errors, gfal2 ``ETIMEDOUT``/``ECONNREFUSED``...;
* permanent, with their own types: no such file (:class:`~batchkit.errors.FileNotFound`),
  permission denied (:class:`~batchkit.errors.PermissionDenied`), already exists
  (:class:`~batchkit.errors.FileExists`);
* anything else is a permanent :class:`~batchkit.errors.TransferError`: retrying an error we
  do not understand would only hide it for longer.

Each function takes the protocol's own numbers and words, so tests feed it outputs
recorded from the real servers (``tests/fixtures/fs/``).
"""

from __future__ import annotations

import errno as errno_codes
import re

from batchkit.errors import (
    ChecksumMismatch,
    FileExists,
    FileNotFound,
    PermissionDenied,
    TransferError,
    TransientTransferError,
    UnsupportedOperation,
)

_TRANSIENT_ERRNOS = frozenset(
    {
        errno_codes.ETIMEDOUT,
        errno_codes.ECONNREFUSED,
        errno_codes.ECONNRESET,
        errno_codes.ECONNABORTED,
        errno_codes.EHOSTUNREACH,
        errno_codes.EHOSTDOWN,
        errno_codes.ENETUNREACH,
        errno_codes.ENETDOWN,
        errno_codes.ENETRESET,
        errno_codes.EPIPE,
        errno_codes.EAGAIN,
        errno_codes.EBUSY,
        errno_codes.ECOMM,
        errno_codes.EPROTO,
        errno_codes.ENOTCONN,
        errno_codes.ESHUTDOWN,
    }
)

_NOT_FOUND_ERRNOS = frozenset({errno_codes.ENOENT, errno_codes.ENOTDIR})
_DENIED_ERRNOS = frozenset({errno_codes.EACCES, errno_codes.EPERM, errno_codes.EROFS})
_UNSUPPORTED_ERRNOS = frozenset(
    {errno_codes.ENOSYS, errno_codes.EOPNOTSUPP, errno_codes.EPROTONOSUPPORT, errno_codes.ENOTSUP}
)

_TRANSIENT_WORDS = (
    "timed out",
    "timeout",
    "connection refused",
    "connection reset",
    "broken pipe",
    "temporarily unavailable",
    "try again",
    "server busy",
    "overloaded",
    "could not connect",
    "connection error",
    "socket",
)


def by_errno(code: int | None, message: str, url: str) -> TransferError:
    """The error for an ``errno``-style code (local I/O, gfal2's ``GError.code``)."""
    if code in _NOT_FOUND_ERRNOS:
        return FileNotFound(message, url)
    if code in _DENIED_ERRNOS:
        return PermissionDenied(message, url)
    if code == errno_codes.EEXIST:
        return FileExists(message, url)
    lowered = message.lower()
    if "no such file" in lowered or "not found" in lowered:
        return FileNotFound(message, url)
    if "permission denied" in lowered:
        return PermissionDenied(message, url)
    if any(word in lowered for word in _PERMANENT_5XX_WORDS):
        return TransferError(message, url)
    if code in _TRANSIENT_ERRNOS:
        return TransientTransferError(message, url)
    if code in _UNSUPPORTED_ERRNOS:
        return UnsupportedOperation(message, url)
    if code == errno_codes.ENOSPC or code == errno_codes.EDQUOT:
        return TransferError(message, url)
    if any(word in lowered for word in _TRANSIENT_WORDS):
        return TransientTransferError(message, url)
    return TransferError(message, url)


def os_error(exc: OSError, url: str) -> TransferError:
    """A local :class:`OSError` as a transfer error (the message without the path repeated)."""
    message = exc.strerror or str(exc)
    return by_errno(exc.errno, message, url)


# XRootD server error numbers (XProtocol.hh kXR_*), which arrive in XRootDStatus.errno
XRD_NOT_FOUND = {3011, 3015}  # kXR_NotFound, kXR_NotFile
XRD_DENIED = {3010, 3030, 3025}  # kXR_NotAuthorized, kXR_AuthFailed, kXR_fsReadOnly
XRD_EXISTS = {3018}  # kXR_ItExists
XRD_TRANSIENT = {
    3008,
    3012,
    3024,
    3034,
    3035,
    3020,
}  # NoMemory ServerError Overloaded ReqTimedOut TimerExpired inProgress
XRD_UNSUPPORTED = {3013}  # kXR_Unsupported
# XRootD client status codes (XrdClStatus.hh), XRootDStatus.code
XRD_CODE_SERVER_ERROR = 400  # errErrorResponse: the server answered with kXR_error (see errno)
XRD_CODE_LOCAL_ERROR = 402  # errLocalError: the local side of a copy (errno is then an errno or kXR code)
XRD_CODE_CHECKSUM = 305  # errCheckSumError
XRD_CODE_INVALID_ADDR = 101  # errInvalidAddr: host name does not resolve
XRD_TRANSIENT_CODES = frozenset(
    {
        102,  # errSocketError
        103,  # errSocketTimeout
        104,  # errSocketDisconnected
        105,  # errPollerError
        107,  # errStreamDisconnect
        108,  # errConnectionError
        109,  # errInvalidSession
        110,  # errTlsError (handshake over a flaky link)
        202,  # errHandShakeFailed
        206,  # errOperationExpired
        208,  # errThresholdExceeded
        301,  # errNoMoreFreeSIDs
        16,  # errNoMoreReplicas
        1,  # errRetry
        11,  # errUninitialized: what a CopyProcess job reports when its server vanished mid-write
    }
)
XRD_UNSUPPORTED_CODES = frozenset({13, 15, 205})  # errNotSupported, errNotImplemented, errQueryNotSupported


def xrootd_status(code: int, errno: int, message: str, url: str) -> TransferError:
    """The error for a failed ``XRootDStatus`` (its ``code``, ``errno`` and ``message``)."""
    text = message.strip()
    for prefix in ("[ERROR] ", "[FATAL] "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.replace("Server responded with an error: ", "")
    if code == XRD_CODE_CHECKSUM:
        return ChecksumMismatch(text, url)
    if code in XRD_TRANSIENT_CODES:
        return TransientTransferError(text, url)
    if code in XRD_UNSUPPORTED_CODES:
        return UnsupportedOperation(text, url)
    if code == XRD_CODE_INVALID_ADDR:
        return TransferError(f"{text} (host name does not resolve)", url)
    if code in (XRD_CODE_SERVER_ERROR, XRD_CODE_LOCAL_ERROR) or errno:
        if errno in XRD_NOT_FOUND:
            return FileNotFound(text, url)
        if errno in XRD_DENIED:
            return PermissionDenied(text, url)
        if errno in XRD_EXISTS:
            return FileExists(text, url)
        if errno in XRD_TRANSIENT:
            return TransientTransferError(text, url)
        if errno in XRD_UNSUPPORTED:
            return UnsupportedOperation(text, url)
        if code == XRD_CODE_LOCAL_ERROR and 0 < errno < 3000:
            return by_errno(errno, text, url)
    return TransferError(text, url)


def http_status(status: int, reason: str, url: str, body: str = "") -> TransferError:
    """The error for an HTTP/WebDAV response status (``reason`` and a short ``body`` quoted)."""
    detail = f"HTTP {status} {reason}".strip()
    snippet = " ".join(_TAG_RE.sub(" ", body).split())[:300]
    if snippet:
        detail += f": {snippet}"
    if status == 404 or status == 410:
        return FileNotFound(detail, url)
    if status in (401, 403):
        return PermissionDenied(detail, url)
    if status == 412:
        return FileExists(detail, url)
    if status in (408, 425, 429):
        return TransientTransferError(detail, url)
    if status in (405, 501, 505):
        return UnsupportedOperation(detail, url)
    if 500 <= status < 600:
        # XrdHttp answers 500 for plain file-system errors too ("directory not empty", ...)
        lowered = snippet.lower()
        if "no such file" in lowered:
            return FileNotFound(detail, url)
        if "permission denied" in lowered:
            return PermissionDenied(detail, url)
        if any(word in lowered for word in _PERMANENT_5XX_WORDS):
            return TransferError(detail, url)
        return TransientTransferError(detail, url)
    return TransferError(detail, url)


_TAG_RE = re.compile(r"<[^>]*>")
_PERMANENT_5XX_WORDS = ("not empty", "is a directory", "not a directory", "file exists", "no space", "quota")
