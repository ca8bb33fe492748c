"""law's job file factory for batchkit: one directory and one ``law_round.json`` per round.

law's own Slurm factory writes one rendered job script per job; its grouped HTCondor factory
writes one submit file per round. This factory does what the grouped one does, for every
batchkit backend: per submission round it creates a directory ``round_<n>`` under the factory's
directory and

* provides the input files with law's semantics (:class:`law.job.base.JobInputFile`):
  ``forward`` and ``copy=False`` files are used where they are; ``share`` files are copied once
  into the factory directory and reused by every round; all other files are copied into the
  round directory and, with ``render_local``, rendered there with the round's render
  variables; ``render_job`` files are listed in ``input_files_render`` so ``law_job.sh``
  renders them inside the job. Copies get law's path hash in their names, so equal base names
  never collide;
* renders law's job script (``law_job.sh``) once for the round. What differs per job is not
  rendered into a file but passed in the job's environment: ``{{log_file}}`` and
  ``{{file_postfix}}`` render to ``${LAW_BATCHKIT_LOG_FILE}`` and ``${LAW_BATCHKIT_FILE_POSTFIX}``,
  which the shell expands when the job runs;
* turns each job into a :class:`~batchkit.JobSpec`: ``<job script> <law's 7 job arguments>``
  with that environment, the job's resources and backend options;
* writes ``law_round.json`` (:mod:`batchkit_law.round`), the "job file" law hands to the
  manager.

Paths are absolute: jobs run in the round directory on a file system shared with the
submitting machine (as with law's Slurm and LSF workflows).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from law.config import Config
from law.job.base import BaseJobFileFactory, JobInputFile
from law.target.file import get_path

from batchkit.model import JobSpec, Resources
from batchkit_law.round import ROUND_FILE, Round, RoundJob

log = logging.getLogger(__name__)

#: Environment variables every job gets (``LAW_JOB_*`` is law_job.sh's own namespace).
ENV_JOB_NUM = "LAW_BATCHKIT_JOB_NUM"
ENV_FILE_POSTFIX = "LAW_BATCHKIT_FILE_POSTFIX"
ENV_LOG_FILE = "LAW_BATCHKIT_LOG_FILE"

#: Render variables whose value differs per job: rendered as a reference to the job's environment.
PER_JOB_RENDER_VARIABLES = {"file_postfix": ENV_FILE_POSTFIX, "log_file": ENV_LOG_FILE}

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+-]+")


def job_postfix(branches: Sequence[int]) -> str:
    """law's file postfix of a job: the Python range of its branches, ``[4, 5]`` -> ``_4To6``."""
    return f"_{branches[0]}To{branches[-1] + 1}"


def round_tag(task_family: str, directory: Path) -> str:
    """A tag naming the round at the scheduler: readable, unique per directory, Slurm-safe."""
    family = _TAG_UNSAFE.sub("_", task_family).strip("_")[:40] or "task"
    return f"law_{family}_{hashlib.sha1(str(directory).encode()).hexdigest()[:8]}"


def job_side_paths(f: Any, path_sub_abs: str) -> tuple[str, str]:
    """Where the job finds an input file before and after job-side rendering.

    ``law_job.sh`` symlinks every listed input into its job home and renders the
    ``render_job`` ones there, so afterwards a copied file is found by its base name; a
    forwarded, unrendered file keeps its absolute path (law's Slurm rules, absolute paths).
    """
    pre = path_sub_abs
    post = path_sub_abs if (f.forward and not f.render_job) else os.path.basename(path_sub_abs)
    return pre, post


