"""Submitting and polling N Slurm jobs: batchkit vs one raw array (the floor) vs N single sbatch.

Runs against the local test Slurm (tests/services/up.sh), all in one process and one run, so the
ratios compare like with like on whatever load the machine has right now:

* submit N jobs
    - raw: one ``sbatch --parsable --array=0-<N-1>`` of a trivial script (the floor: no job files);
    - batchkit: ``SlurmJobManager.submit`` -- writes wrapper, job table, array script, runs sbatch;
    - naive: N single ``sbatch --parsable`` calls (what law and b2luigi do);
* status of those N jobs once they have run: batchkit's ``query`` (one sacct, parsed) vs one raw
  ``sacct -X -P -n`` of the array (``squeue -t all`` on a cluster without accounting).

Submissions are held (``--hold``) so they do not compete for the 2 cores; only batchkit's first
array is released and run (trivial ``true`` jobs) for the status measurement. Everything
submitted is cancelled at the end. Each timing is the median of ``--repeat`` interleaved runs;
scheduler calls are counted with ``batchkit.runner.CALL_COUNTS``. The JobSpecs are built
beforehand (describing jobs is measured by bench/specs_overhead.py).

Targets (issue 3): submit <= 1.5x the raw array and >= 20x faster than N single calls;
status <= 1.3x one raw sacct.

    .venv/bin/python bench/slurm_submit.py [--n 1000] [--repeat 5] [--conf /path/slurm.conf]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import batchkit as bk
from batchkit.backends.slurm import SlurmJobManager
from batchkit.runner import CALL_COUNTS, run_command

TOOLS = ("sbatch", "sacct", "squeue", "scontrol", "scancel")


def calls() -> Counter[str]:
    return Counter({t: CALL_COUNTS[t] for t in TOOLS})


CPU: dict[str, list[float]] = {}


def timed(fn: Callable[[], object], label: str = "") -> tuple[float, Counter[str]]:
    """Wall seconds of ``fn`` and the scheduler calls it made; this process's own CPU time
    (without the scheduler commands it starts) is collected under ``label``."""
    before = calls()
    cpu = time.process_time()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    CPU.setdefault(label, []).append(time.process_time() - cpu)
    return wall, calls() - before


def describe(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {tool}" for tool, n in sorted(counter.items()) if n) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="jobs per submission (default 1000)")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions, median reported")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--conf", default=None, help="SLURM_CONF of the cluster (default: the client's default)")
    args = parser.parse_args()
    n = args.n
    env = {"SLURM_CONF": args.conf} if args.conf else {}
    site = {"partition": args.partition} if args.partition else {}
    work = Path(tempfile.mkdtemp(prefix="bk-slurm-bench-"))
    script = work / "true.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    script.chmod(0o755)
    raw_base = ["sbatch", "--parsable", "--hold", "-o", "/dev/null", *(f"--partition={p}" for p in site.values())]
    tag = f"bkbench{os.getpid()}"
    manager = SlurmJobManager(**site, env=env, sbatch_options=["--hold"])
    probe, _ = timed(manager.cluster_config)
    specs = [bk.JobSpec(["true"]) for _ in range(n)]
    to_cancel: list[str] = []
    batchkit_ids: list[list[str]] = []

    def raw_array() -> None:
        result = run_command([*raw_base, f"--job-name={tag}-raw", f"--array=0-{n - 1}", str(script)], env=env)
        to_cancel.append(result.stdout.strip())

    def batchkit_submit() -> None:
        k = len(batchkit_ids)
        batchkit_ids.append(manager.submit(specs, work / f"batch{k}", tag=f"{tag}.{k}"))

    def naive() -> None:
        for i in range(n):
            result = run_command([*raw_base, f"--job-name={tag}-naive", str(script), str(i)], env=env)
            to_cancel.append(result.stdout.strip())

    try:
        print(f"Slurm benchmark: N = {n}, {args.repeat} interleaved repetitions (median), cluster probe "
              f"(scontrol show config, once per manager, not in the numbers below) {probe * 1000:.1f} ms")  # fmt: skip
        print(f"accounting: {manager.accounting}; machine load average: {os.getloadavg()[0]:.2f}")
        submit: dict[str, list[float]] = {"raw": [], "batchkit": []}
        submit_calls: dict[str, Counter[str]] = {}
        for _ in range(args.repeat):
            for name, fn in (("raw", raw_array), ("batchkit", batchkit_submit)):
                seconds, used = timed(fn, f"submit {name}")
                submit[name].append(seconds)
                submit_calls[name] = used
        naive_seconds, naive_calls = timed(naive, "naive")

        # status: run batchkit's first array, then compare one query with one raw sacct/squeue
        array_id = batchkit_ids[0][0].split("_")[0]
        run_command(["scontrol", "release", array_id], env=env)
        ids = batchkit_ids[0]
        deadline = time.monotonic() + 600
        while not all(info.status.is_final for info in manager.query(ids).values()):
            if time.monotonic() > deadline:
                raise SystemExit("the jobs did not finish within 10 minutes")
            time.sleep(2)
        infos = manager.query(ids)
        assert {i.status for i in infos.values()} == {bk.JobStatus.FINISHED}, Counter(i.status for i in infos.values())
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
        if manager.accounting:
            fields = "JobID,State,ExitCode"
            raw_status = ["sacct", "-X", "-P", "-n", f"--starttime={start}", "-o", fields, "-j", array_id]
        else:
            raw_status = ["squeue", "-h", "-t", "all", "-o", "%i|%T", "-j", array_id]
        status: dict[str, list[float]] = {"raw": [], "batchkit": []}
        status_calls: dict[str, Counter[str]] = {}
        for _ in range(args.repeat):
            for name, fn in (
                ("raw", lambda: run_command(raw_status, env=env)),
                ("batchkit", lambda: manager.query(ids)),
            ):
                seconds, used = timed(fn, f"status {name}")
                status[name].append(seconds)
                status_calls[name] = used
        lines = len(run_command(raw_status, env=env).stdout.splitlines())
    finally:
        leftovers = to_cancel + [i for batch in batchkit_ids for i in batch]
        if leftovers:
            manager.cancel(leftovers)
        shutil.rmtree(work, ignore_errors=True)

    raw_s, bk_s = statistics.median(submit["raw"]), statistics.median(submit["batchkit"])
    raw_q, bk_q = statistics.median(status["raw"]), statistics.median(status["batchkit"])

    def cpu(label: str) -> str:
        return f"{statistics.median(CPU[label]) * 1000:8.1f}"

    rows = [
        ("submit", "raw sbatch --array (floor)", raw_s, cpu("submit raw"), submit_calls["raw"], "1.00x"),
        ("submit", "batchkit (job files + arrays)", bk_s, cpu("submit batchkit"), submit_calls["batchkit"],
         f"{bk_s / raw_s:.2f}x floor"),
        ("submit", f"{n} x single sbatch", naive_seconds, cpu("naive"), naive_calls,
         f"{naive_seconds / bk_s:.0f}x batchkit"),
        ("status", f"raw {raw_status[0]} ({lines} lines)", raw_q, cpu("status raw"), status_calls["raw"], "1.00x"),
        ("status", "batchkit query (one call, parsed)", bk_q, cpu("status batchkit"), status_calls["batchkit"],
         f"{bk_q / raw_q:.2f}x raw"),
    ]  # fmt: skip
    print()
    print(f"{'':7}{'what':40}{'wall [ms]':>10}{'own CPU [ms]':>14}  {'scheduler calls':18}ratio (wall, median)")
    for step, what, seconds, own, used, ratio in rows:
        print(f"{step:7}{what:40}{seconds * 1000:10.1f}{own:>14}  {describe(used):18}{ratio}")
    print()
    print("all runs, wall [ms]: " + "; ".join(
        f"{k} {name}: {', '.join(f'{s * 1000:.0f}' for s in v)}"
        for k, d in (("submit", submit), ("status", status)) for name, v in d.items()
    ))  # fmt: skip
    best = {k: {name: min(v) for name, v in d.items()} for k, d in (("submit", submit), ("status", status))}
    print(f"best of {args.repeat}: submit {best['submit']['batchkit'] / best['submit']['raw']:.2f}x floor, "
          f"status {best['status']['batchkit'] / best['status']['raw']:.2f}x raw")  # fmt: skip
    checks = [
        (f"submit <= 1.5x the raw array ({bk_s / raw_s:.2f}x)", bk_s <= 1.5 * raw_s),
        (f"submit >= 20x faster than {n} single sbatch ({naive_seconds / bk_s:.0f}x)", naive_seconds >= 20 * bk_s),
        (f"status <= 1.3x one raw {raw_status[0]} ({bk_q / raw_q:.2f}x)", bk_q <= 1.3 * raw_q),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    print(f"machine load average at the end: {os.getloadavg()[0]:.2f} (2 cores shared with other work: expect noise)")


if __name__ == "__main__":
    main()
