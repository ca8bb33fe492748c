"""The Slurm backend: a batch is a few job arrays, a poll is one ``sacct`` (or ``squeue``) call.

* **Submit.** The file factory writes the shared wrapper and job table plus one tiny batch
  script per array (``slurm/array-<k>.sh``: ``exec /bin/sh wrapper.sh <dir> <task id + offset>``)
  and ``slurm/arrays.json`` with each array's rows and sbatch arguments
  (:func:`~batchkit.backends.slurm_commands.plan_arrays`). :meth:`SlurmJobManager.submit_files`
  runs one ``sbatch --parsable --array=...`` per array. Job ids are ``<array job id>_<task id>``.
* **Query.** One call for all ids: ``sacct -X -P -n --starttime=... --jobs=<array ids>`` when
  the cluster has accounting, else ``squeue -t all --jobs=...`` (finished jobs stay there for
  ``MinJobAge``). Which one is probed once per manager (``scontrol show config``, which also
  gives ``MaxArraySize``), and a sacct that answers "accounting storage is disabled" switches
  the manager to squeue for good.
* **Find.** After a crash between "sbatch accepted" and "ids recorded", the arrays of a batch
  are found by their job names (``<tag>-a<k>``) with squeue (pending/running/recent) and sacct.
* **Transient errors** ("Socket timed out", "Unable to contact slurm controller", ...) are
  retried with backoff; before an ``sbatch`` is retried, squeue is asked whether the array
  arrived after all, so a lost reply never submits an array twice.

Every command runs through :func:`batchkit.runner.run_command` with the manager's ``env``
(e.g. ``SLURM_CONF`` of another cluster).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.backends.base import JobManager
from batchkit.backends.slurm_commands import (
    PLAN_FILE,
    SACCT_FIELDS,
    SCONTROL_CONFIG_ARGV,
    SCRIPT_DIR,
    SQUEUE_FIELDS,
    TAG_RE,
    TRANSIENT_ERRORS,
    SlurmArray,
    array_name,
    join_chunks,
    plan_arrays,
    render_array_script,
    sacct_argv,
    sbatch_argv,
    scancel_argvs,
    script_path,
    squeue_argv,
)
from batchkit.backends.slurm_options import SlurmSiteOptions, check_submit_options
from batchkit.backends.slurm_parse import (
    SlurmRecord,
    expand_task_ranges,
    format_task_ranges,
    ids_to_query,
    infos_for,
    is_accounting_disabled,
    is_invalid_job_id,
    parse_sacct,
    parse_sbatch_parsable,
    parse_squeue,
)
from batchkit.backends.slurm_scontrol import SlurmClusterConfig, parse_scontrol_config
from batchkit.errors import CommandError, ParseError, SpecError, SubmitError, TransientError
from batchkit.jobfiles import JobFileFactory, JobFiles
from batchkit.model import JobInfo
from batchkit.runner import CommandResult, run_command

log = logging.getLogger(__name__)

#: Options of ``JobFiles.options`` this backend understands.
SUBMIT_OPTIONS = ("parallel_jobs", "group")
#: Default sacct ``--starttime`` look-back: jobs that ended longer ago are not asked for.
DEFAULT_LOOKBACK = 14 * 24 * 3600.0


class SlurmFileFactory(JobFileFactory):
    """Wrapper + job table, plus one batch script per array and ``slurm/arrays.json``.

    Usable as a dry run (nothing is submitted), but planning the arrays needs the cluster's
    ``MaxArraySize``: give the manager ``max_array_size=`` to keep it from asking Slurm.
    """

    walltime_watchdog = False  # Slurm enforces --time itself

    def __init__(self, manager: SlurmJobManager) -> None:
        self._manager = manager

    def render_submit(self, files: JobFiles) -> list[Path]:
        cap = check_submit_options(files.options, SUBMIT_OPTIONS)
        if not TAG_RE.match(files.tag):
            raise SpecError(f"slurm: batch tag {files.tag!r} may only contain letters, digits and _.:+-")
        arrays = plan_arrays(files.rows, self._manager.site_options, self._manager.max_array_size(), cap)
        (files.directory / SCRIPT_DIR).mkdir(exist_ok=True)
        scripts = []
        for array in arrays:
            path = script_path(files.directory, array.number)
            _write_atomic(path, render_array_script(files, array))
            path.chmod(0o755)
            scripts.append(path)
        plan = {
            "tag": files.tag,
            "created": time.time(),
            "arrays": [
                {**array.to_dict(), "name": array_name(files.tag, array.number), "argv": sbatch_argv(files, array)}
                for array in arrays
            ],
        }
        _write_atomic(files.directory / SCRIPT_DIR / PLAN_FILE, json.dumps(plan, indent=1))
        return scripts


class SlurmJobManager(JobManager):
    """Submit to Slurm as job arrays; query all jobs of a call with one scheduler command.

    Options (all optional): ``partition``, ``account``, ``qos``, ``constraint``,
    ``reservation``; ``sbatch_options`` (a list of raw ``"--opt=value"`` strings or a mapping
    ``{"opt": value}``, passed to every sbatch); ``gpu_option`` (``"gpus"`` -> ``--gpus=N``,
    ``"gres"`` -> ``--gres=gpu:N``). A job's ``backend_options`` may override any of these.
    Manager-wide only: ``env`` (variables for every Slurm command, e.g. ``SLURM_CONF``),
    ``max_array_size`` (instead of the cluster's ``MaxArraySize``), ``accounting`` (True:
    sacct, False: squeue; default: ask the cluster), ``sacct_lookback`` (seconds),
    ``command_timeout``, ``command_retries`` and ``retry_backoff`` (seconds, doubled per retry).
    """

    name = "slurm"
    required_tools = ("sbatch", "squeue", "scancel", "scontrol")
    interrupt_policy = "keep"
    submit_options = SUBMIT_OPTIONS

    def __init__(
        self,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        reservation: str | None = None,
        sbatch_options: Sequence[str] | Mapping[str, Any] | None = None,
        gpu_option: str = "gpus",
        env: Mapping[str, str] | None = None,
        max_array_size: int | None = None,
        accounting: bool | None = None,
        sacct_lookback: float = DEFAULT_LOOKBACK,
        command_timeout: float = 120.0,
        command_retries: int = 3,
        retry_backoff: float = 2.0,
    ) -> None:
        self.site_options = SlurmSiteOptions(
            partition=partition,
            account=account,
            qos=qos,
            constraint=constraint,
            reservation=reservation,
            sbatch_options=sbatch_options,
            gpu_option=gpu_option,
        )
        self.env = _check_env(env)
        if max_array_size is not None and (
            isinstance(max_array_size, bool) or not isinstance(max_array_size, int) or max_array_size < 1
        ):
            raise SpecError(f"slurm: max_array_size must be a positive integer, got {max_array_size!r}")
        if accounting is not None and not isinstance(accounting, bool):
            raise SpecError(f"slurm: accounting must be true, false or unset, got {accounting!r}")
        for what, value in (
            ("sacct_lookback", sacct_lookback),
            ("command_timeout", command_timeout),
            ("retry_backoff", retry_backoff),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"slurm: {what} must be a non-negative number of seconds, got {value!r}")
        if isinstance(command_retries, bool) or not isinstance(command_retries, int) or command_retries < 0:
            raise SpecError(f"slurm: command_retries must be a non-negative integer, got {command_retries!r}")
        self._max_array_size = max_array_size
        self._accounting = accounting
        self.sacct_lookback = float(sacct_lookback)
        self.command_timeout = float(command_timeout)
        self.command_retries = command_retries
        self.retry_backoff = float(retry_backoff)
        self._config: SlurmClusterConfig | None = None
        self.file_factory: JobFileFactory = SlurmFileFactory(self)

    # ------------------------------------------------------------------ the cluster
    def cluster_config(self) -> SlurmClusterConfig:
        """``scontrol show config`` of the cluster, asked once per manager."""
        if self._config is None:
            result = self._run(list(SCONTROL_CONFIG_ARGV))
            self._config = parse_scontrol_config(result.stdout)
            log.debug("slurm cluster config: %s", self._config)
        return self._config

    def max_array_size(self) -> int:
        """Slurm's MaxArraySize (task ids go up to one less), or the ``max_array_size`` option."""
        if self._max_array_size is None:
            self._max_array_size = self.cluster_config().max_array_size
        return self._max_array_size

    @property
    def accounting(self) -> bool:
        """Whether status comes from sacct (True) or squeue (False)."""
        if self._accounting is None:
            self._accounting = self.cluster_config().accounting
        return self._accounting

    def _run(self, argv: list[str], retries: int | None = None) -> CommandResult:
        return run_command(
            argv,
            timeout=self.command_timeout,
            retries=self.command_retries if retries is None else retries,
            backoff=self.retry_backoff,
            transient=TRANSIENT_ERRORS,
            env=self.env or None,
        )

    # ------------------------------------------------------------------ submit
    def submit_files(self, files: JobFiles) -> list[str]:
        arrays = self._load_plan(files)
        ids: dict[int, str] = {}
        for array in arrays:
            try:
                array_job_id = self._sbatch(files, array)
            except TransientError:
                raise  # the supervisor reconciles with find(): the array may have arrived
            except (CommandError, ParseError) as exc:
                done = f" ({len(ids)} of {len(files.rows)} jobs were submitted)" if ids else ""
                raise SubmitError(
                    f"slurm rejected array {array.number} of batch {files.tag}{done}: {exc}", ids
                ) from exc
            for row in array.rows:
                ids[row] = array.job_id(array_job_id, row)
        return [ids[row.row] for row in files.rows]

    def _load_plan(self, files: JobFiles) -> list[SlurmArray]:
        plan_path = files.directory / SCRIPT_DIR / PLAN_FILE
        if not plan_path.exists():  # files written by another factory: plan them now
            SlurmFileFactory(self).render_submit(files)
        plan = read_plan(files.directory)
        if plan is None or plan.tag != files.tag:
            raise SubmitError(f"cannot read the array plan of batch {files.tag} in {plan_path}")
        return list(plan.arrays)

    def _sbatch(self, files: JobFiles, array: SlurmArray) -> str:
        """Submit one array; a transient failure is retried only if the array did not arrive."""
        argv = sbatch_argv(files, array)
        name = array_name(files.tag, array.number)
        attempt = 0
        while True:
            try:
                result = self._run(argv, retries=0)
            except TransientError as exc:
                existing = self._array_named(name)
                if existing is not None:
                    log.warning("sbatch of %s failed (%s) but the array arrived as %s", name, exc, existing)
                    return existing
                attempt += 1
                if attempt > self.command_retries:
                    raise
                delay = min(30.0, self.retry_backoff * 2 ** (attempt - 1))
                log.warning("sbatch of %s failed transiently (%s); retrying in %.1f s", name, exc, delay)
                time.sleep(delay)
                continue
            job_id = parse_sbatch_parsable(result.stdout)
            if job_id is None:
                raise ParseError("sbatch --parsable printed no job id", result.stdout + result.stderr)
            return job_id

    def _array_named(self, name: str) -> str | None:
        """The job id of the array called ``name`` if slurmctld knows it (None if unsure)."""
        try:
            result = self._run(squeue_argv(names=name), retries=0)
        except (CommandError, TransientError):
            return None
        ids = sorted({r.array_id for r in parse_squeue(result.stdout, SQUEUE_FIELDS) if r.name == name}, key=int)
        return ids[0] if ids else None

    # ------------------------------------------------------------------ query
    def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        wanted = list(dict.fromkeys(str(j) for j in job_ids))
        if not wanted:
            return {}
        ask = ids_to_query(wanted)
        if not ask:
            return infos_for(wanted, [], "slurm")
        if self.accounting:
            records = self._sacct(jobs=ask)
            if records is not None:
                return infos_for(wanted, records, "sacct")
        return infos_for(wanted, self._squeue(jobs=ask), "squeue")

    def _sacct(
        self, jobs: Sequence[str] = (), names: Sequence[str] = (), since: float | None = None
    ) -> list[SlurmRecord] | None:
        """sacct records for job ids or names; None if the cluster has no accounting after all."""
        start = time.time() - self.sacct_lookback if since is None else since
        starttime = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start))
        records: list[SlurmRecord] = []
        chunks = [(chunk, None) for chunk in join_chunks(jobs)] + [(None, chunk) for chunk in join_chunks(names)]
        for job_chunk, name_chunk in chunks:
            try:
                result = self._run(sacct_argv(job_chunk, starttime, name_chunk))
            except CommandError as exc:
                if is_accounting_disabled(exc.stdout + exc.stderr):
                    log.info("Slurm accounting storage is disabled: using squeue for job states")
                    self._accounting = False
                    return None
                raise
            records.extend(parse_sacct(result.stdout, SACCT_FIELDS))
        return records

    def _squeue(self, jobs: Sequence[str] = (), names: Sequence[str] = ()) -> list[SlurmRecord]:
        records: list[SlurmRecord] = []
        chunks = [(chunk, None) for chunk in join_chunks(jobs)] + [(None, chunk) for chunk in join_chunks(names)]
        for job_chunk, name_chunk in chunks:
            try:
                result = self._run(squeue_argv(job_chunk, name_chunk))
            except CommandError as exc:
                if isinstance(exc, TransientError) or not is_invalid_job_id(exc.stdout + exc.stderr):
                    raise
                continue  # none of these ids is known (any more): every one is UNKNOWN
            records.extend(parse_squeue(result.stdout, SQUEUE_FIELDS))
        return records

    # ------------------------------------------------------------------ find
    def find(self, tag: str, directory: str | os.PathLike[str]) -> dict[int, JobInfo]:
        plan = read_plan(Path(directory))
        if plan is None or plan.tag != tag:
            return {}
        arrays = {array_name(tag, array.number): array for array in plan.arrays}
        records: list[SlurmRecord] = []
        if self.accounting:  # finished jobs squeue has forgotten (MinJobAge)
            records.extend(self._sacct(names=list(arrays), since=plan.created - 3600) or [])
        records.extend(self._squeue(names=list(arrays)))  # pending ones sacct does not list by name
        found: dict[int, JobInfo] = {}
        for name, array in arrays.items():
            mine = [r for r in records if r.name == name]
            array_ids = sorted({r.array_id for r in mine}, key=int)
            if not array_ids:
                continue
            if len(array_ids) > 1:
                log.warning(
                    "batch %s: %s was submitted %d times %s; adopting %s",
                    tag,
                    name,
                    len(array_ids),
                    array_ids,
                    array_ids[0],
                )
            ids = {array.job_id(array_ids[0], row): row for row in array.rows}
            chosen = [r for r in mine if r.array_id == array_ids[0]]
            for job_id, info in infos_for(list(ids), chosen, "find").items():
                if info.native_state is not None:  # None: this task is not in Slurm's answer
                    found[ids[job_id]] = info
        return found

    # ------------------------------------------------------------------ cancel / cleanup
    def cancel(self, job_ids: Sequence[str]) -> None:
        for argv in scancel_argvs(str(j) for j in job_ids):
            self._run(argv)

    def cleanup(self, job_ids: Sequence[str]) -> None:
        """Nothing to do: Slurm keeps no per-job files of ours, and the batch directory
        (scripts, ``arrays.json``, Slurm's own output) belongs to the caller."""