def round_render_variables(
    input_files: Mapping[str, Any],
    render_variables: Mapping[str, str],
    log_file: bool,
) -> dict[str, str]:
    """The render variables of a round (before law's linearization), as law's factories set them.

    ``input_files`` maps keys to :class:`JobInputFile` objects whose ``path_job_pre_render`` /
    ``path_job_post_render`` are already set. Each key becomes a variable pointing to the file
    as the job sees it; ``input_files`` / ``input_files_render`` list the files to link and to
    render in the job.
    """
    out = {str(k): str(v) for k, v in render_variables.items()}
    out.update({key: f.path_job_post_render for key, f in input_files.items()})
    out["input_files"] = " ".join(f.path_job_pre_render for f in input_files.values())
    out["input_files_render"] = " ".join(f.path_job_pre_render for f in input_files.values() if f.render_job)
    if log_file:
        out.setdefault("log_file", "${" + PER_JOB_RENDER_VARIABLES["log_file"] + "}")
    out.setdefault("file_postfix", "${" + PER_JOB_RENDER_VARIABLES["file_postfix"] + "}")
    return out


def job_spec(
    executable: str,
    job: Mapping[str, Any],
    common_env: Mapping[str, str],
    common_backend_options: Mapping[str, Any],
) -> JobSpec:
    """The batchkit spec of one law job (a dict as built by the workflow proxy, see ``jobs``)."""
    branches = list(job["branches"])
    env = {str(k): str(v) for k, v in common_env.items()}
    env.update({str(k): str(v) for k, v in (job.get("env") or {}).items()})
    env[ENV_JOB_NUM] = str(job["job_num"])
    env[ENV_FILE_POSTFIX] = job_postfix(branches)
    if job.get("log"):
        env[ENV_LOG_FILE] = str(job["log"])
    options = dict(common_backend_options)
    options.update(job.get("backend_options") or {})
    return JobSpec(
        command=[executable, *(str(a) for a in job["arguments"])],
        name=job.get("name") or None,
        resources=Resources.from_dict(job.get("resources")),
        env=env,
        backend_options=options,
    )


