"""``batchkit demo``: run the small HEP-flavoured workflow of :mod:`batchkit.demo`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a small workflow on the local backend",
        description="Generate toy event files in N jobs, fill a histogram per file as each one finishes "
        "(pipelining), merge and draw the result. Everything runs as local processes.",
    )
    p.add_argument("--dir", type=Path, default=Path("batchkit-demo"), help="work directory (default ./batchkit-demo)")
    p.add_argument("--files", type=int, default=6, help="number of generator jobs (default 6)")
    p.add_argument("--events", type=int, default=20000, help="events per file (default 20000)")
    p.add_argument("--parallel", type=int, default=3, help="jobs running at once (default 3)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from batchkit import demo

    return demo.run(args.dir.absolute(), args.files, args.events, args.parallel)
