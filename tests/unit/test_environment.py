"""Shipping the software environment: a packed tarball unpacked once per node, a command prefix.

Everything runs for real: real tarballs, real jobs on the local backend, real lock races.
"""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import pytest

import batchkit as bk
from batchkit.backends.local import LocalFileFactory, read_exit_marker
from batchkit.environment import render_environment, tarball_digest
from batchkit.errors import SpecError

ACTIVATE = 'export PACKED_ENV=active\nPATH="$(cd "$(dirname "${BASH_SOURCE:-$0}")" && pwd):$PATH"\n'


def make_tarball(tmp_path: Path, unpack_log: Path) -> Path:
    """A conda-pack-like tarball: bin/activate, bin/conda-unpack (logs each run), bin/hello."""
    root = tmp_path / "env-src"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "activate").write_text(ACTIVATE)
    (root / "bin" / "hello").write_text('#!/bin/sh\necho "hello from the packed env"\n')
    (root / "bin" / "conda-unpack").write_text(f'#!/bin/sh\nsleep 0.5\necho "$PWD" >> {unpack_log}\n')
    for tool in ("hello", "conda-unpack"):
        (root / "bin" / tool).chmod(0o755)
    archive = tmp_path / "env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "bin", arcname="bin")
    return archive


def test_environment_values() -> None:
    env = bk.Environment.apptainer("/img.sif", binds=["/data", "/cvmfs"], tarball="https://x/env.tgz")
    assert env.command_prefix == ("apptainer", "exec", "--bind", "/data", "--bind", "/cvmfs", "/img.sif")
    assert bk.Environment.from_dict(env.to_dict()) == env
    with pytest.raises(SpecError, match="argv list"):
        bk.Environment(command_prefix="apptainer exec img")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="unknown field"):
        bk.Environment.from_dict({"image": "x"})
    with pytest.raises(SpecError, match="does not exist"):
        bk.Environment(tarball="/no/such/env.tgz").check()
    lines = render_environment(env)
    assert lines[0] == "BK_ENV_TARBALL=https://x/env.tgz"
    assert lines[-1] == 'bk_exec() { exec apptainer exec --bind /data --bind /cvmfs /img.sif "$@"; }'
    assert render_environment(None) == []


def test_digest_changes_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "e.tgz"
    path.write_bytes(b"one")
    first = tarball_digest(str(path))
    time.sleep(0.01)
    path.write_bytes(b"other")
    assert tarball_digest(str(path)) != first
    assert tarball_digest("root://a//env.tgz") == tarball_digest("root://a//env.tgz")


def test_tarball_unpacked_once_for_many_jobs(tmp_path: Path) -> None:
    unpack_log = tmp_path / "unpacked"
    archive = make_tarball(tmp_path, unpack_log)
    cache = tmp_path / "cache"
    os.environ["BATCHKIT_ENV_CACHE"] = str(cache)
    try:
        spec = bk.JobSpec(["sh", "-c", 'echo "$PACKED_ENV $(hello) $BATCHKIT_ENV_DIR"'])
        sub = bk.Submission.create(
            tmp_path / "sub",
            backend="local",
            specs=[spec] * 6,
            environment=bk.Environment(tarball=archive),
            backend_options={"max_parallel": 6},
        )
        assert sub.wait(poll_interval=0.2, timeout=120) == {"FINISHED": 6}
        outputs = {sub.job_files(i)["stdout"].read_text() for i in range(6)}
        sub.close()
    finally:
        del os.environ["BATCHKIT_ENV_CACHE"]
    target = cache / tarball_digest(str(archive))
    assert outputs == {f"active hello from the packed env {target}\n"}
    assert unpack_log.read_text().splitlines() == [str(target)]  # conda-unpack ran once, in place


def test_stale_lock_of_a_dead_job_is_removed(tmp_path: Path) -> None:
    archive = make_tarball(tmp_path, tmp_path / "unpacked")
    cache = tmp_path / "cache"
    lock = cache / f"{tarball_digest(str(archive))}.lock"
    lock.mkdir(parents=True)
    (lock / "owner").write_text(f"{os.uname().nodename} 999999\n")  # no such pid
    files = LocalFileFactory().create(
        [bk.JobSpec(["hello"])], tmp_path / "b", environment=bk.Environment(tarball=archive)
    )
    import subprocess

    env = {**os.environ, "BATCHKIT_ENV_CACHE": str(cache)}
    proc = subprocess.run(["/bin/sh", str(files.wrapper), str(files.directory), "0"], env=env, timeout=60)
    assert proc.returncode == 0
    assert files.log_paths(0)[0].read_text() == "hello from the packed env\n"
    assert "stale lock" in files.log_paths(0)[1].read_text()


def test_broken_tarball_fails_the_job_in_its_environment_step(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"not a tarball")
    os.environ["BATCHKIT_ENV_CACHE"] = str(tmp_path / "cache")
    try:
        sub = bk.Submission.create(
            tmp_path / "sub", backend="local", specs=[bk.JobSpec(["true"])], environment={"tarball": str(archive)}
        )
        sub.wait(poll_interval=0.2, timeout=60)
        job = sub.jobs[0]
        sub.close()
    finally:
        del os.environ["BATCHKIT_ENV_CACHE"]
    assert (job.status, job.exit_code) == (bk.JobStatus.FAILED, 244)
    assert "cannot unpack the environment" in (job.reason or "")
    assert not list((tmp_path / "cache").glob("*.lock"))  # no lock left behind


def test_command_prefix_runs_every_job_through_it(tmp_path: Path) -> None:
    log = tmp_path / "prefix.log"
    prefix = ["sh", "-c", f'echo "prefix saw $*" >> {log}; exec env INSIDE=yes "$@"', "prefix"]
    spec = bk.JobSpec(["sh", "-c", 'echo "$INSIDE $1"', "sh", "arg with space"])
    files = LocalFileFactory().create([spec, spec], tmp_path / "b", environment=bk.Environment(command_prefix=prefix))
    import subprocess

    for row in (0, 1):
        assert subprocess.run(["/bin/sh", str(files.wrapper), str(files.directory), str(row)]).returncode == 0
        assert files.log_paths(row)[0].read_text() == "yes arg with space\n"
    assert log.read_text().count("prefix saw sh -c") == 2
    marker = read_exit_marker(files.directory / "markers" / "1.exit")
    assert marker is not None and marker.exit_code == 0


def test_setup_script_and_environment_together(tmp_path: Path) -> None:
    setup = tmp_path / "setup.sh"
    setup.write_text("export FROM_SETUP=1\n")
    with pytest.raises(SpecError, match="not both"):
        bk.Submission.create(
            tmp_path / "s", backend="local", specs=[bk.JobSpec(["true"])], setup_script=setup,
            environment=bk.Environment(setup_script=setup),
        )  # fmt: skip
    sub = bk.Submission.create(
        tmp_path / "s", backend="local", specs=[bk.JobSpec(["sh", "-c", "echo $FROM_SETUP"])], setup_script=setup
    )
    setup.write_text("export FROM_SETUP=changed-later\n")  # the submission shipped its own copy
    sub.wait(poll_interval=0.2, timeout=60)
    assert sub.job_files(0)["stdout"].read_text() == "1\n"
    assert sub.environment.setup_script == str(tmp_path / "s" / "setup.sh")
    sub.close()
