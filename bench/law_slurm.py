"""law on the real local Slurm: law's own ``SlurmWorkflow`` vs ``BatchkitWorkflow``, same run.

The same N-branch law workflow (tests/fixtures/law/lawtasks.py: every branch writes one small
file) is run to completion twice, one after the other, on the local test Slurm
(tests/services/up.sh):

* ``law``: ``law run lawtasks.SlurmCountedTask --workflow slurm`` -- law's SlurmWorkflow, one
  ``sbatch`` per job, ``squeue``/``sacct`` in chunks of 25 ids per poll;
* ``batchkit``: ``law run lawtasks.CountedTask --workflow batchkit --batchkit-backend slurm`` --
  one array per submission round; polls read the batchkit wrapper's markers and ask Slurm (one
  ``sacct``) at most every 30 s (the adapter's default ``batchkit_query_interval``);
* ``batchkit-q0``: the same with ``batchkit_query_interval`` 0 -- one ``sacct`` on every poll
  that still has unfinished jobs (what the ratio is without the markers).

Both with the same ``--poll-interval`` and ``--tasks-per-job``, each in a fresh directory with
its own LAW_HOME and law.cfg (``[luigi_core] local_scheduler: True``). Scheduler calls are
counted with a PATH shim: tiny bash wrappers around sbatch/squeue/sacct/scontrol/scancel that
log start and end time, then exit with the real command's code (anchor-slurm-baseline.md).

Printed per variant: submission wall time (start of ``law run`` until the last ``sbatch``
returned; includes Python start-up and building the task graph, as in the anchor), calls per
tool, time until law saw every job finished (``law run`` exit), and whether all N outputs exist
with every branch run exactly once. Then the ratios law / batchkit. On a 2-core machine shared
with other work, the payload (law_job.sh starts Python several times per branch) competes with
the submitting process, so wall times are noisy (+-20 %); call counts are exact.

    .venv/bin/python bench/law_slurm.py [--n 500] [--poll-interval 0.05] [--variants law,batchkit,batchkit-q0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAW_FIXTURES = ROOT / "tests" / "fixtures" / "law"
SERVICES_FILE = Path(os.environ.get("BATCHKIT_SERVICES_FILE", "/tmp/batchkit-services/services.json"))
VENV_BIN = Path(sys.executable).parent
TOOLS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")

SHIM = """#!/bin/bash
start=$EPOCHREALTIME
{real} "$@"
rc=$?
printf '%s %s {tool} %s\\n' "$start" "$EPOCHREALTIME" "$rc" >> {log}
exit $rc
"""


def services() -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in json.loads(SERVICES_FILE.read_text()).items()}
    except (OSError, ValueError):
        return {}


def write_shim(directory: Path, log: Path) -> None:
    directory.mkdir(parents=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            raise SystemExit(f"{tool} not found: start the test Slurm with: bash tests/services/up.sh")
        path = directory / tool
        path.write_text(SHIM.format(real=real, tool=tool, log=log))
        path.chmod(0o755)


def run_variant(variant: str, work: Path, n: int, poll_interval: str, tasks_per_job: int) -> dict[str, Any]:
    """Run one law workflow to completion; return its measurements."""
    work.mkdir(parents=True)
    (work / "out").mkdir()
    config = work / "law.cfg"
    config.write_text((LAW_FIXTURES / "law.cfg.in").read_text().replace("@DIR@", str(work)))
    calls_log = work / "scheduler-calls.log"
    write_shim(work / "shim", calls_log)
    opts = services()
    partition = opts.get("BATCHKIT_TEST_SLURM_PARTITION", "debug")
    backend_options: dict[str, Any] = {"partition": partition}
    env = dict(os.environ)
    if opts.get("BATCHKIT_TEST_SLURM_CONF"):
        env["SLURM_CONF"] = opts["BATCHKIT_TEST_SLURM_CONF"]  # both variants: every Slurm command
    env.update(
        PATH=os.pathsep.join([str(work / "shim"), str(VENV_BIN), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(p for p in (str(LAW_FIXTURES), env.get("PYTHONPATH", "")) if p),
        LAW_HOME=str(work / "law_home"),
        LAW_CONFIG_FILE=str(config),
        LAWTEST_OUT=str(work / "out"),
        LAWTEST_BACKEND_OPTIONS=json.dumps(backend_options),
    )
    common = ["--n", str(n), "--tasks-per-job", str(tasks_per_job), "--poll-interval", poll_interval]
    if variant == "law":
        argv = ["run", "lawtasks.SlurmCountedTask", "--workflow", "slurm", "--slurm-partition", partition]
    else:
        argv = ["run", "lawtasks.CountedTask", "--workflow", "batchkit", "--batchkit-backend", "slurm"]
        if variant == "batchkit-q0":
            env["LAWTEST_QUERY_INTERVAL"] = "0"
    t0 = time.time()
    result = subprocess.run(
        [str(VENV_BIN / "law"), *argv, *common],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    t_end = time.time()
    (work / "law-stdout.txt").write_text(result.stdout)
    (work / "law-stderr.txt").write_text(result.stderr)

    calls = []
    for line in calls_log.read_text().splitlines() if calls_log.exists() else []:
        start, end, tool, rc = line.split()
        calls.append((float(start) - t0, float(end) - t0, tool, int(rc)))
    counts = Counter(tool for _, _, tool, _ in calls)
    sbatch_ends = [end for _, end, tool, _ in calls if tool == "sbatch"]
    runs_log = work / "out" / "runs.log"
    runs = Counter(runs_log.read_text().split()) if runs_log.exists() else Counter()
    outputs = len(list((work / "out" / "outputs").glob("out_*.txt"))) if (work / "out" / "outputs").exists() else 0
    return {
        "variant": variant,
        "returncode": result.returncode,
        "submit_wall": max(sbatch_ends) if sbatch_ends else float("nan"),
        "first_sbatch": min((s for s, _, tool, _ in calls if tool == "sbatch"), default=float("nan")),
        "total_wall": t_end - t0,
        "calls": {tool: counts.get(tool, 0) for tool in TOOLS},
        "status_calls": counts.get("squeue", 0) + counts.get("sacct", 0),
        "scheduler_calls": sum(counts.get(tool, 0) for tool in ("sbatch", "squeue", "sacct")),
        "failed_calls": sum(1 for *_, rc in calls if rc != 0),
        "polls": sum(1 for line in result.stdout.splitlines() if f": all: {-(-n // tasks_per_job)}, " in line),
        "outputs": outputs,
        "runs_exactly_once": len(runs) == n and set(runs.values()) == {1},
        "work": str(work),
    }


def wait_for_empty_queue(timeout: float = 600) -> None:
    """Wait until Slurm runs nothing of ours (so the second variant starts on an idle node)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, check=False)
        names = [n for n in out.stdout.split() if n.startswith(("law_", "SlurmCounted", "CountedTask"))]
        if not names:
            return
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="branches (default 500)")
    parser.add_argument("--tasks-per-job", type=int, default=1)
    parser.add_argument("--poll-interval", default="0.05", help="law --poll-interval in minutes (default 0.05)")
    parser.add_argument("--variants", default="law,batchkit,batchkit-q0", help="which variants, in this order")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        raise SystemExit("no sbatch: start the test Slurm with: bash tests/services/up.sh")

    root = Path(tempfile.mkdtemp(prefix="bk-bench-law-slurm-"))
    results = {}
    try:
        for variant in args.variants.split(","):
            wait_for_empty_queue()
            print(f"running {variant} ({args.n} branches) ...", flush=True)
            results[variant] = run_variant(variant, root / variant, args.n, args.poll_interval, args.tasks_per_job)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\nlaw workflow, {args.n} branches, tasks_per_job={args.tasks_per_job}, poll {args.poll_interval} min")
    header = f"{'variant':11} {'rc':>3} {'submit s':>9} {'total s':>8} {'sbatch':>6} {'squeue':>6} {'sacct':>6}"
    print(header + f" {'scontrol':>8} {'polls':>5} {'outputs':>7} once")
    for r in results.values():
        c = r["calls"]
        print(
            f"{r['variant']:11} {r['returncode']:>3} {r['submit_wall']:>9.2f} {r['total_wall']:>8.1f} "
            f"{c['sbatch']:>6} {c['squeue']:>6} {c['sacct']:>6} {c['scontrol']:>8} {r['polls']:>5} "
            f"{r['outputs']:>7} {'yes' if r['runs_exactly_once'] else 'NO'}"
        )
    law = results.get("law")
    for name in ("batchkit", "batchkit-q0"):
        ours = results.get(name)
        if law is None or ours is None:
            continue
        print(f"\nratios law / {name} (same run):")
        print(f"  scheduler calls (sbatch+squeue+sacct): {law['scheduler_calls']} / {ours['scheduler_calls']}"
              f" = {law['scheduler_calls'] / max(ours['scheduler_calls'], 1):.1f}x fewer")  # fmt: skip
        print(f"  submission wall: {law['submit_wall']:.2f} s / {ours['submit_wall']:.2f} s"
              f" = {law['submit_wall'] / ours['submit_wall']:.1f}x faster")  # fmt: skip
        print(f"  until all jobs seen finished: {law['total_wall']:.1f} s / {ours['total_wall']:.1f} s"
              f" = {law['total_wall'] / ours['total_wall']:.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
