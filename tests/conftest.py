"""Shared test fixtures.

Real services (Slurm, XRootD, WebDAV, ...) are started by ``tests/services/up.sh`` (``make
test`` runs it), which describes them in ``/tmp/batchkit-services/services.json``.
:func:`require_service` hands a test what it needs to reach a service; when the service is
missing the test is skipped on a developer machine but FAILS in CI (``CI=true``): a green CI
must mean the real thing was exercised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

SERVICES_FILE = Path(os.environ.get("BATCHKIT_SERVICES_FILE", "/tmp/batchkit-services/services.json"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def services() -> dict[str, str]:
    """What tests/services/up.sh wrote about the running services ({} if nothing)."""
    try:
        data = json.loads(SERVICES_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def require_service(key: str, what: str) -> str:
    """The value of ``key`` in services.json; skip (locally) or fail (CI) when it is absent."""
    value = services().get(key)
    if value:
        return value
    missing(f"{what} is not running ({key} missing in {SERVICES_FILE}); start it with: bash tests/services/up.sh")


def missing(message: str) -> NoReturn:
    """Something a test needs is absent: skip on a developer machine, FAIL in CI (``CI=true``)."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def slurm_backend_options() -> dict[str, Any]:
    """batchkit's Slurm backend options for the test cluster (with accounting)."""
    require_service("BATCHKIT_TEST_SLURM", "Slurm")
    info = services()
    options: dict[str, Any] = {}
    if info.get("BATCHKIT_TEST_SLURM_PARTITION"):
        options["partition"] = info["BATCHKIT_TEST_SLURM_PARTITION"]
    if info.get("BATCHKIT_TEST_SLURM_CONF"):
        options["env"] = {"SLURM_CONF": info["BATCHKIT_TEST_SLURM_CONF"]}
    return options


#: services.json keys that clients (gfal2/davix, the gfal-* tools) read from the environment
CLIENT_ENVIRONMENT = ("X509_CERT_DIR", "GFAL_PYTHONBIN")


@pytest.fixture(autouse=True, scope="session")
def _client_environment() -> None:
    """Export what storage clients need (trusted test CA, ...) unless the caller set it."""
    for key in CLIENT_ENVIRONMENT:
        value = services().get(key)
        if value and key not in os.environ:
            os.environ[key] = value


@pytest.fixture(autouse=True, scope="session")
def _local_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the local backend's run registry and slots out of the user's cache."""
    old = os.environ.get("BATCHKIT_LOCAL_STATE")
    os.environ["BATCHKIT_LOCAL_STATE"] = str(tmp_path_factory.mktemp("local-state"))
    yield
    if old is None:
        os.environ.pop("BATCHKIT_LOCAL_STATE", None)
    else:
        os.environ["BATCHKIT_LOCAL_STATE"] = old


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