@attrs.frozen
class SlurmPlan:
    """What ``slurm/arrays.json`` records about a batch: its tag, when it was planned, its arrays."""

    tag: str
    created: float
    arrays: tuple[SlurmArray, ...]


def read_plan(directory: Path) -> SlurmPlan | None:
    """The plan in ``<directory>/slurm/arrays.json`` (None if there is none or it is unreadable)."""
    try:
        data = json.loads((directory / SCRIPT_DIR / PLAN_FILE).read_text())
        arrays = []
        for item in data["arrays"]:
            rows = expand_task_ranges(str(item["rows"]))
            if not rows:
                return None
            arrays.append(
                SlurmArray(
                    number=int(item["number"]),
                    rows=rows,
                    offset=int(item["offset"]),
                    throttle=None if item.get("throttle") is None else int(item["throttle"]),
                    sbatch_args=tuple(str(a) for a in item["sbatch_args"]),
                )
            )
        return SlurmPlan(tag=str(data["tag"]), created=float(data["created"]), arrays=tuple(arrays))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise SpecError(f"slurm: env must be a mapping of variable names to strings, got {env!r}")
    out = {}
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or not isinstance(value, str):
            raise SpecError(f"slurm: env: {key!r}={value!r} is not a variable name and string value")
        out[key] = value
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


__all__ = ["SlurmFileFactory", "SlurmJobManager", "format_task_ranges", "read_plan"]
