"""The ``batchkit`` workflow type for law: ``law run mod.MyTask --workflow batchkit``.

::

    import law
    from batchkit_law import BatchkitWorkflow

    class MyTask(BatchkitWorkflow, law.LocalWorkflow):
        batchkit_backend = "slurm"                      # or --batchkit-backend slurm

        def batchkit_output_directory(self):
            return law.LocalDirectoryTarget("/shared/jobs/mytask")

        def batchkit_backend_options(self):
            return {"partition": "debug"}

law keeps its whole remote-workflow machinery (branch maps, ``--tasks-per-job``,
``--parallel-jobs``, ``--retries``, tolerance and acceptance, the jobs JSON, ``--cancel-jobs``,
``--cleanup-jobs``, polling output). The adapter supplies what law asks every backend for: a
job manager (:class:`~batchkit_law.manager.BatchkitJobManager`, grouped: one batchkit call per
submission round and per poll) and a job file factory
(:class:`~batchkit_law.files.BatchkitJobFileFactory`, law's ``law_job.sh`` plus its arguments
as batchkit specs). Hooks follow law's ``<type>_*`` naming (here ``batchkit_*``) and can be
overridden per task; the docstrings of :class:`BatchkitWorkflow` list them.
"""

from __future__ import annotations

import contextlib
import os
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import luigi
from law.config import Config
from law.job.base import JobArguments, JobInputFile
from law.parameter import NO_STR
from law.target.file import FileSystemDirectoryTarget, get_path, get_scheme
from law.target.local import LocalDirectoryTarget
from law.task.proxy import ProxyCommand
from law.util import DotDict, law_src_path, merge_dicts
from law.workflow.remote import BaseRemoteWorkflow, BaseRemoteWorkflowProxy

from batchkit.errors import SpecError
from batchkit.model import Resources
from batchkit_law.config import register_config_defaults
from batchkit_law.files import BatchkitJobFileFactory, job_postfix
from batchkit_law.interrupt import deferred_interrupt
from batchkit_law.manager import DEFAULT_LOST_AFTER, DEFAULT_QUERY_INTERVAL, BatchkitJobManager

register_config_defaults()

#: Backend used when neither the task nor law.cfg (``[job] batchkit_backend``) names one.
DEFAULT_BACKEND = "local"


