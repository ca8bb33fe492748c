"""``batchkit cp|ls|rm|stat`` as real processes, and the job wrapper staging through them."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

pytest.register_assert_rewrite("fs_helpers")  # it is loaded as a plugin too (pytest_plugins below)
from fs_helpers import Endpoint, temps_under, write_random  # noqa: E402

import batchkit as bk  # noqa: E402

pytest_plugins = ["fs_helpers"]
pytestmark = pytest.mark.usefixtures("fresh_fs_registry")


def bk_cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, BATCHKIT_FS_BACKOFF="0.1")
    return subprocess.run(
        [sys.executable, "-m", "batchkit", *args], input=stdin, capture_output=True, cwd=cwd, env=env, timeout=300
    )


def test_wrapper_form_both_directions(root_endpoint: Endpoint, tmp_path: Path) -> None:
    """Exactly what the job wrapper runs: ``python -m batchkit cp -- SRC DST``."""
    data = write_random(tmp_path / "out.root", 70_000)
    up = bk_cli("cp", "--", "out.root", root_endpoint.join("job", "out.root"), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert up.stdout == b"" and up.stderr == b""  # quiet: the wrapper's log is not a terminal
    assert (root_endpoint.disk / "job" / "out.root").read_bytes() == data
    down = bk_cli("cp", "--", root_endpoint.join("job", "out.root"), "in.root", cwd=tmp_path / "..")
    assert down.returncode == 0, down.stderr
    assert (tmp_path.parent / "in.root").read_bytes() == data


def test_errors_are_one_line_with_exit_code_2(dav_endpoint: Endpoint, tmp_path: Path) -> None:
    missing = bk_cli("cp", "--", dav_endpoint.join("nope"), str(tmp_path / "x"))
    assert missing.returncode == 2
    lines = missing.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("batchkit: error: ") and "404" in lines[0]
    assert "Traceback" not in missing.stderr.decode()
    assert not (tmp_path / "x").exists()
    bad = bk_cli("cp", "--", str(tmp_path), "nosuch://h/x")
    assert bad.returncode == 2 and b"unknown URL scheme" in bad.stderr
    nohost = bk_cli("ls", "root:///x")
    assert nohost.returncode == 2 and b"missing host" in nohost.stderr


def test_many_sources_recursive_parallel_ls_stat_rm(
    root_endpoint: Endpoint, dav_endpoint: Endpoint, tmp_path: Path
) -> None:
    for i in range(30):
        write_random(tmp_path / "tree" / f"d{i % 3}" / f"f{i}.dat", 500 + i)
    write_random(tmp_path / "single.txt", 10)
    proc = bk_cli(
        "cp", "-r", "--parallel", "4", str(tmp_path / "tree"), str(tmp_path / "single.txt"), root_endpoint.url + "/"
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(root_endpoint.disk)) == ["single.txt", "tree"]
    assert len(list((root_endpoint.disk / "tree").rglob("*.dat"))) == 30
    # remote -> remote, recursively (through a local relay), into a new directory
    proc = bk_cli("cp", "-r", root_endpoint.join("tree"), dav_endpoint.join("copy"))
    assert proc.returncode == 0, proc.stderr
    assert (dav_endpoint.disk / "copy" / "d1" / "f1.dat").read_bytes() == (
        tmp_path / "tree" / "d1" / "f1.dat"
    ).read_bytes()

    listing = bk_cli("ls", root_endpoint.url)
    assert listing.stdout.decode().split() == ["single.txt", "tree/"]
    long = bk_cli("ls", "-l", root_endpoint.join("tree", "d0"))
    assert all(line.startswith("- ") for line in long.stdout.decode().splitlines()) and b"f0.dat" in long.stdout
    stat = bk_cli("stat", "--checksum", "adler32", root_endpoint.join("single.txt"))
    adler = f"{zlib.adler32((tmp_path / 'single.txt').read_bytes()):08x}"
    assert stat.returncode == 0 and b"type:  file" in stat.stdout and f"adler32: {adler}".encode() in stat.stdout

    refused = bk_cli("rm", root_endpoint.join("tree"))
    assert refused.returncode == 2 and b"recursive" in refused.stderr
    assert bk_cli("rm", "-r", root_endpoint.join("tree"), dav_endpoint.join("copy")).returncode == 0
    assert not (root_endpoint.disk / "tree").exists() and not (dav_endpoint.disk / "copy").exists()
    assert bk_cli("rm", root_endpoint.join("tree")).returncode == 2
    assert bk_cli("rm", "-f", root_endpoint.join("tree")).returncode == 0


def test_partial_failure_exit_code_1(root_endpoint: Endpoint, tmp_path: Path) -> None:
    write_random(tmp_path / "a", 10)
    proc = bk_cli("cp", str(tmp_path / "a"), str(tmp_path / "missing"), root_endpoint.url + "/")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "missing" in err and "1 of 2 files failed" in err
    assert (root_endpoint.disk / "a").exists()


def test_stdin_and_stdout(dav_endpoint: Endpoint) -> None:
    payload = os.urandom(300_000)
    up = bk_cli("cp", "-", dav_endpoint.join("from-stdin.bin"), stdin=payload)
    assert up.returncode == 0, up.stderr
    assert (dav_endpoint.disk / "from-stdin.bin").read_bytes() == payload
    down = bk_cli("cp", dav_endpoint.join("from-stdin.bin"), "-")
    assert down.returncode == 0 and down.stdout == payload


def test_progress_bar_on_request(root_endpoint: Endpoint, tmp_path: Path) -> None:
    source = tmp_path / "big"
    with open(source, "wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    proc = bk_cli("cp", "--progress", str(source), root_endpoint.join("big"))
    assert proc.returncode == 0, proc.stderr
    assert b"100%" in proc.stderr and b"1/1 files" in proc.stderr and proc.stderr.endswith(b"\n")


def test_job_stages_inputs_and_outputs_through_the_wrapper(
    root_endpoint: Endpoint, dav_endpoint: Endpoint, tmp_path: Path
) -> None:
    """A real job (local backend): stage-in from root://, stage-out to dav://, via the wrapper."""
    for i in range(2):
        (tmp_path / f"in{i}.txt").write_text(f"input {i}\n")
        bk_cli("cp", "--", str(tmp_path / f"in{i}.txt"), root_endpoint.join(f"in{i}.txt"))
    specs = [
        bk.JobSpec(
            ["sh", "-c", "tr a-z A-Z < in.txt > out.txt"],
            inputs={"in.txt": root_endpoint.join("in{index}.txt")},
            outputs={"out.txt": dav_endpoint.join("results", "out{index}.txt")},
        )
        for _ in range(2)
    ]
    sub = bk.Submission.create(tmp_path / "sub", backend="local", specs=specs)
    counts = sub.wait(poll_interval=0.2, timeout=120)
    assert counts.get("FINISHED") == 2, (counts, [j for j in sub.jobs])
    for i in range(2):
        assert (dav_endpoint.disk / "results" / f"out{i}.txt").read_text() == f"INPUT {i}\n"
    assert temps_under(dav_endpoint.disk) == []


