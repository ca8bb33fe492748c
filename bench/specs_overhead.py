"""Overhead of describing and recording 10,000 jobs: job files + SQLite record.

Measures, in one process, what batchkit does before any scheduler is contacted:
building the JobSpecs, creating the Submission record, and writing one batch's job files
(wrapper + row tables + submit description) -- the per-job cost a physicist pays for
10,000 jobs. Prints seconds and peak memory (tracemalloc for Python allocations, ru_maxrss
for the whole process). Target (issue 2): under 0.5 s and under 200 MB.

The baseline printed alongside is writing 10,000 tiny per-job shell scripts with plain
Python (what "one script per job" tools do), measured in the same run. Times are CPU seconds
of this process (wall time is printed too): on a shared 2-core machine wall time mostly
measures the neighbours.

    .venv/bin/python bench/specs_overhead.py [--n 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import batchkit as bk
from batchkit.backends.local import LocalFileFactory


def per_job_scripts(directory: Path, n: int) -> None:
    directory.mkdir()
    for i in range(n):
        args = ["python", "gen.py", "--seed", str(i), "--out", f"/data/out_{i}.root"]
        (directory / f"job_{i}.sh").write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in args) + "\n")


STEPS: dict[str, float] = {}


def describe(directory: Path, n: int) -> tuple[bk.Submission, bk.JobFiles]:
    """Build n specs, record them, write one batch's job files; time each step."""
    t0 = time.perf_counter()
    specs = [
        bk.JobSpec(
            ["python", "gen.py", "--seed", "{index}", "--out", "/data/out_{index}.root"],
            resources=bk.Resources(cpus=1, memory="2GB", walltime="1h"),
            env={"SAMPLE": "ttbar"},
        )
        for _ in range(n)
    ]
    t1 = time.perf_counter()
    sub = bk.Submission.create(directory, backend="local", specs=specs)
    t2 = time.perf_counter()
    files = LocalFileFactory().create(specs, directory / "batches" / "0001", tag=sub.tag)
    t3 = time.perf_counter()
    STEPS.update({"build JobSpecs": t1 - t0, "create record (SQLite)": t2 - t1, "write job files": t3 - t2})
    return sub, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    n = args.n
    work = Path(tempfile.mkdtemp(prefix="bk-bench-"))
    try:
        c0 = time.process_time()
        per_job_scripts(work / "baseline", n)
        baseline = time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()
        sub, files = describe(work / "sub", n)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        steps = dict(STEPS)
        sub.close()
        tracemalloc.start()
        sub2, _ = describe(work / "sub-mem", n)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sub2.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n} jobs on {os.cpu_count()} cores")
        for step, seconds in steps.items():
            print(f"  {step:<24}{seconds:7.3f} s")
        print(f"  ({len(files.tables)} table files + wrapper + submit file)")
        print(f"  total wall              {total:7.3f} s")
        print(f"  total CPU               {cpu:7.3f} s   target < 0.5 s: {'OK' if cpu < 0.5 else 'MISSED'}")
        print(f"  peak Python memory      {peak / 2**20:7.1f} MB  (process max RSS {rss:.0f} MB)  target < 200 MB: "
              f"{'OK' if rss < 200 else 'MISSED'}")  # fmt: skip
        print(f"  baseline: {n} per-job scripts with plain Python {baseline:.3f} s CPU -> batchkit/baseline = "
              f"{cpu / baseline:.2f}x")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
