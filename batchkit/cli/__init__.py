"""The ``batchkit`` command line.

Each module under :mod:`batchkit.cli` adds its sub-commands through ``add_commands``:
:mod:`~batchkit.cli.jobs` (submit, status, wait, ...), :mod:`~batchkit.cli.files` (cp, ls,
rm, stat) and :mod:`~batchkit.cli.demo`. User errors (any :class:`~batchkit.errors.UserError`
and the other expected :class:`~batchkit.errors.BatchkitError`) print one line and exit
non-zero; only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from batchkit import __version__
from batchkit.errors import BatchkitError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from batchkit.cli import demo, files, jobs

    parser = argparse.ArgumentParser(
        prog="batchkit",
        description="Submit jobs to batch systems and move files between storage systems.",
    )
    parser.add_argument("--version", action="version", version=f"batchkit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    jobs.add_commands(sub)
    files.add_commands(sub)
    demo.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BatchkitError as exc:
        print(f"batchkit: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code