class BatchkitWorkflowProxy(BaseRemoteWorkflowProxy):  # type: ignore[misc]  # law is untyped
    """law's remote workflow proxy for batchkit: builds rounds, submits them grouped."""

    workflow_type = "batchkit"

    def create_job_manager(self, **kwargs: Any) -> BatchkitJobManager:
        manager: BatchkitJobManager = self.task.batchkit_create_job_manager(**kwargs)
        return manager

    def create_job_file_factory(self, **kwargs: Any) -> BatchkitJobFileFactory:
        factory: BatchkitJobFileFactory = self.task.batchkit_create_job_file_factory(**kwargs)
        return factory

    def create_job_file(self, submit_jobs: Mapping[int, Sequence[int]]) -> dict[str, Any]:
        """Write one submission round for ``submit_jobs`` (job number -> branches).

        Returns law's ``{"job": <round file>, "config": ..., "log": {job_num: log file}}``.
        """
        task = self.task
        c = self.job_file_factory.get_config()
        c.input_files = {}
        c.render_variables = {}
        c.env = {}
        c.backend_options = {}
        c.task_family = task.task_family

        law_job_file = task.batchkit_job_file()
        c.input_files["job_file"] = law_job_file
        c.executable = "job_file"
        wrapper_file = task.batchkit_wrapper_file()
        if wrapper_file and get_path(wrapper_file) != get_path(law_job_file):
            c.input_files["executable_file"] = wrapper_file
            c.executable = "executable_file"
        for key, hook in (
            ("bootstrap_file", task.batchkit_bootstrap_file),
            ("stageout_file", task.batchkit_stageout_file),
        ):
            path = hook()
            if path:
                c.input_files[key] = path
        dashboard_file = self.dashboard.remote_hook_file()
        if dashboard_file:
            c.input_files["dashboard_file"] = dashboard_file

        # the same "law run <task> <params>" for every job; law_job.sh appends --branch=N
        task_params = self._proxy_command().build(skip_run=True)
        c.render_variables["law_job_tmp"] = '/tmp/law_$( basename "$LAW_JOB_HOME" )'

        output_dir = _local_dir(task.batchkit_output_directory())
        log_dir = _local_dir(task.batchkit_log_directory() or output_dir)
        transfer_logs = bool(task.transfer_logs) and isinstance(log_dir, LocalDirectoryTarget)
        c.custom_log_file = "stdall.txt" if transfer_logs else None

        c.jobs = []
        for job_num, branches in submit_jobs.items():
            branches = list(branches)
            postfix = job_postfix(branches)
            arguments = JobArguments(
                task_cls=task.__class__,
                task_params=task_params,
                branches=branches,
                workers=task.job_workers,
                auto_retry=False,
                dashboard_data=self.dashboard.remote_hook_data(job_num, self.job_data.attempts.get(job_num, 0)),
            ).get_args()
            log = None
            if transfer_logs:
                log = os.path.join(log_dir.abspath, self.job_file_factory.postfix_output_file("stdall.txt", postfix))
            c.jobs.append(
                {
                    "job_num": job_num,
                    "branches": branches,
                    "attempt": self.job_data.attempts.get(job_num, 0) + 1,
                    "arguments": [str(a) for a in arguments],
                    "name": f"{task.task_family}{postfix}",
                    "resources": _resources(task.batchkit_resources(job_num, branches)),
                    "log": log,
                }
            )

        c = task.batchkit_job_config(c, list(submit_jobs.keys()), [list(b) for b in submit_jobs.values()])
        round_file, c = self.job_file_factory(**c.__dict__)
        return {"job": round_file, "config": c, "log": dict(c.logs)}

    def _proxy_command(self) -> Any:
        task = self.task
        exclude_args = (
            task.exclude_params_branch
            | task.exclude_params_workflow
            | task.exclude_params_remote_workflow
            | task.exclude_params_batchkit_workflow
            | {"workflow", "effective_workflow"}
        )
        proxy_cmd = ProxyCommand(
            task.as_branch(0),
            exclude_task_args=exclude_args,
            exclude_global_args=["workers", "local-scheduler", task.task_family + "-*"],
        )
        if task.batchkit_use_local_scheduler():
            proxy_cmd.add_arg("--local-scheduler", "True", overwrite=True)
        for key, value in OrderedDict(task.batchkit_cmdline_args()).items():
            proxy_cmd.add_arg(key, value, overwrite=True)
        return proxy_cmd

    def submit(self, retry_jobs: Any = None) -> Any:
        """law's submit, with Ctrl+C held back until the new ids are in the jobs JSON."""
        with deferred_interrupt():
            return super().submit(retry_jobs)

    def _submit_group(self, submit_jobs: Mapping[int, Sequence[int]], **kwargs: Any) -> tuple[list[Any], Any]:
        """One round -> one grouped submit; unlike law's version, each job keeps its own log file."""
        task = self.task
        job_file = self.create_job_file(submit_jobs)
        submit_kwargs = merge_dicts(self._setup_job_manager(), self._get_job_kwargs("submit"), kwargs)
        job_ids = self.job_manager.submit_group(
            [job_file["job"]] * len(submit_jobs),
            threads=task.submission_threads,
            **submit_kwargs,
        )
        data: OrderedDict[int, dict[str, Any]] = OrderedDict()
        for job_num, job_id in zip(submit_jobs, job_ids):
            self.job_data.jobs[job_num]["job_id"] = job_id
            data[job_num] = {"job": job_file["job"], "config": job_file["config"], "log": job_file["log"].get(job_num)}
        return job_ids, data

    def destination_info(self) -> Any:
        info = super().destination_info()
        info["backend"] = f"backend: {self.task.batchkit_backend_name()}"
        return self.task.batchkit_destination_info(info)


