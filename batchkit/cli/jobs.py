"""``batchkit submit|status|wait|cancel|resubmit|cleanup|backends``.

Thin: every command opens a :class:`~batchkit.Submission` and calls one or two of its methods;
what is shown is read from the job record. Exit codes: 0 success, 1 some jobs did not finish
successfully (``wait``), 2 user error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchkit.errors import SpecError, SubmissionBusyError, UserError

# The job machinery is imported inside the commands, so that the file commands of the same
# CLI (``batchkit cp``, run by every job that stages files) start quickly.
if TYPE_CHECKING:
    from batchkit.environment import Environment
    from batchkit.model import JobSpec
    from batchkit.record import JobRecord
    from batchkit.submission import Submission

STATUS_ORDER = ("UNSUBMITTED", "PENDING", "RUNNING", "RETRYING", "UNKNOWN", "FINISHED", "FAILED", "CANCELLED")


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "submit",
        help="describe jobs and submit them",
        description="Create a submission in DIR and submit it. The command after `--` is an argv list; "
        "{index} in any argument becomes the job's index (0-based), {array} the --array value; "
        "{{ and }} are literal braces.",
    )
    p.add_argument("--backend", "-b", required=True, help="backend name (see `batchkit backends`)")
    p.add_argument("--dir", "-d", required=True, help="submission directory (record, job files, logs)")
    p.add_argument("--array", help="make one job per value: N, A-B, A-B:STEP or a comma list (e.g. 0-99)")
    p.add_argument("--jobs", help="JSON/YAML/TOML file with a list of job specs (instead of a command)")
    p.add_argument("--retries", type=int, default=0, help="resubmit a failed job up to N times (default 0)")
    p.add_argument("--parallel-jobs", type=int, help="run at most K jobs of this submission at once")
    p.add_argument("--name", help="job name")
    p.add_argument("--cpus", type=int, help="CPU cores per job")
    p.add_argument("--memory", help="memory per job, e.g. 2GB")
    p.add_argument("--walltime", help="time limit per job, e.g. 01:30:00 or 90m")
    p.add_argument("--gpus", type=int, help="GPUs per job")
    p.add_argument("--disk", help="scratch disk per job, e.g. 10GB")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="environment (repeatable)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=URL", help="stage-in (repeatable)")
    p.add_argument("--output", action="append", default=[], metavar="NAME=URL", help="stage-out (repeatable)")
    p.add_argument(
        "--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)"
    )
    p.add_argument("--setup", metavar="SCRIPT", help="shell script every job sources first (shipped once)")
    p.add_argument(
        "--env-tarball",
        metavar="PATH|URL",
        help="packed environment (venv-pack/conda-pack .tar.gz) unpacked once per node, then activated",
    )
    p.add_argument("--apptainer", metavar="IMAGE", help="run every job inside this Apptainer image")
    p.add_argument("--bind", action="append", default=[], metavar="PATH", help="with --apptainer: bind PATH")
    p.add_argument("--wait", action="store_true", help="wait for the jobs after submitting")
    _add_wait_arguments(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="show the state of a submission", description="Counts per state and failed jobs.")
    p.add_argument("dir", help="submission directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="list every job, not only the failed ones")
    p.add_argument("--no-refresh", action="store_true", help="only read the record; do not ask the backend for news")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "wait",
        help="supervise a submission until every job is final",
        description="Reconcile with the backend, submit what was never submitted, resubmit failures within "
        "the retry budget, then wait, showing progress. Exit code 1 if any job did not finish successfully.",
    )
    p.add_argument("dir", help="submission directory")
    _add_wait_arguments(p)
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("cancel", help="cancel every job of a submission")
    p.add_argument("dir", help="submission directory")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("resubmit", help="submit failed or cancelled jobs again (fresh retry budget)")
    p.add_argument("dir", help="submission directory")
    p.add_argument("--failed", action="store_true", help="only FAILED jobs (not CANCELLED ones)")
    p.set_defaults(func=cmd_resubmit)

    p = sub.add_parser("cleanup", help="remove job files (keeps the record and logs)")
    p.add_argument("dir", help="submission directory")
    p.add_argument("--force", action="store_true", help="even if jobs are still active")
    p.set_defaults(func=cmd_cleanup)

    p = sub.add_parser("backends", help="list backends and whether this machine has their tools")
    p.set_defaults(func=cmd_backends)


def _add_wait_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--poll-interval", type=float, default=5.0, help="longest pause between polls, s (default 5)")
    p.add_argument("--timeout", type=float, help="give up waiting after this many seconds (jobs keep running)")
    p.add_argument(
        "--on-interrupt",
        choices=("cancel", "keep"),
        help="what Ctrl+C does to jobs (default: local backend cancels, batch backends keep)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


# ----------------------------------------------------------------------------- helpers
def parse_array(text: str) -> list[int]:
    """``"10"`` -> 0..9; ``"0-99"``, ``"1-10:3"``, ``"1,5,7-9"`` -> those values."""
    values: list[int] = []
    try:
        if text.isdigit():
            return list(range(int(text)))
        for part in text.split(","):
            rng, _, step = part.partition(":")
            first, dash, last = rng.partition("-")
            if dash:
                values.extend(range(int(first), int(last) + 1, int(step or 1)))
            else:
                values.append(int(first))
    except ValueError:
        raise SpecError(f"--array: cannot read {text!r} (examples: 100, 0-99, 1-10:3, 1,5,7-9)") from None
    if not values or any(v < 0 for v in values):
        raise SpecError(f"--array: {text!r} gives no (non-negative) values")
    return values


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SpecError(f"{what}: expected NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def _option_value(text: str) -> Any:
    """Backend option values: JSON where it parses (numbers, lists, true), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def environment_from_args(args: argparse.Namespace) -> Environment:
    """The Environment the ``--setup``/``--env-tarball``/``--apptainer`` arguments describe."""
    from batchkit.environment import Environment

    if args.bind and not args.apptainer:
        raise SpecError("--bind needs --apptainer")
    if args.apptainer:
        return Environment.apptainer(args.apptainer, binds=args.bind, setup_script=args.setup, tarball=args.env_tarball)
    return Environment(setup_script=args.setup, tarball=args.env_tarball)


