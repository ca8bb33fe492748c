"""Grid credentials, found the way WLCG tools find them, passed through and never logged.

* Bearer tokens follow the WLCG Bearer Token Discovery rules: ``$BEARER_TOKEN`` (the token
  itself), else the file ``$BEARER_TOKEN_FILE``, else ``$XDG_RUNTIME_DIR/bt_u<uid>``, else
  ``/tmp/bt_u<uid>``. The token is read again for each operation, so a token refreshed on
  disk by an agent (oidc-agent, htgettoken) is picked up without a restart.
* The X.509 proxy is ``$X509_USER_PROXY``, else ``/tmp/x509up_u<uid>``.
* Trusted CAs are the system's plus ``$X509_CERT_DIR`` (the grid's hashed CA directory,
  default ``/etc/grid-security/certificates`` when it exists), plus an explicit CA file.

XRootD and gfal2 read the same variables themselves; batchkit only hands the token and the
proxy to its own HTTP client. Neither value is ever put into a log line, an error message or
a ``repr``: :class:`Secret` prints as ``***``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

import attrs

GRID_CA_DIR = "/etc/grid-security/certificates"


@attrs.frozen(repr=False)
class Secret:
    """A credential value that never shows up in logs (``repr``/``str`` give ``***``)."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def bearer_token_locations(env: Mapping[str, str] | None = None, uid: int | None = None) -> list[str]:
    """The token files WLCG discovery looks at, in order (after ``$BEARER_TOKEN``)."""
    env = os.environ if env is None else env
    uid = _uid() if uid is None else uid
    locations = []
    if env.get("BEARER_TOKEN_FILE"):
        locations.append(env["BEARER_TOKEN_FILE"])
        return locations  # an explicit file wins, even when it does not exist
    if env.get("XDG_RUNTIME_DIR"):
        locations.append(os.path.join(env["XDG_RUNTIME_DIR"], f"bt_u{uid}"))
    locations.append(f"/tmp/bt_u{uid}")
    return locations


def find_bearer_token(env: Mapping[str, str] | None = None, uid: int | None = None) -> Secret | None:
    """The bearer token to send, or None. Whitespace around the token is removed."""
    env = os.environ if env is None else env
    direct = env.get("BEARER_TOKEN", "").strip()
    if direct:
        return Secret(direct)
    for location in bearer_token_locations(env, uid):
        try:
            text = Path(location).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            return Secret(text)
    return None


def find_x509_proxy(env: Mapping[str, str] | None = None, uid: int | None = None) -> str | None:
    """The path of the user's X.509 proxy when one exists, else None."""
    env = os.environ if env is None else env
    uid = _uid() if uid is None else uid
    path = env.get("X509_USER_PROXY") or f"/tmp/x509up_u{uid}"
    return path if os.path.isfile(path) else None


def ca_directory(env: Mapping[str, str] | None = None) -> str | None:
    """The grid CA directory to trust besides the system CAs, or None."""
    env = os.environ if env is None else env
    path = env.get("X509_CERT_DIR") or GRID_CA_DIR
    return path if os.path.isdir(path) else None


def tls_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    ca_dir: str | None = None,
    client_proxy: str | None = None,
) -> ssl.SSLContext:
    """An SSL context trusting the system CAs plus ``ca_dir``/``ca_file``.

    ``client_proxy`` (an X.509 proxy: certificate chain and key in one PEM file) is presented
    to servers that ask for a client certificate. ``verify=False`` turns verification off
    (for tests against throw-away servers only).
    """
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if ca_dir:
        context.load_verify_locations(capath=ca_dir)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if client_proxy:
        context.load_cert_chain(client_proxy)
    return context
