"""The transfer layer on the local filesystem: real files, real copies, real interrupts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import batchkit.fs as bfs
from batchkit.errors import FileExists, FileNotFound, TransferError, UnsupportedScheme
from batchkit.fs.base import TEMP_MARKER
from batchkit.fs.info import TransferProgress
from batchkit.fs.tree import copy_tree


def _temps(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if TEMP_MARKER in p.name]


def test_copy_creates_parents_and_verifies(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(100_000))
    dst = tmp_path / "a" / "b" / "dst.bin"
    result = bfs.copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert result.ok and result.size == 100_000 and result.checksum is None
    md5 = bfs.copy(src, dst, checksum="md5")
    assert md5.checksum == "md5:" + bfs.checksum(src, "md5")
    assert _temps(tmp_path) == []


def test_overwrite_and_no_clobber(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_text("new")
    dst.write_text("old content that is longer")
    bfs.copy(src, dst)
    assert dst.read_text() == "new"
    dst.write_text("keep")
    with pytest.raises(FileExists):
        bfs.copy(src, dst, overwrite=False)
    assert dst.read_text() == "keep"


def test_missing_source_and_directory_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFound) as info:
        bfs.copy(tmp_path / "nope", tmp_path / "x")
    assert str(tmp_path / "nope") in str(info.value)
    (tmp_path / "dir").mkdir()
    with pytest.raises(TransferError, match="is a directory"):
        bfs.copy(tmp_path / "dir", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_copy_many_reports_each_pair_and_continues(tmp_path: Path) -> None:
    good = []
    for i in range(20):
        path = tmp_path / f"in{i}"
        path.write_text(str(i) * (i + 1))
        good.append(path)
    pairs: list[tuple[object, object]] = [(p, tmp_path / "out" / p.name) for p in good]
    pairs.insert(5, (tmp_path / "missing", tmp_path / "out" / "missing"))
    pairs.insert(7, ("nosuch://host/x", tmp_path / "out" / "x"))
    reports: list[TransferProgress] = []
    results = bfs.copy_many(pairs, parallel=4, progress=reports.append)  # type: ignore[arg-type]
    assert [r.ok for r in results].count(False) == 2
    assert isinstance(results[5].error, FileNotFound)
    assert isinstance(results[7].error, UnsupportedScheme)
    for i in range(20):
        assert (tmp_path / "out" / f"in{i}").read_text() == str(i) * (i + 1)
    assert reports[-1].files_done == 20 and reports[-1].files_failed == 2 and reports[-1].files_total == 22
    assert _temps(tmp_path) == []


def test_interrupt_leaves_no_partial_file(tmp_path: Path) -> None:
    src = tmp_path / "big"
    with open(src, "wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # 64 MB: several 8 MB chunks
    dst = tmp_path / "out" / "big"

    def interrupt(progress: TransferProgress) -> None:
        if 0 < progress.bytes_done < 64 * 1024 * 1024:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bfs.copy(src, dst, progress=interrupt)
    assert not dst.exists()
    assert _temps(tmp_path) == []


def test_metadata_operations(tmp_path: Path) -> None:
    bfs.mkdir(tmp_path / "d" / "e")
    bfs.mkdir(tmp_path / "d" / "e")  # existing: fine
    (tmp_path / "d" / "f.txt").write_bytes(b"hello\n")
    info = bfs.stat(tmp_path / "d" / "f.txt")
    assert (info.size, info.is_dir, info.name) == (6, False, "f.txt")
    assert [e.name for e in bfs.listdir(tmp_path / "d")] == ["e", "f.txt"]
    assert bfs.checksum(tmp_path / "d" / "f.txt") == "084b021f"
    assert bfs.exists(f"file://{tmp_path}/d/e") and not bfs.exists(tmp_path / "zzz")
    with pytest.raises(TransferError, match="recursive"):
        bfs.remove(tmp_path / "d")
    bfs.remove(tmp_path / "d", recursive=True)
    assert not (tmp_path / "d").exists()
    bfs.remove(tmp_path / "d", missing_ok=True)
    with pytest.raises(FileNotFound):
        bfs.remove(tmp_path / "d")


def test_copy_tree(tmp_path: Path) -> None:
    (tmp_path / "src" / "a" / "b").mkdir(parents=True)
    (tmp_path / "src" / "empty").mkdir()
    (tmp_path / "src" / "top.txt").write_text("top")
    (tmp_path / "src" / "a" / "b" / "deep.txt").write_text("deep")
    results = copy_tree(tmp_path / "src", tmp_path / "dst")
    assert all(r.ok for r in results) and len(results) == 2
    assert (tmp_path / "dst" / "a" / "b" / "deep.txt").read_text() == "deep"
    assert (tmp_path / "dst" / "empty").is_dir()