def specs_from_args(args: argparse.Namespace) -> list[JobSpec]:
    """The job specs the ``submit`` arguments describe (a command, or a jobs file)."""
    from batchkit.jobsfile import load_jobs
    from batchkit.model import JobSpec, Resources, substitute_placeholders

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.jobs:
        if command or args.array:
            raise SpecError("give either --jobs FILE or a command (with --array), not both")
        return load_jobs(args.jobs)
    if not command:
        raise SpecError("no command: put the program and its arguments after `--`")
    resources: dict[str, Any] = {
        k: getattr(args, k) for k in ("cpus", "memory", "walltime", "gpus", "disk") if getattr(args, k) is not None
    }
    base = {
        "name": args.name,
        "resources": Resources(**resources),
        "env": _pairs(args.env, "--env"),
        "inputs": _pairs(args.input, "--input"),
        "outputs": _pairs(args.output, "--output"),
    }
    values = parse_array(args.array) if args.array else [0]
    specs = []
    for value in values:

        def sub(text: str, value: int = value) -> str:
            return substitute_placeholders(text, {"array": str(value)}, keep_escapes=True)

        specs.append(
            JobSpec(
                command=[sub(a) for a in command],
                name=base["name"],
                resources=base["resources"],
                env=base["env"],
                inputs={k: sub(v) for k, v in base["inputs"].items()},
                outputs={k: sub(v) for k, v in base["outputs"].items()},
            )
        )
    return specs