def test_job_stage_in_failure_is_reported(root_endpoint: Endpoint, tmp_path: Path) -> None:
    spec = bk.JobSpec(["true"], inputs={"in.txt": root_endpoint.join("does-not-exist")})
    sub = bk.Submission.create(tmp_path / "sub", backend="local", specs=[spec])
    counts = sub.wait(poll_interval=0.2, timeout=120)
    assert counts.get("FAILED") == 1
    (job,) = sub.jobs
    assert job.exit_code == 241  # the wrapper's "stage-in failed"
    logs = "".join(p.read_text() for p in (tmp_path / "sub").rglob("*.err"))
    assert "no such file" in logs and "does-not-exist" in logs


def test_pairs_in_one_bulk_call(root_endpoint: Endpoint, dav_endpoint: Endpoint, tmp_path: Path) -> None:
    data = {i: write_random(tmp_path / f"in {i}.bin", 1000 + i) for i in range(5)}
    lines = [f"{tmp_path / f'in {i}.bin'}\t{root_endpoint.join(f'r{i}.bin')}" for i in range(3)]
    lines += [f"{tmp_path / f'in {i}.bin'}\t{dav_endpoint.join('sub', f'd{i}.bin')}" for i in range(3, 5)]
    lines.append(f"{tmp_path / 'missing'}\t{root_endpoint.join('missing')}")
    proc = bk_cli("cp", "--pairs", "-", stdin=("\n".join(lines) + "\n").encode())
    assert proc.returncode == 1 and b"1 of 6 files failed" in proc.stderr
    for i in range(3):
        assert (root_endpoint.disk / f"r{i}.bin").read_bytes() == data[i]
    for i in range(3, 5):
        assert (dav_endpoint.disk / "sub" / f"d{i}.bin").read_bytes() == data[i]
    (tmp_path / "list").write_text("\n".join(lines[:5]) + "\n")
    assert bk_cli("cp", "--pairs", str(tmp_path / "list")).returncode == 0


def test_job_stages_many_files_in_one_bulk_call_per_direction(
    root_endpoint: Endpoint, dav_endpoint: Endpoint, tmp_path: Path
) -> None:
    """Three remote inputs, two remote outputs and a remote output directory: one cp per direction."""
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(f"content {name}\n")
        bk_cli("cp", "--", str(tmp_path / name), root_endpoint.join("bulk", name))
    script = "cat a b c > joined.txt; wc -l < joined.txt > count.txt; mkdir plots; echo p > plots/p1.txt"
    spec = bk.JobSpec(
        ["sh", "-c", script],
        inputs={n: root_endpoint.join("bulk", n) for n in ("a", "b", "c")},
        outputs={
            "joined.txt": dav_endpoint.join("bulkout", "joined_{index}.txt"),
            "count.txt": root_endpoint.join("bulkout", "count_{index}.txt"),
            "plots": dav_endpoint.join("bulkout", "plots_{index}"),
        },
    )
    sub = bk.Submission.create(tmp_path / "sub", backend="local", specs=[spec])
    assert sub.wait(poll_interval=0.2, timeout=120) == {"FINISHED": 1}, sub.jobs
    assert (dav_endpoint.disk / "bulkout" / "joined_0.txt").read_text() == "content a\ncontent b\ncontent c\n"
    assert (root_endpoint.disk / "bulkout" / "count_0.txt").read_text().strip() == "3"
    assert (dav_endpoint.disk / "bulkout" / "plots_0" / "p1.txt").read_text() == "p\n"
    log = sub.job_files(0)["stderr"].read_text()
    assert "stage-in: copying 3 remote file(s) in one call" in log
    assert "stage-out: copying 2 remote file(s) in one call" in log
    sub.close()
