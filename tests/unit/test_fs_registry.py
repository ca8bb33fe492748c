"""Scheme registry: lazy lookup, run-time registration, refusals, missing dependencies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit.errors import MissingDependencyError, UnsupportedScheme
from batchkit.fs import registry
from batchkit.fs.local import LocalFileSystem


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    registry.reset()
    yield
    registry.reset()


def test_file_scheme_is_local_and_shared() -> None:
    fs = registry.get_filesystem("file")
    assert isinstance(fs, LocalFileSystem)
    assert registry.get_filesystem("FILE") is fs


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(UnsupportedScheme, match=r"unknown URL scheme 'nosuch'.*root"):
        registry.get_filesystem("nosuch")


def test_sftp_is_refused_with_the_reason() -> None:
    with pytest.raises(UnsupportedScheme, match="truncates"):
        registry.get_filesystem("sftp")


def test_runtime_registration_of_a_class_path() -> None:
    registry.register_filesystem("mylocal", "batchkit.fs.local:LocalFileSystem")
    assert isinstance(registry.get_filesystem("mylocal"), LocalFileSystem)
    assert "mylocal" in registry.known_schemes()


def test_runtime_registration_of_an_instance() -> None:
    fs = LocalFileSystem()
    registry.register_filesystem("other", fs)
    assert registry.get_filesystem("other") is fs


def test_missing_dependency_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # make both candidate implementations for root:// unimportable, as on a machine without them
    monkeypatch.setitem(sys.modules, "XRootD", None)
    monkeypatch.setitem(sys.modules, "gfal2", None)
    monkeypatch.delitem(sys.modules, "batchkit.fs.xrootd", raising=False)
    monkeypatch.delitem(sys.modules, "batchkit.fs.gfal", raising=False)
    with pytest.raises(MissingDependencyError) as info:
        registry.get_filesystem("root")
    message = str(info.value)
    assert "pip install 'batchkit[xrootd]'" in message
    assert "python3-gfal2" in message
    with pytest.raises(MissingDependencyError, match="batchkit\\[webdav\\]"):
        monkeypatch.setitem(sys.modules, "urllib3", None)
        monkeypatch.delitem(sys.modules, "batchkit.fs.webdav", raising=False)
        registry.get_filesystem("davs")
    with pytest.raises(MissingDependencyError, match="gfal2"):
        registry.get_filesystem("gsiftp")


def test_entry_points_are_consulted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real (if tiny) installed distribution declaring a ``batchkit.filesystems`` entry point."""
    dist = tmp_path / "thirdparty_fs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-fs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[batchkit.filesystems]\nthirdparty = batchkit.fs.local:LocalFileSystem\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "thirdparty" in registry.known_schemes()
    assert isinstance(registry.get_filesystem("thirdparty"), LocalFileSystem)
