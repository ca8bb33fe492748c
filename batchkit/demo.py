"""``batchkit demo``: a small HEP-flavoured workflow on the local backend.

1. *generate*: N jobs each write a file of toy dimuon invariant masses (a Z peak at 91 GeV over
   a falling background), each with its own seed -- ``{index}`` in the command;
2. *histogram*: as each file appears (``as_completed``), a job that fills a histogram from it is
   added to a second submission and starts at once, while other generators still run -- the
   pipelining pattern;
3. *merge*: the per-file histograms are summed and drawn.

The job payloads are this module's ``generate`` and ``histogram`` entry points
(``python -m batchkit.demo generate ...``), so the demo needs nothing but batchkit.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from batchkit.errors import UserError
from batchkit.model import JobSpec, JobStatus, Resources
from batchkit.submission import Submission

LOW, HIGH, BINS = 60.0, 120.0, 30
MARKER = ".batchkit-demo"


# ----------------------------------------------------------------------------- payloads
def generate(seed: int, events: int, out: Path, delay: float) -> None:
    """Write ``events`` toy masses (GeV), one per line: 60 % Z peak, 40 % exponential."""
    rng = random.Random(seed)
    time.sleep(delay)  # stands in for a real simulation's run time
    lines = []
    for _ in range(events):
        if rng.random() < 0.6:
            mass = rng.gauss(91.19, 2.5)
        else:
            mass = LOW + rng.expovariate(1 / 25.0)
        lines.append(f"{mass:.3f}")
    tmp = out.with_name(out.name + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)


def histogram(src: Path, out: Path) -> None:
    """Fill a fixed-binning histogram from one events file and store it as JSON."""
    counts = [0] * BINS
    width = (HIGH - LOW) / BINS
    for line in src.read_text().split():
        mass = float(line)
        if LOW <= mass < HIGH:
            counts[int((mass - LOW) / width)] += 1
    out.write_text(json.dumps({"low": LOW, "high": HIGH, "counts": counts}))


def draw(counts: Sequence[int], width: int = 50) -> str:
    """An ASCII histogram, one row per bin."""
    peak = max(counts) or 1
    step = (HIGH - LOW) / len(counts)
    rows = []
    for i, n in enumerate(counts):
        bar = "#" * math.ceil(width * n / peak) if n else ""
        rows.append(f"{LOW + i * step:6.1f} GeV |{bar} {n}")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- workflow
def run(directory: Path, files: int, events: int, parallel: int, say: Callable[[str], None] = print) -> int:
    """Run the whole demo in ``directory``; return 0 when every job finished."""
    if directory.exists():
        if not (directory / MARKER).exists() and any(directory.iterdir()):
            raise UserError(f"{directory} exists and is not a batchkit demo directory; choose another --dir")
        shutil.rmtree(directory)
    (directory / "events").mkdir(parents=True)
    (directory / "hists").mkdir()
    (directory / MARKER).touch()
    python = sys.executable
    options = {"max_parallel": parallel}

    gen_specs = [
        JobSpec(
            [python, "-m", "batchkit.demo", "generate", "--seed", "{index}", "--events", str(events),
             "--delay", str(0.3 + 0.4 * (i % 3)), "--out", str(directory / "events" / "events_{index}.txt")],
            name="generate",
            resources=Resources(cpus=1, walltime="5m"),
        )
        for i in range(files)
    ]  # fmt: skip
    gen = Submission.create(directory / "gen", backend="local", specs=gen_specs, backend_options=options)
    hist = Submission.create(directory / "hist", backend="local", specs=[], backend_options=options)
    start = time.monotonic()

    def stamp() -> str:
        return f"[{time.monotonic() - start:5.1f}s]"

    say(f"{stamp()} submitting {files} generator jobs to the local backend (at most {parallel} at once)")
    gen.submit()
    failed = 0

    def report_histograms() -> None:
        nonlocal failed
        for job in hist.poll():
            if job.is_done:
                where = hist.job_host(job.index)
                say(f"{stamp()}   histogram job {job.index} {job.status.value} (host {where.get('host', '?')}, "
                    f"pid {where.get('pid', '?')})")  # fmt: skip
                failed += job.status is not JobStatus.FINISHED

    for job in gen.as_completed(poll_interval=0.3, progress=lambda _: report_histograms()):
        where = gen.job_host(job.index)
        if job.status is not JobStatus.FINISHED:
            failed += 1
            say(f"{stamp()} generator job {job.index} {job.status.value}: {job.reason}")
            continue
        events_file = directory / "events" / f"events_{job.index}.txt"
        say(f"{stamp()} generator job {job.index} finished on {where.get('host', '?')} (pid {where.get('pid', '?')}) "
            f"-> {events_file.name}; starting its histogram job")  # fmt: skip
        hist.add(
            [
                JobSpec(
                    [python, "-m", "batchkit.demo", "histogram", "--in", str(events_file),
                     "--out", str(directory / "hists" / f"hist_{job.index}.json")],
                    name="histogram",
                )
            ]
        )  # fmt: skip
        hist.submit()
        report_histograms()
    while not hist.is_done:
        time.sleep(0.2)
        report_histograms()
    report_histograms()

    total = [0] * BINS
    for path in sorted((directory / "hists").glob("hist_*.json")):
        for i, n in enumerate(json.loads(path.read_text())["counts"]):
            total[i] += n
    say(f"{stamp()} merged {len(list((directory / 'hists').glob('*.json')))} histograms "
        f"({sum(total)} events in {LOW:.0f}-{HIGH:.0f} GeV):")  # fmt: skip
    say(draw(total))
    peak_bin = max(range(BINS), key=lambda i: total[i])
    centre = LOW + (peak_bin + 0.5) * (HIGH - LOW) / BINS
    say(f"peak at {centre:.1f} GeV (the Z boson mass is 91.2 GeV)")
    say(f"records: {gen.directory} and {hist.directory}; try `batchkit status {gen.directory}`")
    gen.close()
    hist.close()
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the job payloads (``python -m batchkit.demo generate|histogram``)."""
    parser = argparse.ArgumentParser(prog="python -m batchkit.demo")
    sub = parser.add_subparsers(dest="step", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--events", type=int, default=20000)
    g.add_argument("--delay", type=float, default=0.0)
    g.add_argument("--out", type=Path, required=True)
    h = sub.add_parser("histogram")
    h.add_argument("--in", dest="src", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.step == "generate":
        generate(args.seed, args.events, args.out, args.delay)
    else:
        histogram(args.src, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