class BatchkitJobFileFactory(BaseJobFileFactory):  # type: ignore[misc]  # law is untyped
    """Writes the files of one submission round (see the module docstring).

    Configuration (``get_config`` / keyword arguments of :meth:`create`, law style):
    ``executable`` (key in ``input_files`` of the script each job runs, default ``"job_file"``),
    ``input_files`` (key -> path or :class:`JobInputFile`), ``render_variables``, ``jobs`` (one
    dict per job: ``job_num``, ``branches``, ``attempt``, ``arguments``, optional ``env``,
    ``resources``, ``backend_options``, ``name``, ``log``), ``env`` and ``backend_options`` for
    every job, ``task_family`` (for the tag) and ``custom_log_file`` (law's flag that jobs tee
    their output into ``log``).
    """

    config_attrs = [
        *BaseJobFileFactory.config_attrs,
        "executable",
        "input_files",
        "jobs",
        "env",
        "backend_options",
        "task_family",
    ]

    def __init__(
        self,
        executable: str = "job_file",
        input_files: Mapping[str, Any] | None = None,
        jobs: Sequence[Mapping[str, Any]] | None = None,
        env: Mapping[str, str] | None = None,
        backend_options: Mapping[str, Any] | None = None,
        task_family: str = "law",
        **kwargs: Any,
    ) -> None:
        cfg = Config.instance()
        if kwargs.get("dir") is None:
            kwargs["dir"] = cfg.get_expanded("job", cfg.find_option("job", "batchkit_job_file_dir", "job_file_dir"))
        if kwargs.get("mkdtemp") is None:
            option = cfg.find_option("job", "batchkit_job_file_dir_mkdtemp", "job_file_dir_mkdtemp")
            kwargs["mkdtemp"] = cfg.get_expanded_bool("job", option, force_type=False)
        if kwargs.get("cleanup") is None:
            option = cfg.find_option("job", "batchkit_job_file_dir_cleanup", "job_file_dir_cleanup")
            kwargs["cleanup"] = cfg.get_expanded_bool("job", option)
        super().__init__(**kwargs)
        self.executable = executable
        self.input_files = dict(input_files or {})
        self.jobs = list(jobs or [])
        self.env = dict(env or {})
        self.backend_options = dict(backend_options or {})
        self.task_family = task_family

    # ------------------------------------------------------------------ create
    def create(self, **kwargs: Any) -> tuple[str, Any]:
        """Write one round; returns the path of its ``law_round.json`` and the final config.

        The config gains ``round_dir`` and ``logs`` (job number -> the log file law should
        show for that job).
        """
        c = self.get_config(**kwargs)
        if not c.jobs:
            raise ValueError("a submission round needs at least one job")
        if c.executable not in c.input_files:
            raise ValueError(f"executable {c.executable!r} is not a key of input_files {sorted(c.input_files)}")
        round_dir = self._new_round_dir()
        files = {key: JobInputFile(f) for key, f in c.input_files.items()}
        for f in files.values():
            f.path_sub_abs = self._provide(f, round_dir)
            f.path_sub_rel = f.path_sub_abs
            f.path_job_pre_render, f.path_job_post_render = job_side_paths(f, f.path_sub_abs)
        log_files = bool(c.custom_log_file)
        variables = round_render_variables(files, c.render_variables or {}, log_files)
        linearized = self.linearize_render_variables(variables)
        for f in files.values():
            if f.copy and not f.forward and f.render_local and not f.share:
                self.render_file(f.path_sub_abs, f.path_sub_abs, linearized)
        executable = files[c.executable].path_sub_abs
        _make_executable(executable)

        jobs = []
        logs: dict[int, str] = {}
        for job in c.jobs:
            job = dict(job)
            job_num = int(job["job_num"])
            if not (log_files and job.get("log")):
                job["log"] = None
            logs[job_num] = str(job["log"] or round_dir / "logs" / f"{job_num}.out")
            spec = job_spec(executable, job, c.env or {}, c.backend_options or {})
            jobs.append(RoundJob(job_num, int(job.get("attempt", 1)), spec, logs[job_num]))
        round_ = Round(str(round_dir), round_tag(c.task_family or "law", round_dir), tuple(jobs))
        path = round_.write()
        c.round_dir = str(round_dir)
        c.logs = logs
        c.render_variables = linearized
        log.debug("wrote law round %s with %d job(s)", path, len(jobs))
        return str(path), c

    def _new_round_dir(self) -> Path:
        base = Path(os.path.realpath(self.dir))
        base.mkdir(parents=True, exist_ok=True)
        number = 1 + sum(1 for _ in _round_dirs(base))
        while True:
            path = base / f"round_{number}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                number += 1

    def _provide(self, f: Any, round_dir: Path) -> str:
        """Copy (or not) one input file; return its absolute path on the submitting side."""
        path = os.path.abspath(str(get_path(f.path)))
        if f.forward or not f.copy:
            return path
        if f.share:
            return str(self.provide_input(src=path, dir=self.dir, skip_existing=True))
        return str(self.provide_input(src=path, dir=str(round_dir)))

    # ------------------------------------------------------------------ cleanup
    def cleanup_dir(self, force: bool = True) -> None:
        """Remove the factory directory -- but never while a job may still need its files.

        Unlike a Slurm job script, a batchkit job reads its wrapper and job table from the
        round directory when it starts, so a directory whose jobs have not all written their
        exit markers is kept (with a log message) even when law asks for cleanup.
        """
        if not self.cleanup and not force:
            return
        if not isinstance(self.dir, str) or not os.path.exists(self.dir):
            return
        busy = [str(d) for d in _round_dirs(Path(self.dir)) if not _round_finished(d)]
        if busy:
            log.info("keeping job file directory %s: jobs of %s may still be running", self.dir, ", ".join(busy))
            return
        super().cleanup_dir(force=True)


def _round_dirs(base: Path) -> Iterator[Path]:
    try:
        for entry in os.scandir(base):
            if entry.is_dir() and entry.name.startswith("round_"):
                yield Path(entry.path)
    except FileNotFoundError:
        return


def _round_finished(directory: Path) -> bool:
    """True if every job of the round wrote its exit marker (or the round was never written)."""
    try:
        round_ = Round.from_json((directory / ROUND_FILE).read_text())
    except (OSError, ValueError):
        return True
    return all((directory / "markers" / f"{n}.exit").exists() for n in round_.job_nums)


def _make_executable(path: str) -> None:
    mode = os.stat(path).st_mode
    os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP)
