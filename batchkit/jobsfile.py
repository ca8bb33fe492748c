"""Read job descriptions from a JSON, YAML or TOML file (``batchkit submit --jobs FILE``).

The file holds a list of jobs whose fields are :class:`~batchkit.model.JobSpec`'s
(``command``, ``name``, ``resources`` {cpus, memory, walltime, gpus, disk}, ``env``,
``inputs``, ``outputs``, ``backend_options``). JSON and YAML may give the list at top level or
under a ``jobs`` key; TOML needs the key (``[[jobs]]`` tables), because a TOML document is a
table. The format follows the file suffix (``.json``, ``.yaml``/``.yml``, ``.toml``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from batchkit.errors import JobFileError, SpecError
from batchkit.model import JobSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib


def parse_jobs(text: str, fmt: str, source: str = "<jobs>") -> list[JobSpec]:
    """Parse the text of a jobs file in format ``fmt`` (``json``, ``yaml`` or ``toml``)."""
    try:
        if fmt == "json":
            data: Any = json.loads(text)
        elif fmt == "yaml":
            data = yaml.safe_load(text)
        elif fmt == "toml":
            data = tomllib.loads(text)
        else:
            raise JobFileError(f"{source}: unknown format {fmt!r} (use .json, .yaml, .yml or .toml)")
    except (ValueError, yaml.YAMLError) as exc:
        raise JobFileError(f"{source}: not valid {fmt.upper()}: {exc}") from exc
    if isinstance(data, dict) and "jobs" in data:
        data = data["jobs"]
    if not isinstance(data, list):
        raise JobFileError(f"{source}: expected a list of jobs (or a 'jobs' list), got {type(data).__name__}")
    if not data:
        raise JobFileError(f"{source}: the list of jobs is empty")
    specs = []
    for number, item in enumerate(data):
        try:
            specs.append(JobSpec.from_dict(item))
        except SpecError as exc:
            raise JobFileError(f"{source}: job {number}: {exc}") from exc
    return specs


def load_jobs(path: str | Path) -> list[JobSpec]:
    """Read a jobs file; the format comes from its suffix."""
    file = Path(path)
    suffix = file.suffix.lower().lstrip(".")
    fmt = {"yml": "yaml"}.get(suffix, suffix)
    try:
        text = file.read_text()
    except OSError as exc:
        raise JobFileError(f"cannot read jobs file {file}: {exc.strerror}") from exc
    return parse_jobs(text, fmt, str(file))
