"""The backend registry: built-ins, run-time registration, entry points, helpful errors."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import batchkit as bk
from batchkit.backends.local import LocalJobManager
from batchkit.errors import MissingDependencyError, UnknownBackendError, UserError
from batchkit.registry import available_backends, get_backend_class


def test_builtin_local() -> None:
    mgr = bk.get_job_manager("local", max_parallel=2)
    assert isinstance(mgr, LocalJobManager)
    assert mgr.max_parallel == 2
    assert {"local", "slurm", "htcondor"} <= set(available_backends())


def test_unknown_backend_lists_known() -> None:
    with pytest.raises(UnknownBackendError, match=r"known backends: .*local"):
        bk.get_job_manager("pbs-pro-9000")


def test_bad_option_is_a_user_error() -> None:
    with pytest.raises(UserError):
        bk.get_job_manager("local", max_parallel=0)


@pytest.fixture
def plugin_dist(tmp_path: Path) -> Iterator[Path]:
    """A real installed-looking distribution that declares two entry points."""
    pkg = tmp_path / "bkplugin_demo.py"
    pkg.write_text(
        textwrap.dedent(
            """
            from batchkit.backends.local import LocalJobManager

            class DemoManager(LocalJobManager):
                name = "demo-plugin"
            """
        )
    )
    info = tmp_path / "bkplugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bkplugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[batchkit.backends]\ndemo-plugin = bkplugin_demo:DemoManager\nbroken-plugin = bkplugin_missing_xyz:Manager\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("bkplugin_demo", None)


def test_entry_point_backend(plugin_dist: Path) -> None:
    assert "demo-plugin" in available_backends()
    cls = get_backend_class("demo-plugin")
    assert cls.name == "demo-plugin"
    assert isinstance(bk.get_job_manager("demo-plugin"), LocalJobManager)


def test_broken_entry_point_says_what_to_install(plugin_dist: Path) -> None:
    with pytest.raises(MissingDependencyError, match="bkplugin-demo"):
        get_backend_class("broken-plugin")


def test_runtime_registration() -> None:
    bk.register_backend("mine", "batchkit.backends.local:LocalJobManager")
    assert get_backend_class("mine") is LocalJobManager
    bk.register_backend("missing", "no_such_module_xyz:Manager")
    with pytest.raises(MissingDependencyError, match="pip install"):
        get_backend_class("missing")