class Progress:
    """A status line on stderr: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last = ""
        self.tty = sys.stderr.isatty()

    def __call__(self, submission: Submission) -> None:
        if self.quiet:
            return
        counts = submission.counts()
        total = sum(counts.values())
        text = f"{total} jobs: " + "  ".join(f"{k} {counts[k]}" for k in STATUS_ORDER if counts.get(k))
        if text == self.last:
            return
        self.last = text
        stamp = time.strftime("%H:%M:%S")
        if self.tty:
            sys.stderr.write(f"\r\x1b[K[{stamp}] {text}")
        else:
            sys.stderr.write(f"[{stamp}] {text}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.last and not self.quiet:
            sys.stderr.write("\n")


def _wait(submission: Submission, args: argparse.Namespace) -> int:
    from batchkit.model import JobStatus

    progress = Progress(args.quiet)
    try:
        submission.wait(
            poll_interval=args.poll_interval,
            timeout=args.timeout,
            on_interrupt=args.on_interrupt,
            progress=progress,
        )
    except TimeoutError as exc:
        progress.done()
        print(f"batchkit: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.done()
    bad = [j for j in submission.jobs if j.status is not JobStatus.FINISHED]
    if not args.quiet:
        _print_failed(bad)
    return 1 if bad else 0


def _print_failed(jobs: Sequence[JobRecord]) -> None:
    if not jobs:
        return
    print(f"{'index':>6}  {'status':<10} {'exit':>5} {'tries':>5}  {'job id':<20} reason")
    for job in jobs:
        exit_code = "-" if job.exit_code is None else str(job.exit_code)
        print(
            f"{job.index:>6}  {job.status.value:<10} {exit_code:>5} {job.attempts:>5}  "
            f"{job.job_id or '-':<20} {job.reason or ''}"
        )


# ----------------------------------------------------------------------------- commands
def cmd_submit(args: argparse.Namespace) -> int:
    from batchkit.submission import Submission

    specs = specs_from_args(args)
    options = {k: _option_value(v) for k, v in _pairs(args.option, "--option").items()}
    submission = Submission.create(
        args.dir,
        backend=args.backend,
        specs=specs,
        retries=args.retries,
        parallel_jobs=args.parallel_jobs,
        backend_options=options,
        environment=environment_from_args(args),
    )
    with submission:
        submitted = submission.submit()
        if submitted:
            ids = [j.job_id for j in submitted]
            shown = ", ".join(str(i) for i in ids[:3]) + (f", ... ({len(ids)} in all)" if len(ids) > 3 else "")
            print(f"submitted {len(submitted)} jobs to {submission.backend} in {submission.directory}: {shown}")
        else:
            print(f"{submission.directory}: nothing to submit (already submitted)")
        if args.wait:
            return _wait(submission, args)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from batchkit.model import JobStatus
    from batchkit.submission import Submission

    with Submission.open(args.dir) as submission:
        if not args.no_refresh:
            # if someone else supervises it, their record is fresh enough
            with contextlib.suppress(SubmissionBusyError):
                submission.refresh()
        jobs = submission.jobs
        counts = submission.counts()
        if args.json:
            data = {
                "counts": counts,
                "jobs": [
                    {
                        "index": j.index,
                        "job_id": j.job_id,
                        "status": j.status.value,
                        "exit_code": j.exit_code,
                        "reason": j.reason,
                        "attempts": j.attempts,
                        "name": j.name,
                    }
                    for j in jobs
                ],
            }
            print(json.dumps(data, indent=1))
            return 0
        print(f"{submission.directory}: {len(jobs)} jobs on {submission.backend}")
        for key in STATUS_ORDER:
            if counts.get(key):
                print(f"  {key:<12} {counts[key]}")
        shown = jobs if args.all else [j for j in jobs if j.status in (JobStatus.FAILED, JobStatus.CANCELLED)]
        if shown:
            print()
            _print_failed(shown)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    from batchkit.submission import Submission

    with Submission.open(args.dir) as submission:
        return _wait(submission, args)


def cmd_cancel(args: argparse.Namespace) -> int:
    from batchkit.submission import Submission

    with Submission.open(args.dir) as submission:
        n = submission.cancel()
        print(f"cancelled {n} jobs of {submission.directory}")
    return 0


def cmd_resubmit(args: argparse.Namespace) -> int:
    from batchkit.submission import Submission

    with Submission.open(args.dir) as submission:
        indices = submission.resubmit(failed_only=args.failed)
        if not indices:
            print("nothing to resubmit")
            return 0
        submission.submit()
        print(f"resubmitted {len(indices)} jobs; follow them with: batchkit wait {submission.directory}")
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from batchkit.submission import Submission

    with Submission.open(args.dir) as submission:
        submission.cleanup(force=args.force)
        print(f"removed job files of {submission.directory} (record and logs kept)")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from batchkit.registry import available_backends, get_backend_class

    del args
    for name in available_backends():
        try:
            ok, detail = get_backend_class(name).availability()
        except UserError as exc:
            ok, detail = False, str(exc)
        print(f"{name:<12} {'yes' if ok else 'no ':<4} {detail}")
    return 0
