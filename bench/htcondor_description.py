"""Cost of the HTCondor submit description for a big batch, against the local backend's files.

Writes one batch of N jobs (default 10,000) three ways in one process and prints CPU seconds
and the ratio to the baseline measured in the same run:

* baseline: ``LocalFileFactory`` -- wrapper + job table + a small JSON (what every backend
  writes anyway), for the same specs;
* ``HTCondorFileFactory`` on a shared file system: the same plus ``htcondor.sub`` with one
  item-data line per job;
* ``HTCondorFileFactory`` with ``transfer_files`` (each job has one input and one output):
  plus per-row transfer lists, and job table rows rewritten to run in the sandbox.

Then how long HTCondor's own submit-language code (``htcondor2.Submit`` + ``itemdata()``,
the parser condor_submit uses) takes to read that description, and how long the status
query's command line is for all N ids (one constraint) compared with listing the ids.
Times are CPU seconds of this process: on a shared 2-core machine wall time mostly measures
the neighbours.

    .venv/bin/python bench/htcondor_description.py [--n 10000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import batchkit as bk
from batchkit.backends.htcondor_commands import JobId, id_constraints, queue_argv
from batchkit.backends.htcondor_submit import HTCondorFileFactory, SubmitSettings
from batchkit.backends.local import LocalFileFactory


def cpu(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Best CPU time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    n = parser.parse_args().n
    root = Path(tempfile.mkdtemp(prefix="bk-bench-htcondor-"))
    try:
        plain = [
            bk.JobSpec(["python", "gen.py", "--seed", "{index}"], resources={"memory": "2GB", "walltime": "1h"})
            for _ in range(n)
        ]
        data = root / "input.txt"
        data.write_text("x\n")
        moving = [
            bk.JobSpec(
                ["python", "gen.py", "--seed", "{index}"],
                resources={"memory": "2GB", "walltime": "1h"},
                inputs={"input.txt": str(data)},
                outputs={"out.root": str(root / "results" / "out_{index}.root")},
            )
            for _ in range(n)
        ]
        counter = iter(range(10**6))

        def write(factory: Any, specs: list[bk.JobSpec]) -> Any:
            return factory.create(specs, root / f"b{next(counter)}", tag="bkbench.0")

        base, _ = cpu(lambda: write(LocalFileFactory(), plain))
        shared, files = cpu(lambda: write(HTCondorFileFactory(), plain))
        base_io, _ = cpu(lambda: write(LocalFileFactory(), moving))
        transfer, tfiles = cpu(lambda: write(HTCondorFileFactory(SubmitSettings(transfer_files=True)), moving))
        print(f"{n} jobs, CPU seconds (best of 3)")
        print(f"  jobs without files:  LocalFileFactory {base:6.3f} s (baseline)")
        print(f"    HTCondorFileFactory (shared fs)     {shared:6.3f} s   {shared / base:.2f}x")
        print(f"  one input + one output per job:  LocalFileFactory {base_io:6.3f} s (baseline)")
        print(f"    HTCondorFileFactory (transfer_files) {transfer:6.3f} s   {transfer / base_io:.2f}x")
        for label, f in (("shared", files), ("transfer", tfiles)):
            size = f.submit_files[0].stat().st_size
            print(f"  htcondor.sub ({label}): {size / 1024:.0f} KiB, {size / n:.0f} bytes per job")
        try:
            import htcondor2
        except ImportError:
            print("  (htcondor2 not installed: parser timing skipped)")
        else:
            text = tfiles.submit_files[0].read_text()
            parse, items = cpu(lambda: list(htcondor2.Submit(text).itemdata()))
            assert len(items) == n
            print(f"  htcondor2.Submit + itemdata() of that description: {parse:.3f} s ({parse / base_io:.2f}x)")
        ids = [JobId(12345, p) for p in range(n)]
        build, constraints = cpu(lambda: id_constraints(ids))
        argv = queue_argv(constraints[0])
        listed = sum(len(f"12345.{p}") + 1 for p in range(n))
        print(
            f"  status query for {n} ids: {len(constraints)} condor_q call, argv {sum(map(len, argv))} bytes "
            f"(listing the ids: {listed} bytes), built in {build * 1000:.2f} ms"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
