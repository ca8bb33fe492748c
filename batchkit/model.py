"""The values every layer shares: what a job is, what it needs, and what state it is in.

All classes are frozen attrs classes validated at construction, so a bad value fails where it
was written, not deep inside a scheduler call. They round-trip through plain dicts
(:meth:`JobSpec.to_dict` / :meth:`JobSpec.from_dict`), which is how the job record stores them
and how jobs files (JSON/YAML/TOML) describe them.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from batchkit.errors import SpecError
from batchkit.units import parse_duration, parse_size

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JobStatus(str, enum.Enum):
    """The state of one job, common to every backend.

    Backends map their native states onto these; a native state they do not know becomes
    ``UNKNOWN`` (never an exception), and the native word is kept in
    :attr:`JobInfo.native_state`.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        """True for states a job never leaves by itself."""
        return self in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:
        return self.value


def _opt_size(value: int | float | str | None) -> int | None:
    return None if value is None else parse_size(value, "memory/disk")


def _opt_duration(value: int | float | str | None) -> int | None:
    return None if value is None else parse_duration(value, "walltime")


def _whole_number(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(f"{what}: expected a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise SpecError(f"{what}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise SpecError(f"{what}: must be at least {minimum}, got {value!r}")
    return number


def _to_cpus(value: Any) -> int:
    return _whole_number(value, "cpus", 1)


def _to_gpus(value: Any) -> int:
    return _whole_number(value, "gpus", 0)


@attrs.frozen
class Resources:
    """What one job asks the scheduler for.

    ``memory`` and ``disk`` are stored as bytes and accept "2GB", "500MB", "2G" or a number of
    bytes; ``walltime`` is stored as seconds and accepts "HH:MM:SS", "90m" or seconds.
    ``None`` means "the site's default". Backends round up where the scheduler is coarser
    (Slurm takes whole minutes and MB, HTCondor MB).
    """

    cpus: int = attrs.field(default=1, converter=_to_cpus)
    memory: int | None = attrs.field(default=None, converter=_opt_size)
    walltime: int | None = attrs.field(default=None, converter=_opt_duration)
    gpus: int = attrs.field(default=0, converter=_to_gpus)
    disk: int | None = attrs.field(default=None, converter=_opt_size)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Resources | None) -> Resources:
        if data is None:
            return cls()
        if isinstance(data, Resources):
            return data
        if not isinstance(data, Mapping):
            raise SpecError(f"resources: expected a mapping, got {data!r}")
        unknown = set(data) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise SpecError(f"resources: unknown field(s) {sorted(unknown)}; known: cpus, memory, walltime, gpus, disk")
        return cls(**data)


def _to_resources(value: Any) -> Resources:
    return Resources.from_dict(value)


def _to_command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise SpecError(
            f"command must be an argv list such as ['python', 'run.py', '--n', '10'], not a shell string ({value!r})"
        )
    if not isinstance(value, Iterable):
        raise SpecError(f"command must be a list of strings, got {value!r}")
    items = tuple(value)
    if not items:
        raise SpecError("command is empty: give at least the program to run")
    if all(type(item) is str and "\x00" not in item for item in items):
        if not items[0]:
            raise SpecError("command: the program name (first element) is empty")
        return items
    out = []
    for item in items:
        if isinstance(item, os.PathLike):
            item = os.fspath(item)
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise SpecError(f"command arguments must be strings, got {item!r} in {list(items)!r}")
        text = str(item)
        if "\x00" in text:
            raise SpecError(f"command argument {text!r} contains a NUL byte")
        out.append(text)
    if not out[0]:
        raise SpecError("command: the program name (first element) is empty")
    return tuple(out)


def _to_env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"env must be a mapping of names to strings, got {value!r}")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _ENV_NAME_RE.match(key):
            raise SpecError(f"env: {key!r} is not a valid environment variable name")
        if key.startswith("BATCHKIT_"):
            raise SpecError(f"env: {key!r} is reserved (batchkit sets BATCHKIT_* itself)")
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise SpecError(f"env: value of {key} must be a string, got {val!r}")
        text = str(val)
        if "\x00" in text:
            raise SpecError(f"env: value of {key} contains a NUL byte")
        out[key] = text
    return out


def _to_files(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{what} must map a file name in the job's directory to a path or URL, got {value!r}")
    out: dict[str, str] = {}
    for name, location in value.items():
        if not _is_relative_file_name(name):
            raise SpecError(f"{what}: {name!r} must be a relative file name inside the job's directory")
        if not isinstance(location, str) or not location or "\x00" in location:
            raise SpecError(f"{what}: location of {name!r} must be a non-empty path or URL, got {location!r}")
        out[name] = location
    return out


def _to_inputs(value: Any) -> dict[str, str]:
    return _to_files(value, "inputs")


def _to_outputs(value: Any) -> dict[str, str]:
    return _to_files(value, "outputs")


def _is_relative_file_name(name: object) -> bool:
    """A path inside the job's directory: relative, no empty, '.' or '..' components."""
    if not isinstance(name, str) or not name or "\x00" in name or name.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _to_options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"backend_options must be a mapping, got {value!r}")
    return dict(value)


def _to_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value or "\n" in value:
        raise SpecError(f"name must be a non-empty single-line string, got {value!r}")
    return value


