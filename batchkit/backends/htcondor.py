"""The HTCondor backend: one cluster per batch, one ``condor_q`` per poll.

A batch is one submit description (:mod:`htcondor_submit`), submitted with one
``condor_submit -terse`` (or, with ``use_bindings=True``, one ``htcondor2.Schedd.submit``);
row ``r`` becomes proc ``r`` of the new cluster and its id is ``"<cluster>.<r>"``.

``query`` asks ``condor_q`` once for all requested ids (a constraint over cluster/proc ranges,
never one argument per job) and ``condor_history`` once for the ids that left the queue;
results are keyed by the ads' own ``ClusterId.ProcId``. Held jobs are FAILED with their
``HoldReason``; they stay held in the queue (for ``condor_q -hold``) until :meth:`cleanup`
removes them. ``cancel`` and ``cleanup`` use ``condor_rm -constraint`` the same way.

Everything that builds a command line or reads an output is a pure function in
:mod:`htcondor_commands` / :mod:`htcondor_parse`; this class only runs them through
:func:`batchkit.runner.run_command`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from batchkit.backends.base import JobManager
from batchkit.backends.htcondor_commands import (
    LEFTOVERS,
    NOT_ENDED,
    SPOOLED_OUTPUT_WAITING,
    JobId,
    history_argv,
    id_constraints,
    parse_job_id,
    queue_argv,
    remove_argv,
    restrict,
    submit_argv,
    tag_constraint,
    transfer_data_argv,
)
from batchkit.backends.htcondor_parse import (
    TRANSIENT_PATTERNS,
    JobAd,
    ad_job_id,
    ads_by_id,
    combine,
    find_rows,
    ids_from_ranges,
    is_transient,
    parse_ads_json,
    parse_submit_terse,
    rows_from_ads,
    spooled_output_waiting,
    submit_error_message,
)
from batchkit.backends.htcondor_submit import HTCondorFileFactory, SubmitSettings, read_meta
from batchkit.errors import (
    BatchkitError,
    CommandError,
    MissingDependencyError,
    ParseError,
    SpecError,
    SubmitError,
    TransientCommandError,
    TransientError,
)
from batchkit.jobfiles import JobFiles
from batchkit.model import JobInfo, JobStatus
from batchkit.runner import DEFAULT_TIMEOUT, CommandResult, run_command

log = logging.getLogger(__name__)

#: condor_rm's words when a constraint matched nothing (src/condor_tools/tool.cpp).
_NOTHING_MATCHED = ("couldn't find", "could not find", "no jobs", "not found")


class HTCondorJobManager(JobManager):
    """Submit batches to an HTCondor schedd.

    Options (keyword arguments, e.g. ``bk.get_job_manager("htcondor", spool=True)``):

    ``pool``
        central manager to ask for the schedd (``-pool``); default: the local configuration.
    ``schedd``
        name of the schedd (``-name``); default: the local one.
    ``spool``
        submit with ``-spool``: the schedd keeps a copy of every input, so the batch directory
        may be on a file system the schedd cannot read (CERN: not on EOS). Implies
        ``transfer_files``; outputs are fetched with ``condor_transfer_data`` as jobs complete.
    ``transfer_files``
        let HTCondor move the job's files (no shared file system with the execute nodes).
    ``initialdir``
        the jobs' ``initialdir`` (default: the batch directory).
    ``walltime_enforcement``
        how ``resources.walltime`` is enforced besides ``+MaxRuntime``:
        ``"allowed_execute_duration"`` (default: HTCondor holds the job), ``"periodic_hold"``,
        ``"periodic_remove"`` or ``"none"`` (leave it to the site's ``MaxRuntime`` policy).
    ``submit_commands``
        raw submit commands added to every description, e.g. ``{"+AccountingGroup":
        '"group_u_CMS.u_user"', "requirements": 'OpSysAndVer == "AlmaLinux9"',
        "universe": "docker", "docker_image": "almalinux:9"}``.
    ``use_bindings``
        submit through ``htcondor2.Schedd.submit`` instead of ``condor_submit``.
    ``remove_held``
        remove held jobs (``condor_rm``) as soon as a query reports them FAILED, so a retry
        never races a released original; default: leave them held (``condor_q -hold`` shows
        them, :meth:`cleanup` removes them).
    ``timeout`` / ``retries``
        time limit of each command, and retries of failed status queries.
    """

    name = "htcondor"
    required_tools = ("condor_submit", "condor_q", "condor_history", "condor_rm")
    interrupt_policy = "keep"
    submit_options = ("parallel_jobs", "group")

    def __init__(
        self,
        pool: str | None = None,
        schedd: str | None = None,
        spool: bool = False,
        transfer_files: bool | None = None,
        initialdir: str | os.PathLike[str] | None = None,
        walltime_enforcement: str = "allowed_execute_duration",
        submit_commands: Mapping[str, Any] | None = None,
        use_bindings: bool = False,
        remove_held: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
    ) -> None:
        if spool and transfer_files is False:
            raise SpecError("htcondor: spool=True needs HTCondor's file transfer; do not set transfer_files=False")
        self.pool = pool
        self.schedd = schedd
        self.spool = bool(spool)
        self.use_bindings = bool(use_bindings)
        self.remove_held = bool(remove_held)
        self.timeout = timeout
        self.retries = retries
        self.settings = SubmitSettings(
            transfer_files=bool(transfer_files) or self.spool,
            spool=self.spool,
            initialdir=None if initialdir is None else os.fspath(initialdir),
            walltime_enforcement=walltime_enforcement,
            submit_commands=submit_commands,
        )
        self.file_factory = HTCondorFileFactory(self.settings)

    # ------------------------------------------------------------------ submit
    def submit_files(self, files: JobFiles) -> list[str]:
        unknown = set(files.options) - set(self.submit_options)
        if unknown:
            raise SpecError(f"htcondor backend: unknown submit option(s) {sorted(unknown)}")
        for row in files.rows:
            if row.template.backend_options:
                raise SpecError(
                    "htcondor backend: per-job backend_options are not supported (one cluster shares its "
                    f"submit commands); pass submit_commands to the manager instead (job {row.index})"
                )
        ids = self._submit_with_bindings(files) if self.use_bindings else self._submit_with_cli(files)
        if len(ids) != len(files.rows):
            submitted = {r: ids[r] for r in range(min(len(ids), len(files.rows)))}
            raise SubmitError(f"HTCondor created {len(ids)} jobs for {len(files.rows)} rows", submitted)
        return ids

    def _submit_with_cli(self, files: JobFiles) -> list[str]:
        argv = submit_argv(str(files.submit_files[0]), self.pool, self.schedd, self.spool)
        # No retries: a submission that timed out may have been committed. The timeout error is
        # transient, so the Submission looks the batch up by its tag instead of submitting twice.
        result = run_command(argv, timeout=self.timeout, check=False, cwd=files.directory)
        if result.returncode != 0:
            message = submit_error_message(result.stdout, result.stderr)
            if is_transient(message):
                raise TransientCommandError(argv, result.returncode, result.stdout, result.stderr)
            raise SubmitError(f"condor_submit rejected the batch in {files.directory}: {message}")
        try:
            ranges = parse_submit_terse(result.stdout)
        except ParseError as exc:
            raise TransientCommandError(
                argv,
                0,
                result.stdout,
                result.stderr,
                message=f"condor_submit succeeded but its job ids could not be read ({exc}); "
                "the batch will be looked up by its tag",
            ) from exc
        return ids_from_ranges(ranges)

    def _submit_with_bindings(self, files: JobFiles) -> list[str]:
        try:
            import htcondor2
        except ImportError as exc:
            raise MissingDependencyError(
                "use_bindings=True needs the HTCondor Python bindings: pip install 'batchkit[htcondor]'"
            ) from exc
        text = files.submit_files[0].read_text()
        try:
            description = htcondor2.Submit(text)
            schedd = self._locate_schedd(htcondor2)
            result = schedd.submit(description, spool=self.spool)
        except Exception as exc:  # the bindings raise HTCondorException, RuntimeError, ValueError...
            message = f"htcondor2.Schedd.submit refused the batch in {files.directory}: {exc}"
            if is_transient(str(exc)):
                raise TransientError(message) from exc
            raise SubmitError(message) from exc
        cluster, first, count = int(result.cluster()), int(result.first_proc()), int(result.num_procs())
        if self.spool:
            try:
                schedd.spool(result)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    schedd.act(htcondor2.JobAction.Remove, f"ClusterId == {cluster}")
                raise SubmitError(f"spooling the input of cluster {cluster} failed (cluster removed): {exc}") from exc
        return ids_from_ranges([(cluster, first, first + count - 1)])

    def _locate_schedd(self, htcondor2: Any) -> Any:
        if not (self.pool or self.schedd):
            return htcondor2.Schedd()
        collector = htcondor2.Collector(self.pool) if self.pool else htcondor2.Collector()
        if self.schedd:
            ad = collector.locate(htcondor2.DaemonType.Schedd, self.schedd)
        else:
            ad = collector.locate(htcondor2.DaemonType.Schedd)
        return htcondor2.Schedd(ad)

    # ------------------------------------------------------------------ query
    def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        result: dict[str, JobInfo] = {}
        wanted: dict[str, list[str]] = {}  # canonical "cluster.proc" -> ids as the caller wrote them
        parsed: list[JobId] = []
        for job_id in job_ids:
            job = parse_job_id(job_id)
            if job is None:
                result[job_id] = JobInfo(job_id, JobStatus.UNKNOWN, None, "not an HTCondor job id", None)
                continue
            if str(job) not in wanted:
                parsed.append(job)
            wanted.setdefault(str(job), []).append(job_id)
        if not parsed:
            return result
        queue_ads = self._ads(queue_argv, id_constraints(parsed))
        in_queue = ads_by_id(queue_ads)
        missing = [job for job in parsed if str(job) not in in_queue]
        history_ads = self._history(id_constraints(missing), len(missing)) if missing else []
        infos = combine(list(wanted), queue_ads, history_ads)
        if self.spool:
            infos.update(self._fetch_spooled_output(queue_ads))
        if self.remove_held:
            held = [job for job in parsed if infos[str(job)].native_state == "held"]
            for constraint in id_constraints(held):
                self._remove(restrict(constraint, "JobStatus == 5"))
        for canonical, originals in wanted.items():
            info = infos[canonical]
            for job_id in originals:
                result[job_id] = info if job_id == canonical else JobInfo(job_id, *_fields(info))
        return result

    def _fetch_spooled_output(self, ads: Sequence[JobAd]) -> dict[str, JobInfo]:
        """Bring the output of completed spooled jobs home; jobs whose fetch failed stay RUNNING."""
        waiting = [job for job in (ad_job_id(ad) for ad in ads if spooled_output_waiting(ad)) if job is not None]
        if not waiting:
            return {}
        try:
            for constraint in id_constraints(waiting):
                argv = transfer_data_argv(restrict(constraint, SPOOLED_OUTPUT_WAITING), self.pool, self.schedd)
                self._run(argv, retries=self.retries)
        except BatchkitError as exc:
            log.warning("fetching the output of %d completed spooled jobs failed (will retry): %s", len(waiting), exc)
            reason = f"completed; fetching its spooled output failed: {exc}"
            return {str(j): JobInfo(str(j), JobStatus.RUNNING, None, reason, "completed") for j in waiting}
        return {}

    # ------------------------------------------------------------------ find
    def find(self, tag: str, directory: str | os.PathLike[str]) -> dict[int, JobInfo]:
        constraint = tag_constraint(tag)
        queue_ads = self._ads(queue_argv, [constraint])
        rows = read_meta(Path(directory)).get("rows")
        rows = rows if isinstance(rows, int) else None
        queued = len(rows_from_ads(queue_ads))
        limit = None if rows is None else max(rows - queued, 0)
        history_ads = self._history([constraint], limit) if limit != 0 else []
        return find_rows(queue_ads, history_ads, rows)

    # ------------------------------------------------------------------ cancel / cleanup
    def cancel(self, job_ids: Sequence[str]) -> None:
        jobs = [job for job in (parse_job_id(j) for j in job_ids) if job is not None]
        for constraint in id_constraints(jobs):
            self._remove(restrict(constraint, NOT_ENDED))

    def cleanup(self, job_ids: Sequence[str]) -> None:
        """Remove held leftovers and completed spooled jobs (after fetching their output)."""
        jobs = [job for job in (parse_job_id(j) for j in job_ids) if job is not None]
        for constraint in id_constraints(jobs):
            ads = self._ads(queue_argv, [restrict(constraint, LEFTOVERS)])
            waiting = [j for j in (ad_job_id(ad) for ad in ads if spooled_output_waiting(ad)) if j is not None]
            for piece in id_constraints(waiting):
                self._run(transfer_data_argv(restrict(piece, SPOOLED_OUTPUT_WAITING), self.pool, self.schedd))
            leftovers = [j for j in (ad_job_id(ad) for ad in ads) if j is not None]
            for piece in id_constraints(leftovers):
                self._remove(restrict(piece, LEFTOVERS))

    # ------------------------------------------------------------------ helpers
    def _run(self, argv: Sequence[str], retries: int = 0) -> CommandResult:
        result = run_command(argv, timeout=self.timeout, retries=retries, transient=TRANSIENT_PATTERNS)
        if "failed to fetch ads" in (result.stdout + result.stderr).lower():
            raise TransientCommandError(argv, result.returncode, result.stdout, result.stderr)
        return result

    def _ads(
        self, build: Callable[[str, str | None, str | None], list[str]], constraints: Sequence[str]
    ) -> list[JobAd]:
        ads: list[JobAd] = []
        for constraint in constraints:
            result = self._run(build(constraint, self.pool, self.schedd), retries=self.retries)
            ads.extend(parse_ads_json(result.stdout))
        return ads

    def _history(self, constraints: Sequence[str], limit: int | None) -> list[JobAd]:
        ads: list[JobAd] = []
        for constraint in constraints:
            result = self._run(history_argv(constraint, limit, self.pool, self.schedd), retries=self.retries)
            ads.extend(parse_ads_json(result.stdout))
        return ads

    def _remove(self, constraint: str) -> None:
        argv = remove_argv(constraint, self.pool, self.schedd)
        result = run_command(
            argv, timeout=self.timeout, retries=self.retries, transient=TRANSIENT_PATTERNS, check=False
        )
        if result.returncode == 0:
            return
        text = (result.stdout + "\n" + result.stderr).lower()
        if any(words in text for words in _NOTHING_MATCHED):
            return  # the jobs had already left the queue
        if is_transient(text):
            raise TransientCommandError(argv, result.returncode, result.stdout, result.stderr)
        raise CommandError(argv, result.returncode, result.stdout, result.stderr)


def _fields(info: JobInfo) -> tuple[JobStatus, int | None, str | None, str | None]:
    return info.status, info.exit_code, info.reason, info.native_state
