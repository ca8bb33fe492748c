"""The law adapter's pure parts: job ids, status mapping, round files, the job file factory.

Everything here uses the real ``law`` package (no stand-ins); nothing is submitted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from batchkit_law import status as law_status_module
from batchkit_law.files import (
    ENV_FILE_POSTFIX,
    ENV_JOB_NUM,
    ENV_LOG_FILE,
    BatchkitJobFileFactory,
    job_postfix,
    job_spec,
    round_tag,
)
from batchkit_law.job_id import LawJobId, parse_law_job_id
from batchkit_law.manager import BatchkitJobManager
from batchkit_law.round import Round, RoundJob, read_round
from batchkit_law.status import law_status
from law.job.base import BaseJobManager, JobInputFile
from law.util import law_src_path
from law.workflow.remote import JobData

from batchkit.backends.local import ExitMarker
from batchkit.backends.slurm_commands import TAG_RE
from batchkit.errors import JobFileError, SpecError
from batchkit.model import JobInfo, JobSpec, JobStatus

# ----------------------------------------------------------------------------- job ids


def test_job_id_text_round_trips_through_json_and_cast_job_id() -> None:
    job = LawJobId("4711_3", "/scratch/a@b/dir#x/round_2", 7)
    text = str(job)
    assert text == "4711_3@/scratch/a@b/dir#x/round_2#7"
    loaded = json.loads(json.dumps({"job_id": text}))["job_id"]
    assert BatchkitJobManager.cast_job_id(loaded) == text
    assert parse_law_job_id(BatchkitJobManager.cast_job_id(loaded)) == job
    assert job.exit_marker == Path("/scratch/a@b/dir#x/round_2/markers/7.exit")
    assert job.stdout_log == Path("/scratch/a@b/dir#x/round_2/logs/7.out")


@pytest.mark.parametrize(
    "text",
    ["dummy_job_id", None, 4711, "4711@/d#", "4711@relative/dir#1", "@/d#1", "4711@/d#x", "47 11@/d#1"],
)
def test_parse_rejects_what_is_not_a_batchkit_law_id(text: object) -> None:
    with pytest.raises(SpecError):
        parse_law_job_id(text)


def test_a_scheduler_id_with_at_sign_is_refused_when_the_id_is_made() -> None:
    with pytest.raises(SpecError, match="@"):
        LawJobId("a@b", "/d", 1)


def test_cast_job_id_keeps_none_and_law_dummy_ids() -> None:
    assert BatchkitJobManager.cast_job_id(None) is None
    assert BatchkitJobManager.cast_job_id("dummy_job_id") == "dummy_job_id"


@pytest.mark.parametrize(
    ("name", "backend_id_re"),
    [("jobs-local-midrun.json", r"^[0-9a-f]{10}\.\d+$"), ("jobs-slurm-midrun.json", r"^\d+_\d+$")],
)
def test_ids_in_recorded_law_jobs_json_parse_back(fixtures_dir: Path, name: str, backend_id_re: str) -> None:
    """What a restarted ``law run`` reads from its jobs JSON (recorded, see SOURCES.md)."""
    data = JobData()
    data.update(json.loads((fixtures_dir / "law" / name).read_text()))  # what law's _run_impl does
    assert data.jobs, "the recording has jobs"
    for job_num, job in data.jobs.items():
        job_id = parse_law_job_id(BatchkitJobManager.cast_job_id(job["job_id"]))
        assert re.match(backend_id_re, job_id.backend_id)
        assert job_id.index == job_num  # the law job number is the batchkit index
        assert os.path.isabs(job_id.directory) and job_id.directory.endswith("round_1")
        assert job["extra"]["log"] == str(job_id.stdout_log)


# ----------------------------------------------------------------------------- status mapping


def test_status_strings_are_laws() -> None:
    assert law_status_module.PENDING == BaseJobManager.PENDING
    assert law_status_module.RUNNING == BaseJobManager.RUNNING
    assert law_status_module.FINISHED == BaseJobManager.FINISHED
    assert law_status_module.RETRY == BaseJobManager.RETRY
    assert law_status_module.FAILED == BaseJobManager.FAILED


@pytest.mark.parametrize(
    ("info", "status", "code", "error"),
    [
        (JobInfo("1", JobStatus.PENDING, None, None, "PENDING"), "pending", None, None),
        (JobInfo("1", JobStatus.RUNNING, None, None, "RUNNING"), "running", None, None),
        (JobInfo("1", JobStatus.FINISHED, 0, None, "COMPLETED"), "finished", 0, None),
        (JobInfo("1", JobStatus.FAILED, 60, None, "FAILED"), "failed", 60, "exit code 60"),
        (JobInfo("1", JobStatus.FAILED, 137, "out of memory", "OUT_OF_MEMORY"), "failed", 137, "out of memory"),
        (JobInfo("1", JobStatus.CANCELLED, None, "cancelled", "CANCELLED"), "failed", None, "cancelled"),
        (JobInfo("1", JobStatus.CANCELLED, 15, "by root", "CANCELLED"), "failed", 15, "cancelled (by root)"),
    ],
)
def test_batchkit_states_map_to_law_states(info: JobInfo, status: str, code: int | None, error: str | None) -> None:
    data = law_status("law-id", info)
    assert set(data) == {"job_id", "status", "code", "error", "extra"}
    assert (data["job_id"], data["status"], data["code"], data["error"]) == ("law-id", status, code, error)
    assert data["extra"]["native_state"] == info.native_state


def test_unknown_job_waits_then_is_retried_as_lost() -> None:
    unknown = JobInfo("1", JobStatus.UNKNOWN, None, "no such job", None)
    assert law_status("x", unknown, unknown_for=10, lost_after=60)["status"] == "pending"
    assert law_status("x", unknown, started=True, unknown_for=10, lost_after=60)["status"] == "running"
    lost = law_status("x", unknown, started=True, unknown_for=60, lost_after=60)
    assert lost["status"] == "retry"
    assert "lost" in lost["error"] and "started" in lost["error"]


@pytest.mark.parametrize(
    ("marker", "status", "code"),
    [
        (ExitMarker(0, 1.0, "done", ""), "finished", 0),
        (ExitMarker(60, 1.0, "command", ""), "failed", 60),
        (ExitMarker(244, 1.0, "setup", "setup script failed"), "failed", 244),
    ],
)
def test_exit_marker_decides_when_the_scheduler_forgot(marker: ExitMarker, status: str, code: int) -> None:
    unknown = JobInfo("1", JobStatus.UNKNOWN, None, None, None)
    data = law_status("x", unknown, marker=marker, unknown_for=1e9, lost_after=1)
    assert (data["status"], data["code"]) == (status, code)


@pytest.mark.parametrize(
    ("info", "marker", "started", "status", "code", "error"),
    [
        # the scheduler's answer is older than the markers: the markers win
        (JobInfo("1", JobStatus.RUNNING, None, None, "RUNNING"), ExitMarker(0, 1.0, "done", ""),
         True, "finished", 0, None),
        (JobInfo("1", JobStatus.PENDING, None, None, "PENDING"), None, True, "running", None, None),
        (None, None, False, "pending", None, None),  # not asked yet
        (None, None, True, "running", None, None),
        # killed by a signal: the scheduler's words say more than the wrapper's
        (JobInfo("1", JobStatus.CANCELLED, None, None, "CANCELLED"),
         ExitMarker(143, 1.0, "command", "killed by SIGTERM"), True, "failed", None, "cancelled"),
        (JobInfo("1", JobStatus.FAILED, 137, "OUT_OF_MEMORY", "OUT_OF_MEMORY"),
         ExitMarker(137, 1.0, "command", "killed by SIGKILL"), True, "failed", 137, "OUT_OF_MEMORY"),
        (JobInfo("1", JobStatus.RUNNING, None, None, "RUNNING"), ExitMarker(143, 1.0, "command", "killed by SIGTERM"),
         True, "failed", 143, "killed by SIGTERM"),
    ],
)  # fmt: skip
def test_markers_and_the_last_scheduler_answer_combine(
    info: JobInfo | None, marker: ExitMarker | None, started: bool, status: str, code: int | None, error: str | None
) -> None:
    data = law_status("x", info, marker, started)
    assert (data["status"], data["code"], data["error"]) == (status, code, error)


# ----------------------------------------------------------------------------- specs and rounds


def test_job_postfix_is_laws_branch_range() -> None:
    assert job_postfix([4, 5]) == "_4To6"
    assert job_postfix([7]) == "_7To8"


@pytest.mark.parametrize("family", ["MyTask", "my.mod.Task with spaces", "äöü", ""])
def test_round_tag_is_accepted_by_slurm_and_unique_per_directory(family: str) -> None:
    tag = round_tag(family, Path("/a/round_1"))
    assert TAG_RE.match(tag)
    assert tag != round_tag(family, Path("/a/round_2"))


def test_job_spec_carries_arguments_environment_and_resources() -> None:
    job = {
        "job_num": 3,
        "branches": [4, 5],
        "attempt": 2,
        "arguments": ["mod", "Task", "LS1uPTE=", "NCA1", 1, "no", "LQ=="],
        "name": "Task_4To6",
        "resources": {"cpus": 2, "memory": "1GB", "walltime": "1h"},
        "env": {"FOO": "bar"},
        "backend_options": {"qos": "short"},
        "log": "/logs/stdall_4To6.txt",
    }
    spec = job_spec("/r/law_job.sh", job, {"COMMON": "1", "FOO": "common"}, {"partition": "p"})
    assert spec.command == ("/r/law_job.sh", "mod", "Task", "LS1uPTE=", "NCA1", "1", "no", "LQ==")
    assert spec.env == {
        "COMMON": "1",
        "FOO": "bar",
        ENV_JOB_NUM: "3",
        ENV_FILE_POSTFIX: "_4To6",
        ENV_LOG_FILE: "/logs/stdall_4To6.txt",
    }
    assert (spec.resources.cpus, spec.resources.memory, spec.resources.walltime) == (2, 10**9, 3600)
    assert spec.backend_options == {"partition": "p", "qos": "short"}
    assert spec.name == "Task_4To6"


def test_round_file_round_trips(tmp_path: Path) -> None:
    jobs = (RoundJob(1, 1, JobSpec(["true"]), None), RoundJob(5, 3, JobSpec(["false"], env={"A": "1"}), "/l"))
    path = Round(str(tmp_path), "law_T_0123abcd", jobs).write()
    assert path == tmp_path / "law_round.json"
    loaded = read_round(path)
    assert loaded.jobs == jobs and loaded.tag == "law_T_0123abcd" and loaded.job_nums == [1, 5]


@pytest.mark.parametrize("text", ["", "[]", '{"format": "other"}', '{"format": "batchkit-law-round/1"}'])
def test_a_bad_round_file_is_a_job_file_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "law_round.json"
    path.write_text(text)
    with pytest.raises(JobFileError):
        read_round(path)


# ----------------------------------------------------------------------------- the file factory


def _factory(tmp_path: Path) -> BatchkitJobFileFactory:
    return BatchkitJobFileFactory(dir=str(tmp_path / "jobfiles"), mkdtemp=False, cleanup=True)


def _jobs(*job_nums: int) -> list[dict[str, object]]:
    return [
        {
            "job_num": n,
            "branches": [2 * n, 2 * n + 1],
            "attempt": 1,
            "arguments": ["m", "T", "LQ==", "MA==", 1, "no", "LQ=="],
        }
        for n in job_nums
    ]


def test_factory_writes_one_round_with_laws_input_file_semantics(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bootstrap.sh").write_text("echo {{file_postfix}} {{log_file}} {{greeting}} {{unknown}}\n")
    (src / "shared.txt").write_text("shared {{greeting}}\n")
    (src / "forwarded.txt").write_text("forwarded\n")
    (src / "in_job.txt").write_text("rendered in the job: {{greeting}}\n")
    factory = _factory(tmp_path)
    c = factory.get_config()
    c.input_files = {
        "job_file": JobInputFile(law_src_path("job", "law_job.sh")),
        "bootstrap_file": str(src / "bootstrap.sh"),
        "shared_file": JobInputFile(str(src / "shared.txt"), share=True),
        "forwarded_file": JobInputFile(str(src / "forwarded.txt"), forward=True),
        "job_rendered": JobInputFile(str(src / "in_job.txt"), render_job=True),
    }
    c.render_variables = {"greeting": "hello"}
    c.custom_log_file = "stdall.txt"
    jobs = _jobs(1, 2)
    jobs[0]["log"] = str(tmp_path / "logs" / "stdall_2To4.txt")
    c.jobs = jobs
    path, config = factory(**c.__dict__)

    round_dir = tmp_path / "jobfiles" / "round_1"
    assert path == str(round_dir / "law_round.json") and config.round_dir == str(round_dir)
    round_ = read_round(path)
    assert round_.job_nums == [1, 2] and round_.directory == str(round_dir)
    law_job = Path(round_.jobs[0].spec.command[0])
    assert law_job.parent == round_dir and os.access(law_job, os.X_OK)
    script = law_job.read_text()
    assert 'local log_file="${LAW_BATCHKIT_LOG_FILE}"' in script  # per job, from the job's environment
    assert "{{" not in script  # every placeholder rendered (law blanks unknown ones)
    # per-job values live in the environment, not in files
    assert round_.jobs[0].spec.env[ENV_LOG_FILE] == jobs[0]["log"]
    assert ENV_LOG_FILE not in round_.jobs[1].spec.env
    assert config.logs == {1: jobs[0]["log"], 2: str(round_dir / "logs" / "2.out")}

    copies = {p.name.split("_")[0]: p for p in round_dir.iterdir() if p.suffix in (".sh", ".txt")}
    assert copies["bootstrap"].read_text() == "echo ${LAW_BATCHKIT_FILE_POSTFIX} ${LAW_BATCHKIT_LOG_FILE} hello \n"
    assert copies["in"].read_text() == "rendered in the job: {{greeting}}\n"  # left for law_job.sh
    assert "forwarded" not in copies  # used where it is
    shared = [p for p in (tmp_path / "jobfiles").iterdir() if p.name.startswith("shared_")]
    assert len(shared) == 1 and shared[0].read_text() == "shared {{greeting}}\n"  # shared: not rendered
    variables = config.render_variables
    assert variables["forwarded_file"] == str(src / "forwarded.txt")
    assert variables["bootstrap_file"] == copies["bootstrap"].name  # linked into LAW_JOB_HOME by law_job.sh
    assert variables["input_files_render"] == str(copies["in"])
    assert str(src / "forwarded.txt") in variables["input_files"].split()

    # a second round: a new directory, the shared file is reused
    c.jobs = _jobs(3)
    path2, _ = factory(**c.__dict__)
    assert Path(path2).parent.name == "round_2"
    assert [p for p in (tmp_path / "jobfiles").iterdir() if p.name.startswith("shared_")] == shared


def test_cleanup_keeps_the_directory_while_a_job_has_no_exit_marker(tmp_path: Path) -> None:
    factory = _factory(tmp_path)
    c = factory.get_config()
    c.input_files = {"job_file": JobInputFile(law_src_path("job", "law_job.sh"))}
    c.jobs = _jobs(1, 2)
    path, _ = factory(**c.__dict__)
    markers = Path(path).parent / "markers"
    markers.mkdir()
    (markers / "1.exit").write_text("exit=0 end=1 step=done reason=\n")
    factory.cleanup_dir(force=False)
    assert Path(path).exists(), "job 2 may still start: its wrapper and table must stay"
    (markers / "2.exit").write_text("exit=0 end=1 step=done reason=\n")
    factory.cleanup_dir(force=False)
    assert not (tmp_path / "jobfiles").exists()


def test_factory_refuses_an_empty_round(tmp_path: Path) -> None:
    factory = _factory(tmp_path)
    c = factory.get_config()
    c.input_files = {"job_file": JobInputFile(law_src_path("job", "law_job.sh"))}
    c.jobs = []
    with pytest.raises(ValueError, match="at least one job"):
        factory(**c.__dict__)


# ----------------------------------------------------------------------------- Ctrl+C during submission


# The signal is sent inside a fresh interpreter: in the pytest process, threads started by
# earlier tests (XRootD, gfal2) may take delivery of a self-sent SIGINT, so Python could run the
# handler after the block ended and a stray KeyboardInterrupt would abort the whole session.
INTERRUPT_SCRIPT = """
import os, signal, sys
from batchkit_law.interrupt import deferred_interrupt
done = []
try:
    with deferred_interrupt():
        for _ in range(int(sys.argv[1])):
            os.kill(os.getpid(), signal.SIGINT)
        done.append("block ended")
except KeyboardInterrupt:
    print("KeyboardInterrupt", done, signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def run_interrupt_script(signals: int) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT, str(signals)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_first_interrupt_is_held_back_until_the_block_ends() -> None:
    assert run_interrupt_script(1) == "KeyboardInterrupt ['block ended'] True"


def test_second_interrupt_breaks_through() -> None:
    assert run_interrupt_script(2) == "KeyboardInterrupt [] True"


def test_without_an_interrupt_the_block_runs_through() -> None:
    assert run_interrupt_script(0) == ""
