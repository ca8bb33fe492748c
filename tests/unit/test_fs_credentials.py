"""WLCG bearer-token discovery, proxy lookup, and that secrets never print."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from batchkit.fs import credentials


def test_bearer_token_env_wins(tmp_path: Path) -> None:
    (tmp_path / "bt_u1000").write_text("from-file\n")
    env = {"BEARER_TOKEN": " direct-token ", "XDG_RUNTIME_DIR": str(tmp_path)}
    token = credentials.find_bearer_token(env, uid=1000)
    assert token is not None and token.value == "direct-token"


def test_bearer_token_file_then_xdg_then_tmp(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit"
    explicit.write_text("tok-explicit\n")
    (tmp_path / "bt_u1000").write_text("tok-xdg\n")
    token = credentials.find_bearer_token({"BEARER_TOKEN_FILE": str(explicit), "XDG_RUNTIME_DIR": str(tmp_path)}, 1000)
    assert token is not None and token.value == "tok-explicit"
    token = credentials.find_bearer_token({"XDG_RUNTIME_DIR": str(tmp_path)}, 1000)
    assert token is not None and token.value == "tok-xdg"
    assert credentials.bearer_token_locations({"XDG_RUNTIME_DIR": str(tmp_path)}, 1000) == [
        str(tmp_path / "bt_u1000"),
        "/tmp/bt_u1000",
    ]
    # an explicit file that does not exist means "no token", not "look elsewhere"
    assert (
        credentials.find_bearer_token(
            {"BEARER_TOKEN_FILE": str(tmp_path / "none"), "XDG_RUNTIME_DIR": str(tmp_path)}, 1000
        )
        is None
    )


def test_secret_never_prints(caplog: pytest.LogCaptureFixture) -> None:
    secret = credentials.Secret("eyJhbGciOi.very.secret")
    logging.getLogger("test").warning("token is %s / %r", secret, secret)
    assert "very.secret" not in caplog.text
    assert "very.secret" not in repr(secret) and "very.secret" not in str(secret)


def test_x509_proxy(tmp_path: Path) -> None:
    proxy = tmp_path / "x509up"
    assert credentials.find_x509_proxy({"X509_USER_PROXY": str(proxy)}) is None
    proxy.write_text("-----BEGIN CERTIFICATE-----\n")
    assert credentials.find_x509_proxy({"X509_USER_PROXY": str(proxy)}) == str(proxy)


def test_ca_directory(tmp_path: Path) -> None:
    assert credentials.ca_directory({"X509_CERT_DIR": str(tmp_path)}) == str(tmp_path)
    assert credentials.ca_directory({"X509_CERT_DIR": str(tmp_path / "missing")}) is None
