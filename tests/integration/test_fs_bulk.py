"""Many files at once through each protocol's bulk path, and gfal2 as the fallback implementation."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("fs_helpers")  # it is loaded as a plugin too (pytest_plugins below)
from fs_helpers import Endpoint, make_endpoint, temps_under, write_random  # noqa: E402

import batchkit.fs as bfs  # noqa: E402
from batchkit.errors import FileNotFound  # noqa: E402
from batchkit.fs import TransferProgress, registry  # noqa: E402
from batchkit.fs.tree import copy_tree  # noqa: E402

# davs:// gets a smaller batch: TLS per request is slower, and XrdHttp checksums each file
BULK = {"root": 200, "dav": 200, "xrdhttp": 30, "ftp": 30}

pytest_plugins = ["fs_helpers"]
pytestmark = pytest.mark.usefixtures("fresh_fs_registry")


@pytest.fixture(params=list(BULK))
def bulk_endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    ep = make_endpoint(request.param)
    yield ep
    shutil.rmtree(ep.disk, ignore_errors=True)


def test_copy_many_both_ways(bulk_endpoint: Endpoint, tmp_path: Path) -> None:
    count = BULK[bulk_endpoint.name]
    payloads = {f"f{i:03d}.dat": write_random(tmp_path / "src" / f"f{i:03d}.dat", 1000 + i) for i in range(count)}
    pairs: list[tuple[object, object]] = [(tmp_path / "src" / n, bulk_endpoint.join("bulk", n)) for n in payloads]
    pairs.insert(3, (tmp_path / "src" / "missing.dat", bulk_endpoint.join("bulk", "missing.dat")))
    reports: list[TransferProgress] = []
    results = bfs.copy_many(pairs, parallel=8, progress=reports.append)  # type: ignore[arg-type]
    assert len(results) == count + 1
    assert isinstance(results[3].error, FileNotFound) and str(tmp_path / "src" / "missing.dat") in str(results[3].error)
    assert all(r.ok for i, r in enumerate(results) if i != 3)
    for name, data in payloads.items():
        assert (bulk_endpoint.disk / "bulk" / name).read_bytes() == data
    if bulk_endpoint.adler32:
        assert results[0].checksum == f"adler32:{zlib.adler32(payloads['f000.dat']):08x}"
    assert reports[-1].files_done == count and reports[-1].files_failed == 1
    assert temps_under(bulk_endpoint.disk) == []

    back = [(bulk_endpoint.join("bulk", n), tmp_path / "back" / n) for n in payloads]
    back.append((bulk_endpoint.join("bulk", "missing.dat"), tmp_path / "back" / "missing.dat"))
    results = bfs.copy_many(back, parallel=8)  # type: ignore[arg-type]
    assert [r.ok for r in results].count(False) == 1 and isinstance(results[-1].error, FileNotFound)
    for name, data in payloads.items():
        assert (tmp_path / "back" / name).read_bytes() == data
    assert temps_under(tmp_path) == []


def test_tree_copy_to_xrootd_and_back(tmp_path: Path) -> None:
    endpoint = make_endpoint("root")
    try:
        for rel in ("a/1.txt", "a/b/2.txt", "c/3.txt"):
            write_random(tmp_path / "tree" / rel, 100)
        (tmp_path / "tree" / "empty").mkdir()
        results = copy_tree(tmp_path / "tree", endpoint.join("tree"))
        assert len(results) == 3 and all(r.ok for r in results)
        assert (endpoint.disk / "tree" / "empty").is_dir()
        results = copy_tree(endpoint.join("tree"), tmp_path / "copy")
        assert all(r.ok for r in results)
        for rel in ("a/1.txt", "a/b/2.txt", "c/3.txt"):
            assert (tmp_path / "copy" / rel).read_bytes() == (tmp_path / "tree" / rel).read_bytes()
        assert (tmp_path / "copy" / "empty").is_dir()
        bfs.remove(endpoint.join("tree"), recursive=True)
        assert not (endpoint.disk / "tree").exists()
    finally:
        shutil.rmtree(endpoint.disk, ignore_errors=True)


@pytest.mark.parametrize("name", ["root", "dav"])
def test_gfal2_as_the_implementation(name: str, tmp_path: Path) -> None:
    """gfal2 serves root:// and dav:// too (the fallback when xrootd/urllib3 are missing).

    Not davs://: davix spends ~40 ms per request over TLS (and far more on a loaded machine),
    which is why batchkit has its own WebDAV client.
    """
    endpoint = make_endpoint(name)
    from fs_helpers import _gfal2_or_skip

    _gfal2_or_skip()
    from batchkit.fs.gfal import GfalFileSystem

    registry.register_filesystem(endpoint.url.split("://")[0], GfalFileSystem)
    try:
        assert isinstance(registry.get_filesystem(endpoint.url.split("://")[0]), GfalFileSystem)
        data = write_random(tmp_path / "f", 300_000)
        result = bfs.copy(tmp_path / "f", endpoint.join("g", "f"))
        assert result.checksum == (f"adler32:{zlib.adler32(data):08x}" if endpoint.adler32 else None)
        assert (endpoint.disk / "g" / "f").read_bytes() == data
        pairs = [(tmp_path / "f", endpoint.join("g", f"many{i}")) for i in range(5)]
        assert all(r.ok for r in bfs.copy_many(pairs))  # one gfal2 list filecopy
        assert sorted(p.name for p in (endpoint.disk / "g").glob("many*")) == [f"many{i}" for i in range(5)]
        bfs.copy(endpoint.join("g", "f"), tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == data
        assert {e.name for e in bfs.listdir(endpoint.join("g"))} == {"f", *(f"many{i}" for i in range(5))}
        bfs.remove(endpoint.join("g"), recursive=True)
        assert not (endpoint.disk / "g").exists()
        assert temps_under(endpoint.disk) == []
    finally:
        registry.reset()
        shutil.rmtree(endpoint.disk, ignore_errors=True)


def test_a_gfal2_context_leaves_the_callers_signal_mask_alone() -> None:
    """gfal2.creat_context blocks nearly every signal in the calling thread; ours restores the mask.

    Otherwise Ctrl+C stops working and every process started afterwards (local-backend jobs,
    ``law run``) inherits SIGTERM and SIGINT blocked.
    """
    import signal
    import threading

    from fs_helpers import _gfal2_or_skip

    _gfal2_or_skip()
    from batchkit.fs.gfal import GfalFileSystem

    masks: list[set[signal.Signals]] = []

    def create() -> None:  # a fresh thread: the fs object keeps one context per thread
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        GfalFileSystem().context()
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    thread = threading.Thread(target=create)
    thread.start()
    thread.join()
    assert len(masks) == 2 and masks[0] == masks[1]
    assert signal.SIGTERM not in masks[1] and signal.SIGINT not in masks[1]
