"""Slurm options and resources -> ``sbatch`` arguments (pure, validated once).

Where batchkit's units are finer than Slurm's, values are rounded *up*, so a job never gets
less than it asked for:

* ``memory`` (bytes) -> ``--mem=<MiB>M``; ``disk`` -> ``--tmp=<MiB>M`` (Slurm's ``M`` is MiB).
  0 would mean "all the memory of the node" to Slurm, so at least 1 MiB is asked for.
* ``walltime`` (seconds) -> ``--time=<minutes>``: Slurm enforces whole minutes, so 90 s becomes
  2 minutes and anything below a minute becomes 1 minute (``--time=0`` would mean no limit).
* ``cpus`` -> ``--cpus-per-task``; ``gpus`` -> ``--gpus=N`` or, with ``gpu_option="gres"``,
  ``--gres=gpu:N`` (older sites).

Site options (partition, account, qos, constraint, reservation, ``sbatch_options``) can be
set for the whole manager and overridden per job through ``JobSpec.backend_options``; jobs
whose options differ go to different arrays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from batchkit.errors import SpecError
from batchkit.model import Resources
from batchkit.units import ceil_div

MIB = 1024**2

#: Site options allowed in the manager options and in a job's ``backend_options``.
SITE_OPTIONS = ("partition", "account", "qos", "constraint", "reservation", "sbatch_options", "gpu_option")

#: sbatch options batchkit sets itself; a passthrough may not override them.
RESERVED_SBATCH_OPTIONS = frozenset(
    {"array", "parsable", "job-name", "J", "wrap", "cpus-per-task", "c", "mem", "time", "t", "gpus", "G", "tmp"}
)

_OPTION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def _opt_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\n\r\x00"):
        raise SpecError(f"slurm: {what} must be a non-empty single-line string, got {value!r}")
    return value.strip()


def _to_partition(value: Any) -> str | None:
    return _opt_text(value, "partition")


def _to_account(value: Any) -> str | None:
    return _opt_text(value, "account")


def _to_qos(value: Any) -> str | None:
    return _opt_text(value, "qos")


def _to_constraint(value: Any) -> str | None:
    return _opt_text(value, "constraint")


def _to_reservation(value: Any) -> str | None:
    return _opt_text(value, "reservation")


def _to_gpu_option(value: Any) -> str:
    if value not in ("gpus", "gres"):
        raise SpecError(f"slurm: gpu_option must be 'gpus' (--gpus=N) or 'gres' (--gres=gpu:N), got {value!r}")
    return str(value)


def normalise_sbatch_options(value: Any) -> tuple[str, ...]:
    """A passthrough of extra sbatch options as a tuple of ``--name=value`` / ``--flag`` strings.

    Accepts a list of raw strings (``["--exclusive", "--mail-type=END"]``) or a mapping
    (``{"mail-type": "END", "exclusive": True}``; ``False``/``None`` values are left out).
    Options batchkit sets itself (``--array``, ``--job-name``, ``--mem``, ...) are refused:
    use the resources or the dedicated options instead.
    """
    if value is None:
        return ()
    items: list[str] = []
    if isinstance(value, Mapping):
        for key, val in value.items():
            name = str(key).lstrip("-")
            if not _OPTION_NAME_RE.match(name):
                raise SpecError(f"slurm: sbatch_options: {key!r} is not an sbatch option name")
            if val is None or val is False:
                continue
            if val is True:
                items.append(f"--{name}")
                continue
            if isinstance(val, bool) or not isinstance(val, (str, int, float)):
                raise SpecError(f"slurm: sbatch_options: value of {key!r} must be a string or number, got {val!r}")
            items.append(f"--{name}={val}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str) or not item.startswith("-"):
                raise SpecError(f"slurm: sbatch_options: {item!r} is not an option like '--exclusive' or '--qos=long'")
            items.append(item)
    else:
        raise SpecError(f"slurm: sbatch_options must be a list of '--opt=value' strings or a mapping, got {value!r}")
    for item in items:
        if any(c in item for c in "\n\r\x00"):
            raise SpecError(f"slurm: sbatch_options: {item!r} contains a line break or NUL byte")
        name = item.lstrip("-").split("=", 1)[0]
        if name in RESERVED_SBATCH_OPTIONS:
            raise SpecError(
                f"slurm: sbatch_options: {item!r} is set by batchkit (use the job's resources or the slurm "
                "options partition/account/qos/constraint/reservation instead)"
            )
    return tuple(items)


@attrs.frozen
class SlurmSiteOptions:
    """Where and as whom jobs run; one value per array (rows with different values split)."""

    partition: str | None = attrs.field(default=None, converter=_to_partition)
    account: str | None = attrs.field(default=None, converter=_to_account)
    qos: str | None = attrs.field(default=None, converter=_to_qos)
    constraint: str | None = attrs.field(default=None, converter=_to_constraint)
    reservation: str | None = attrs.field(default=None, converter=_to_reservation)
    sbatch_options: tuple[str, ...] = attrs.field(default=(), converter=normalise_sbatch_options)
    gpu_option: str = attrs.field(default="gpus", converter=_to_gpu_option)

    def merged(self, overrides: Mapping[str, Any], what: str) -> SlurmSiteOptions:
        """These options with a job's ``backend_options`` on top (unknown keys -> SpecError).

        ``sbatch_options`` of the job are appended to the manager's (a later option wins in
        sbatch), everything else replaces.
        """
        unknown = set(overrides) - set(SITE_OPTIONS)
        if unknown:
            raise SpecError(f"slurm: unknown option(s) {sorted(unknown)} in {what}; known: {', '.join(SITE_OPTIONS)}")
        if not overrides:
            return self
        changes = dict(overrides)
        if "sbatch_options" in changes:
            changes["sbatch_options"] = self.sbatch_options + normalise_sbatch_options(changes["sbatch_options"])
        return attrs.evolve(self, **changes)

    def sbatch_args(self) -> list[str]:
        """The site options as sbatch arguments (passthrough last, so it can add anything)."""
        args = []
        for name in ("partition", "account", "qos", "constraint", "reservation"):
            value = getattr(self, name)
            if value is not None:
                args.append(f"--{name}={value}")
        args.extend(self.sbatch_options)
        return args


def resource_args(resources: Resources, gpu_option: str = "gpus") -> list[str]:
    """Resources as sbatch arguments, rounded up to Slurm's units (see the module docstring)."""
    args = [f"--cpus-per-task={resources.cpus}"]
    if resources.memory is not None:
        args.append(f"--mem={max(1, ceil_div(resources.memory, MIB))}M")
    if resources.walltime is not None:
        args.append(f"--time={walltime_minutes(resources.walltime)}")
    if resources.gpus:
        args.append(f"--gres=gpu:{resources.gpus}" if gpu_option == "gres" else f"--gpus={resources.gpus}")
    if resources.disk is not None:
        args.append(f"--tmp={max(1, ceil_div(resources.disk, MIB))}M")
    return args


def walltime_minutes(seconds: int) -> int:
    """Slurm's time limit for ``seconds``: whole minutes, rounded up, at least 1."""
    return max(1, ceil_div(seconds, 60))


def site_options_from(options: Mapping[str, Any], what: str) -> SlurmSiteOptions:
    """Build site options from a mapping, refusing unknown keys."""
    return SlurmSiteOptions().merged(options, what)


def check_submit_options(options: Mapping[str, Any], known: Sequence[str]) -> int | None:
    """Validate ``JobFiles.options``; return the ``parallel_jobs`` cap (None: no cap)."""
    unknown = set(options) - set(known)
    if unknown:
        raise SpecError(f"slurm: unknown submit option(s) {sorted(unknown)}; known: {', '.join(known)}")
    cap = options.get("parallel_jobs")
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise SpecError(f"slurm: parallel_jobs must be a positive integer, got {cap!r}")
    return cap