@attrs.frozen
class JobSpec:
    """One job: an argv list plus what it needs.

    ``command`` is an argv list, never a shell string; every ``{index}`` inside an argument is
    replaced by the job's index in its submission (``{{`` and ``}}`` stand for literal braces),
    and so is every ``{index}`` in the locations of ``inputs`` and ``outputs``.

    ``inputs`` maps a file name in the job's working directory to the path or URL to fetch it
    from before the command runs; ``outputs`` maps a file the command writes to where it is
    copied afterwards. A job with inputs or outputs runs in a fresh scratch directory; a job
    without runs in the directory it was submitted from.

    ``backend_options`` are passed to the backend untouched (e.g. a Slurm partition for this
    job only); unknown keys are an error of the backend, not of the spec.
    """

    command: tuple[str, ...] = attrs.field(converter=_to_command)
    name: str | None = attrs.field(default=None, converter=_to_name)
    resources: Resources = attrs.field(factory=Resources, converter=_to_resources)
    env: dict[str, str] = attrs.field(factory=dict, converter=_to_env, hash=False)
    inputs: dict[str, str] = attrs.field(factory=dict, converter=_to_inputs, hash=False)
    outputs: dict[str, str] = attrs.field(factory=dict, converter=_to_outputs, hash=False)
    backend_options: dict[str, Any] = attrs.field(factory=dict, converter=_to_options, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with the same field names as the constructor."""
        return {
            "command": list(self.command),
            "name": self.name,
            "resources": self.resources.to_dict(),
            "env": dict(self.env),
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "backend_options": dict(self.backend_options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | JobSpec) -> JobSpec:
        """Build a spec from a dict as found in a jobs file; unknown keys are an error."""
        if isinstance(data, JobSpec):
            return data
        if not isinstance(data, Mapping):
            raise SpecError(f"a job must be a mapping with at least 'command', got {data!r}")
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"job: unknown field(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
        if "command" not in data:
            raise SpecError("job: 'command' is required")
        return cls(**data)

    def resolved(self, index: int) -> JobSpec:
        """This spec with every ``{index}`` placeholder replaced by ``index``."""
        if not self.has_placeholders():
            return self
        return self._substituted(index)

    def _substituted(self, index: int) -> JobSpec:
        """:meth:`resolved` without the check (callers that know the spec has placeholders)."""
        # Substitution only replaces text inside already-validated strings, so the result is
        # valid by construction; skipping the converters keeps 10,000-job batches cheap.
        values = {"index": str(index)}
        resolved = object.__new__(JobSpec)
        put = object.__setattr__
        put(resolved, "command", tuple([_sub(a, values) for a in self.command]))
        put(resolved, "name", self.name)
        put(resolved, "resources", self.resources)
        put(resolved, "env", self.env)
        put(resolved, "inputs", {k: _sub(v, values) for k, v in self.inputs.items()})
        put(resolved, "outputs", {k: _sub(v, values) for k, v in self.outputs.items()})
        put(resolved, "backend_options", self.backend_options)
        return resolved

    def has_placeholders(self) -> bool:
        """True if the command, inputs or outputs contain braces (``{index}`` or escapes)."""
        texts = (*self.command, *self.inputs.values(), *self.outputs.values())
        return any("{" in t or "}" in t for t in texts)


def _sub(text: str, values: Mapping[str, str]) -> str:
    return substitute_placeholders(text, values) if ("{" in text or "}" in text) else text


def split_placeholder(text: str, name: str = "index") -> list[str | None]:
    """``text`` as literal pieces and ``None`` where ``{name}`` stands (escapes resolved).

    Agrees with :func:`substitute_placeholders`: ``"".join(p if p is not None else v ...)``
    equals ``substitute_placeholders(text, {name: v})`` for every ``v``.

    >>> split_placeholder("out_{index}.root")
    ['out_', None, '.root']
    >>> split_placeholder("{{index}}_{index}")
    ['{index}_', None]
    """
    marker = "{" + name + "}"
    pieces: list[str | None] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(text[i])
            i += 2
        elif text.startswith(marker, i):
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(None)
            i += len(marker)
        else:
            literal.append(text[i])
            i += 1
    if literal or not pieces:
        pieces.append("".join(literal))
    return pieces


def substitute_index(text: str, index: int) -> str:
    """Replace ``{index}`` by ``index``; ``{{``/``}}`` are literal braces, other braces stay.

    >>> substitute_index("out_{index}.root", 7)
    'out_7.root'
    >>> substitute_index("{{index}} {x}", 7)
    '{index} {x}'
    """
    return substitute_placeholders(text, {"index": str(index)})


def substitute_placeholders(text: str, values: Mapping[str, str], keep_escapes: bool = False) -> str:
    """Replace ``{name}`` for every ``name`` in ``values``; other braces stay as written.

    ``{{`` and ``}}`` are escaped braces: they become ``{``/``}`` -- or stay doubled with
    ``keep_escapes``, for a first pass (the CLI's ``{array}``) before the final ``{index}`` one.
    """
    if "{" not in text and "}" not in text:
        return text
    if not keep_escapes and "{{" not in text and "}}" not in text:
        for name, value in values.items():  # no escapes: plain replacement is exact
            text = text.replace("{" + name + "}", value)
        return text
    out = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("{{", i) or text.startswith("}}", i):
            out.append(text[i : i + 2] if keep_escapes else text[i])
            i += 2
            continue
        if text[i] == "{":
            end = text.find("}", i)
            name = text[i + 1 : end] if end > 0 else ""
            if name in values:
                out.append(values[name])
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


@attrs.frozen
class JobInfo:
    """What a backend knows about one job at one moment.

    ``exit_code`` is the command's exit code when known; ``reason`` is a human-readable
    explanation for anything but plain success (the scheduler's reason, a hold reason, a
    signal, ...); ``native_state`` is the scheduler's own word for the state.
    """

    job_id: str
    status: JobStatus = attrs.field(converter=JobStatus)
    exit_code: int | None = None
    reason: str | None = None
    native_state: str | None = None