class BatchkitWorkflow(BaseRemoteWorkflow):  # type: ignore[misc]  # law is untyped
    """Mix in to run a law workflow's jobs through batchkit (``--workflow batchkit``).

    Parameter: ``--batchkit-backend`` (or a class attribute ``batchkit_backend = "slurm"``).

    Hooks (override per task; law's usual remote-workflow hooks with the ``batchkit_`` prefix):

    * ``batchkit_output_directory()`` -- required: where the jobs JSON (and, by default, logs)
      go; a directory target or path.
    * ``batchkit_backend_name()`` -- the backend: the parameter/attribute, else ``[job]
      batchkit_backend`` in law.cfg, else ``"local"``.
    * ``batchkit_backend_options()`` -- options of the batchkit backend (``{"partition": "x"}``).
    * ``batchkit_resources(job_num, branches)`` -- what one job asks the scheduler for: a
      :class:`batchkit.Resources`, a dict (``{"cpus": 2, "memory": "4GB", "walltime": "2h"}``)
      or None for the site's defaults.
    * ``batchkit_job_config(config, job_nums, branches)`` -- last word on a round: change
      ``config.render_variables``, ``config.input_files``, ``config.env`` /
      ``config.backend_options`` (every job) or the per-job dicts in ``config.jobs``.
    * ``batchkit_bootstrap_file()``, ``batchkit_stageout_file()``, ``batchkit_wrapper_file()``,
      ``batchkit_job_file()`` -- law's job-side files (paths or :class:`law.JobInputFile`).
    * ``batchkit_log_directory()`` -- where ``--transfer-logs`` puts ``stdall_<postfix>.txt``.
    * ``batchkit_query_interval()`` -- seconds between scheduler queries (default 30; 0: every
      poll). Polls in between read only the batchkit wrapper's start/exit markers, so a short
      ``--poll-interval`` shows progress without loading the scheduler.
    * ``batchkit_lost_after()`` -- seconds a job may be unknown to the scheduler, without an
      exit marker, before it is retried as lost.
    * law's generic ones: ``batchkit_job_resources`` (luigi scheduler resources, *not* batch
      resources), ``batchkit_workflow_requires``, ``batchkit_output_postfix``,
      ``batchkit_post_submit_delay``, ``batchkit_poll_callback``, ``batchkit_post_poll_callback``,
      ``batchkit_check_job_completeness[_delay]``, ``batchkit_dump_intermediate_job_data``,
      ``batchkit_use_local_scheduler``, ``batchkit_cmdline_args``, ``batchkit_destination_info``,
      ``batchkit_workflow_run_context``, ``batchkit_create_job_manager``,
      ``batchkit_create_job_file_factory``.
    """

    workflow_proxy_cls = BatchkitWorkflowProxy

    batchkit_workflow_run_decorators: Any = None
    batchkit_job_manager_defaults: Any = None
    batchkit_job_file_factory_defaults: Any = None

    batchkit_backend = luigi.Parameter(
        default=NO_STR,
        significant=False,
        description="batchkit backend to run the jobs on (local, slurm, htcondor, ...); default: "
        "[job] batchkit_backend in law.cfg, else local",
    )

    batchkit_job_kwargs: Any = []
    batchkit_job_kwargs_submit: Any = None
    batchkit_job_kwargs_cancel: Any = None
    batchkit_job_kwargs_cleanup: Any = None
    batchkit_job_kwargs_query: Any = None

    exclude_params_branch = {"batchkit_backend"}
    exclude_params_batchkit_workflow: set[str] = set()

    exclude_index = True

    # ------------------------------------------------------------------ backend
    def batchkit_backend_name(self) -> str:
        value = getattr(self, "batchkit_backend", NO_STR)
        if isinstance(value, str) and value and value != NO_STR:
            return value
        configured = Config.instance().get_expanded("job", "batchkit_backend", None)
        return str(configured) if configured else DEFAULT_BACKEND

    def batchkit_backend_options(self) -> dict[str, Any]:
        return {}

    def batchkit_lost_after(self) -> float:
        return DEFAULT_LOST_AFTER

    def batchkit_query_interval(self) -> float:
        return DEFAULT_QUERY_INTERVAL

    def batchkit_resources(self, job_num: int, branches: Sequence[int]) -> Resources | Mapping[str, Any] | None:
        return None

    def batchkit_job_config(self, config: Any, job_nums: Sequence[int], branches: Sequence[Sequence[int]]) -> Any:
        return config

    # ------------------------------------------------------------------ files
    @abstractmethod
    def batchkit_output_directory(self) -> Any:
        """Where the jobs JSON goes (and logs, without ``batchkit_log_directory``)."""

    def batchkit_log_directory(self) -> Any:
        return None

    def batchkit_bootstrap_file(self) -> Any:
        return None

    def batchkit_stageout_file(self) -> Any:
        return None

    def batchkit_wrapper_file(self) -> Any:
        return None

    def batchkit_job_file(self) -> Any:
        return JobInputFile(law_src_path("job", "law_job.sh"))

    # ------------------------------------------------------------------ law's generic hooks
    @contextlib.contextmanager
    def batchkit_workflow_run_context(self) -> Iterator[None]:
        yield

    def batchkit_workflow_requires(self) -> Any:
        return DotDict()

    def batchkit_job_resources(self, job_num: int, branches: Sequence[int]) -> dict[str, int]:
        """luigi scheduler resources of one job (law's ``<type>_job_resources``); not batch resources."""
        return {}

    def batchkit_output_postfix(self) -> str:
        return ""

    def batchkit_job_manager_cls(self) -> type[BatchkitJobManager]:
        return BatchkitJobManager

    def batchkit_create_job_manager(self, **kwargs: Any) -> BatchkitJobManager:
        kwargs = merge_dicts(self.batchkit_job_manager_defaults, kwargs)
        kwargs.setdefault("backend", self.batchkit_backend_name())
        kwargs.setdefault("backend_options", self.batchkit_backend_options())
        kwargs.setdefault("lost_after", self.batchkit_lost_after())
        kwargs.setdefault("query_interval", self.batchkit_query_interval())
        return self.batchkit_job_manager_cls()(**kwargs)

    def batchkit_job_file_factory_cls(self) -> type[BatchkitJobFileFactory]:
        return BatchkitJobFileFactory

    def batchkit_create_job_file_factory(self, **kwargs: Any) -> BatchkitJobFileFactory:
        factory_cls = self.batchkit_job_file_factory_cls()
        kwargs = merge_dicts({}, self.batchkit_job_file_factory_defaults, kwargs)
        if kwargs.get("mkdtemp") is None:
            cfg = Config.instance()
            mkdtemp = cfg.get_expanded(
                "job", cfg.find_option("job", "batchkit_job_file_dir_mkdtemp", "job_file_dir_mkdtemp")
            )
            if isinstance(mkdtemp, str) and mkdtemp.lower() not in {"true", "false"}:
                kwargs["mkdtemp"] = factory_cls._expand_template_path(
                    mkdtemp, variables={"task_id": self.live_task_id, "task_family": self.task_family}
                )
        return factory_cls(**kwargs)

    def batchkit_dump_intermediate_job_data(self) -> bool:
        return True

    def batchkit_post_submit_delay(self) -> float:
        return float(self.poll_interval) * 60

    def batchkit_check_job_completeness(self) -> bool:
        return False

    def batchkit_check_job_completeness_delay(self) -> float:
        return 0.0

    def batchkit_poll_callback(self, poll_data: Any) -> Any:
        return None

    def batchkit_post_poll_callback(self, success: bool, duration: float) -> None:
        return None

    def batchkit_use_local_scheduler(self) -> bool:
        return bool(Config.instance().get_expanded_bool("luigi_core", "local_scheduler", False))

    def batchkit_cmdline_args(self) -> Mapping[str, Any]:
        return {}

    def batchkit_destination_info(self, info: Any) -> Any:
        return info


def _local_dir(target: Any) -> Any:
    """A local directory target for a path or target (created), or the remote target unchanged."""
    if not isinstance(target, FileSystemDirectoryTarget):
        path = get_path(target)
        if get_scheme(path) not in (None, "file"):
            return target
        target = LocalDirectoryTarget(path)
    if isinstance(target, LocalDirectoryTarget):
        target.touch()
    return target


def _resources(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Resources):
        return value.to_dict()
    if isinstance(value, Mapping):
        return Resources.from_dict(value).to_dict()
    raise SpecError(f"batchkit_resources must return Resources, a dict or None, got {value!r}")
