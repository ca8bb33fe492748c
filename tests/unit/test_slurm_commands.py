"""Slurm command lines, resource mapping and array planning (pure; no scheduler involved).

The file-factory tests run the generated batch script for real with ``/bin/sh`` (as slurmd
would, with ``SLURM_ARRAY_TASK_ID`` set) to prove the task id reaches the right row.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import batchkit as bk
from batchkit.backends.local import read_exit_marker
from batchkit.backends.slurm import SlurmJobManager, read_plan
from batchkit.backends.slurm_commands import (
    MAX_ARGUMENT_CHARS,
    array_name,
    join_chunks,
    plan_arrays,
    sacct_argv,
    scancel_argvs,
    scancel_targets,
    share_throttle,
    squeue_argv,
)
from batchkit.backends.slurm_options import (
    SlurmSiteOptions,
    check_submit_options,
    normalise_sbatch_options,
    resource_args,
    walltime_minutes,
)
from batchkit.errors import SpecError
from batchkit.jobfiles import build_rows
from batchkit.model import Resources


# ----------------------------------------------------------------------------- resources
def test_resources_round_up_to_slurm_units() -> None:
    args = resource_args(Resources(cpus=4, memory="2GB", walltime=90, gpus=2, disk="1GiB"))
    assert args == ["--cpus-per-task=4", "--mem=1908M", "--time=2", "--gpus=2", "--tmp=1024M"]
    assert resource_args(Resources(memory="2GiB", walltime="1h")) == ["--cpus-per-task=1", "--mem=2048M", "--time=60"]
    assert resource_args(Resources(gpus=1), gpu_option="gres") == ["--cpus-per-task=1", "--gres=gpu:1"]
    assert resource_args(Resources()) == ["--cpus-per-task=1"]
    # 0 would mean "all memory" / "no time limit" to Slurm
    assert resource_args(Resources(memory=0, walltime=0)) == ["--cpus-per-task=1", "--mem=1M", "--time=1"]


@pytest.mark.parametrize(("seconds", "minutes"), [(1, 1), (59, 1), (60, 1), (61, 2), (90, 2), (3600, 60), (3601, 61)])
def test_walltime_is_whole_minutes_rounded_up(seconds: int, minutes: int) -> None:
    assert walltime_minutes(seconds) == minutes


# ----------------------------------------------------------------------------- options
def test_site_options_and_passthrough() -> None:
    site = SlurmSiteOptions(partition="debug", account="cms", qos="long", constraint="avx2", reservation="r1",
                            sbatch_options={"exclusive": True, "mail-type": "END", "requeue": False})  # fmt: skip
    assert site.sbatch_args() == [
        "--partition=debug",
        "--account=cms",
        "--qos=long",
        "--constraint=avx2",
        "--reservation=r1",
        "--exclusive",
        "--mail-type=END",
    ]
    job = site.merged({"partition": "gpu", "sbatch_options": ["--hold"]}, "job 3")
    assert job.sbatch_args()[0] == "--partition=gpu" and job.sbatch_args()[-1] == "--hold"
    assert site.merged({}, "job 0") is site


@pytest.mark.parametrize(
    "bad",
    [
        {"partition": 3},
        {"partition": "a\nb"},
        {"gpu_option": "cuda"},
        {"sbatch_options": "--exclusive"},
        {"sbatch_options": ["exclusive"]},
        {"sbatch_options": ["--array=0-3"]},
        {"sbatch_options": {"job-name": "x"}},
        {"sbatch_options": ["--mem=1G"]},
        {"sbatch_options": {"bad name": 1}},
        {"queue": "long"},
    ],
)
def test_bad_options_are_spec_errors(bad: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        SlurmSiteOptions().merged(bad, "test")


def test_manager_options_are_validated() -> None:
    with pytest.raises(SpecError, match="unexpected keyword"):
        bk.get_job_manager("slurm", queue="long")
    for bad in ({"env": {"A": 1}}, {"max_array_size": 0}, {"accounting": "yes"}, {"command_retries": -1}):
        with pytest.raises(SpecError):
            bk.get_job_manager("slurm", **bad)
    with pytest.raises(SpecError):
        bk.get_job_manager("slurm", sbatch_options=["--parsable"])
    assert normalise_sbatch_options(None) == ()


def test_submit_options() -> None:
    assert check_submit_options({}, ("parallel_jobs", "group")) is None
    assert check_submit_options({"parallel_jobs": 5, "group": "x"}, ("parallel_jobs", "group")) == 5
    with pytest.raises(SpecError, match="unknown submit option"):
        check_submit_options({"priority": 1}, ("parallel_jobs",))
    with pytest.raises(SpecError):
        check_submit_options({"parallel_jobs": 0}, ("parallel_jobs",))


# ----------------------------------------------------------------------------- arrays
def rows(n: int, **resources: object) -> list[bk.JobSpec]:
    return [bk.JobSpec(["true"], resources=dict(resources)) for _ in range(n)]


def test_homogeneous_batch_is_one_array() -> None:
    (array,) = plan_arrays(build_rows(rows(200)), SlurmSiteOptions(), max_array_size=1001)
    assert array.array_spec() == "0-199" and array.offset == 0 and array.number == 0
    assert array.job_id("77", 199) == "77_199"
    (capped,) = plan_arrays(build_rows(rows(200)), SlurmSiteOptions(), 1001, parallel_jobs=10)
    assert capped.array_spec() == "0-199%10"
    (uncapped,) = plan_arrays(build_rows(rows(5)), SlurmSiteOptions(), 1001, parallel_jobs=10)
    assert uncapped.array_spec() == "0-4"  # a cap above the array size is left out


def test_rows_with_different_requests_go_to_different_arrays() -> None:
    specs = []
    for i in range(10):
        options = {"partition": "gpu"} if i in (7, 8) else {}
        specs.append(bk.JobSpec(["true"], resources={"cpus": 2 if i % 2 else 1}, backend_options=options))
    arrays = plan_arrays(build_rows(specs), SlurmSiteOptions(partition="debug"), 1001)
    got = [(a.array_spec(), a.offset, a.sbatch_args) for a in arrays]
    assert got == [
        ("0,2,4,6", 0, ("--cpus-per-task=1", "--partition=debug")),
        ("0,2,4,8", 1, ("--cpus-per-task=2", "--partition=debug")),
        ("0", 7, ("--cpus-per-task=2", "--partition=gpu")),
        ("0", 8, ("--cpus-per-task=1", "--partition=gpu")),
    ]
    covered = sorted(r for a in arrays for r in a.rows)
    assert covered == list(range(10))


def test_unknown_per_job_option_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"unknown option\(s\) \['queue'\] in backend_options of job 0"):
        plan_arrays(build_rows([bk.JobSpec(["true"], backend_options={"queue": "x"})]), SlurmSiteOptions(), 1001)


def test_split_by_max_array_size_and_range_count() -> None:
    arrays = plan_arrays(build_rows(rows(250)), SlurmSiteOptions(), max_array_size=100)
    assert [(a.offset, a.array_spec()) for a in arrays] == [(0, "0-99"), (100, "0-99"), (200, "0-49")]
    assert all(max(a.task_ids) <= 99 for a in arrays)
    specs = [bk.JobSpec(["true"], resources={"cpus": 1 + i % 2}) for i in range(20)]
    many = plan_arrays(build_rows(specs), SlurmSiteOptions(), 1001, max_ranges=3)
    assert [len(a.rows) for a in many] == [3, 3, 3, 3, 3, 3, 1, 1]
    assert sorted(r for a in many for r in a.rows) == list(range(20))


def test_parallel_jobs_shared_among_arrays() -> None:
    arrays = plan_arrays(build_rows(rows(250)), SlurmSiteOptions(), max_array_size=100, parallel_jobs=10)
    assert [a.throttle for a in arrays] == [4, 4, 2]
    assert share_throttle(None, [5, 5]) == [None, None]
    assert share_throttle(2, [100, 100, 100]) == [1, 1, 1]  # more arrays than the cap: 1 each
    assert share_throttle(50, [10, 90]) == [5, 45]


# ----------------------------------------------------------------------------- command lines
def test_query_and_cancel_command_lines() -> None:
    assert sacct_argv("12,13", "2026-11-25T10:00:00") == [
        "sacct", "-X", "-P", "-n", "--starttime=2026-11-25T10:00:00",
        "--format=JobID,JobIDRaw,State,ExitCode,Reason,JobName", "--jobs=12,13",
    ]  # fmt: skip
    assert squeue_argv(names="t-a0,t-a1")[-1] == "--name=t-a0,t-a1"
    assert "-t" in squeue_argv("5") and squeue_argv("5")[-1] == "--jobs=5"
    ids = [f"12_{t}" for t in (*range(100), 105)] + ["13_4", "14", "14_2", "junk"]
    assert scancel_targets(ids) == ["14", "12_[0-99,105]", "13_4"]
    assert scancel_argvs(ids) == [["scancel", "14", "12_[0-99,105]", "13_4"]]
    assert scancel_argvs([]) == []
    huge = [f"{1000 + i}_0" for i in range(200_000)]
    argvs = scancel_argvs(huge)
    assert len(argvs) > 1 and sum(len(a) - 1 for a in argvs) == 200_000


def test_join_chunks_keeps_arguments_short() -> None:
    items = [str(10**6 + i) for i in range(50_000)]
    chunks = join_chunks(items)
    assert all(len(c) <= MAX_ARGUMENT_CHARS for c in chunks)
    assert ",".join(chunks).split(",") == items
    assert join_chunks([]) == []


# ----------------------------------------------------------------------------- the file factory
def test_factory_writes_array_scripts_that_run_the_right_rows(tmp_path: Path) -> None:
    """Dry run (max_array_size given: Slurm is never asked), then run each script like slurmd."""
    manager = SlurmJobManager(partition="debug", max_array_size=3)
    out = tmp_path / "out"
    specs = [bk.JobSpec(["sh", "-c", 'echo "$0" > "$1"', "{index}", f"{out}.{{index}}"]) for _ in range(7)]
    files = manager.file_factory.create(specs, tmp_path / "batch", indices=range(10, 17), tag="bkt.0",
                                        options={"parallel_jobs": 2, "group": "g"})  # fmt: skip
    plan = read_plan(files.directory)
    assert plan is not None and plan.tag == "bkt.0"
    assert [(a.offset, a.array_spec()) for a in plan.arrays] == [(0, "0-2%1"), (3, "0-2%1"), (6, "0")]
    assert [p.name for p in files.submit_files] == ["array-0.sh", "array-1.sh", "array-2.sh"]
    argv = [a for a in (files.directory / "slurm" / "arrays.json").read_text().split('"') if a.startswith("--")]
    assert f"--job-name={array_name('bkt.0', 1)}" in argv and "--partition=debug" in argv
    for array, script in zip(plan.arrays, files.submit_files):
        for task in array.task_ids:
            env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(task)}
            subprocess.run(["/bin/sh", str(script)], env=env, check=True, timeout=30)
    for row in range(7):
        index = 10 + row
        assert Path(f"{out}.{index}").read_text() == f"{index}\n"
        marker = read_exit_marker(files.directory / "markers" / f"{index}.exit")
        assert marker is not None and marker.exit_code == 0


def test_factory_refuses_tags_that_break_name_lists(tmp_path: Path) -> None:
    manager = SlurmJobManager(max_array_size=100)
    with pytest.raises(SpecError, match="batch tag"):
        manager.file_factory.create(rows(1), tmp_path / "b", tag="a,b")
    with pytest.raises(SpecError, match="unknown submit option"):
        manager.file_factory.create(rows(1), tmp_path / "c", options={"nice": 1})
