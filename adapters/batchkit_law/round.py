"""One law submission round as a file: the batchkit specs law's grouped submit hands over.

law's grouped submission passes the job manager one *job file* for a whole round (plus one
copy of its path per job). For batchkit that file is ``law_round.json`` in the round's
directory: the :class:`~batchkit.JobSpec` of every job, the law job number (used as the
batchkit index, so the wrapper's logs and markers are ``logs/<job_num>.out`` and
``markers/<job_num>.exit``) and the attempt. The manager reads it and makes ONE batchkit
submit of all its jobs. Keeping it on disk also documents what was submitted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from batchkit.errors import JobFileError
from batchkit.model import JobSpec

ROUND_FILE = "law_round.json"
FORMAT = "batchkit-law-round/1"


@attrs.frozen
class RoundJob:
    """One law job of a round: its number, attempt (1 = first), spec and log file for law."""

    job_num: int
    attempt: int
    spec: JobSpec
    log: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job_num": self.job_num, "attempt": self.attempt, "spec": self.spec.to_dict(), "log": self.log}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundJob:
        return cls(int(data["job_num"]), int(data["attempt"]), JobSpec.from_dict(data["spec"]), data.get("log"))


@attrs.frozen
class Round:
    """All jobs of one submission round; ``directory`` is the batchkit batch directory."""

    directory: str
    tag: str
    jobs: tuple[RoundJob, ...]

    @property
    def job_nums(self) -> list[int]:
        return [job.job_num for job in self.jobs]

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "directory": self.directory,
            "tag": self.tag,
            "jobs": [job.to_dict() for job in self.jobs],
        }
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "") -> Round:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
            jobs = tuple(RoundJob.from_dict(job) for job in data["jobs"])
            return cls(str(data["directory"]), str(data["tag"]), jobs)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JobFileError(f"{source or 'law round file'}: not a batchkit law round ({exc})") from exc

    def write(self) -> Path:
        """Write ``law_round.json`` into the round directory (atomically) and return its path."""
        path = Path(self.directory) / ROUND_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)
        return path


def read_round(path: str | os.PathLike[str]) -> Round:
    """The round described by the file at ``path``."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise JobFileError(f"cannot read law round file {path}: {exc}") from exc
    return Round.from_json(text, str(path))
