"""The same b2luigi workflow through b2luigi's own ``slurm`` batch system and through ``batchkit``.

    .venv/bin/python bench/b2luigi_slurm.py [--n 500] [--workers 500] [--systems slurm,batchkit]

Both runs use the same local Slurm, one after the other, each in a fresh directory. Scheduler
calls are counted with a PATH shim (as in /work/shared/reference/anchor-slurm-baseline.md):
a directory of wrapper scripts named ``sbatch``, ``squeue``, ``sacct``, ``scontrol`` and
``scancel`` that append ``<epoch> <tool> <args>`` to a log and ``exec`` the real binary. It is
put first on the PATH of the b2luigi process, so every call either system makes is seen
(batchkit runs the tools by name through ``batchkit.runner.run_command``). For the b2luigi run
the squeue shim also hides job-array lines, which b2luigi cannot parse (see
:data:`SQUEUE_SHIM_HIDING_ARRAYS`; ``--show-foreign-arrays`` turns that off).

The workflow is the one the baseline measured: ``Job(i)`` for i < N writes one small file,
and a ``WrapperTask`` (run locally) requires all of them. Every job is a real b2luigi batch
runner (Python, b2luigi import, task graph), so the payload, not the orchestration, dominates
wall time on a 2-core machine: compare the two runs of *this* invocation, never against
numbers from another day. b2luigi's status cache TTL is left at its default (120 s).

Prints, per system: wall time to completion, calls per tool, scheduler calls in total and
status calls, outputs present; then the ratios batchkit/b2luigi.
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

TOOLS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")
STATUS_TOOLS = ("squeue", "sacct", "scontrol")
SERVICES = Path(os.environ.get("BATCHKIT_SERVICES_FILE", "/tmp/batchkit-services/services.json"))

WORKFLOW = """
import json, os
import b2luigi

N = int(os.environ["B2L_N"])
RUN = os.environ["B2L_RUN"]
SYSTEM = os.environ["B2L_SYSTEM"]
PARTITION = os.environ.get("B2L_PARTITION")

b2luigi.set_setting("result_dir", RUN + "/results")
b2luigi.set_setting("log_dir", RUN + "/logs")
b2luigi.set_setting("task_file_dir", RUN + "/task_files")
if SYSTEM == "batchkit":
    b2luigi.set_setting("batch_system", "batchkit")
    b2luigi.set_setting("batchkit_backend", "slurm")
    b2luigi.set_setting("batchkit_options", json.loads(os.environ["B2L_BATCHKIT_OPTIONS"]))
else:
    b2luigi.set_setting("batch_system", "slurm")
    if PARTITION:
        b2luigi.set_setting("slurm_settings", {"partition": PARTITION})


class Job(b2luigi.Task):
    i = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("out.txt")

    def run(self):
        with open(self.get_output_file_name("out.txt"), "w") as f:
            f.write("%d\\n" % self.i)


class All(b2luigi.WrapperTask):
    batch_system = "local"  # only Job goes to Slurm

    def requires(self):
        for i in range(N):
            yield Job(i=i)


if __name__ == "__main__":
    b2luigi.process(All(), batch=True, workers=int(os.environ["B2L_W"]))
"""

SHIM = """#!/bin/sh
printf '%s {tool} %s\\n' "$(date +%s.%N)" "$*" >> "$SHIM_LOG"
exec {real} "$@"
"""

# b2luigi 1.3.0 parses ``squeue --user <me>`` lines as ``int(job id)`` and dies with ValueError
# on any job array of the same user (``123_[0-9]``, ``123_4``) -- other people's test runs
# on a shared account included. b2luigi only submits plain jobs, so for its run the squeue
# shim drops lines whose job id is not a plain number: as if no other array job were queued.
# The call is still made and counted once.
SQUEUE_SHIM_HIDING_ARRAYS = """#!/bin/sh
printf '%s squeue %s\\n' "$(date +%s.%N)" "$*" >> "$SHIM_LOG"
out=$({real} "$@")
rc=$?
printf '%s\\n' "$out" | grep -Ev "^'?[0-9]+_"
exit $rc
"""


def services() -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in json.loads(SERVICES.read_text()).items()}
    except (OSError, ValueError):
        return {}


def make_shims(directory: Path, hide_arrays: bool = False) -> None:
    """Wrapper scripts that log each call and exec the real tool (found before the shim is on PATH)."""
    directory.mkdir(parents=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            sys.exit(f"{tool} not found: is Slurm installed and on PATH?")
        path = directory / tool
        template = SQUEUE_SHIM_HIDING_ARRAYS if (hide_arrays and tool == "squeue") else SHIM
        path.write_text(template.format(tool=tool, real=real))
        path.chmod(0o755)


def count_calls(log: Path) -> Counter[str]:
    calls: Counter[str] = Counter()
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                calls[parts[1]] += 1
    return calls


def run_system(system: str, base: Path, n: int, workers: int, shims: Path) -> dict[str, Any]:
    run = base / system
    run.mkdir()
    script = run / "tasks.py"
    script.write_text(WORKFLOW)
    shim_log = run / "shim.log"
    info = services()
    partition = info.get("BATCHKIT_TEST_SLURM_PARTITION", "")
    options: dict[str, object] = {"partition": partition} if partition else {}
    env = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
        "SHIM_LOG": str(shim_log),
        "B2L_N": str(n),
        "B2L_W": str(workers),
        "B2L_RUN": str(run),
        "B2L_SYSTEM": system,
        "B2L_PARTITION": partition,
        "B2L_BATCHKIT_OPTIONS": json.dumps(options),
    }
    if info.get("BATCHKIT_TEST_SLURM_CONF"):
        env["SLURM_CONF"] = info["BATCHKIT_TEST_SLURM_CONF"]
    env.pop("B2LUIGI_SETTINGS_JSON", None)
    print(f"--- {system}: {n} tasks, workers={workers}, in {run}", flush=True)
    start = time.monotonic()
    with open(run / "b2luigi.log", "w") as out:
        rc = subprocess.call([sys.executable, str(script)], cwd=run, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    outputs = sum(1 for i in range(n) if (run / "results" / f"i={i}" / "out.txt").exists())
    calls = count_calls(shim_log)
    result = {
        "system": system,
        "rc": rc,
        "wall_s": round(wall, 1),
        "calls": dict(sorted(calls.items())),
        "scheduler_calls": sum(calls.values()),
        "status_calls": sum(calls[t] for t in STATUS_TOOLS),
        "outputs": outputs,
    }
    if rc != 0:  # say why, e.g. b2luigi's ValueError on another job array of the same user in squeue
        lines = [line for line in (run / "b2luigi.log").read_text().splitlines() if line.strip()]
        result["error"] = lines[-1] if lines else f"exit code {rc}"
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="number of Job tasks (default 500)")
    parser.add_argument("--workers", type=int, default=None, help="luigi workers (default: n)")
    parser.add_argument("--systems", default="slurm,batchkit", help="comma list of b2luigi batch systems")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument(
        "--show-foreign-arrays",
        action="store_true",
        help="do not hide other job arrays of the user from b2luigi's squeue (b2luigi then crashes on them)",
    )
    args = parser.parse_args()
    workers = args.workers or args.n
    base = Path(tempfile.mkdtemp(prefix="bench-b2luigi-"))
    make_shims(base / "shims")
    make_shims(base / "shims-b2luigi", hide_arrays=not args.show_foreign_arrays)
    results = {}
    try:
        for system in args.systems.split(","):
            shims = base / ("shims" if system == "batchkit" else "shims-b2luigi")
            results[system] = run_system(system, base, args.n, workers, shims)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(f"{'system':10} {'wall s':>8} {'sched calls':>12} {'status':>8} {'sbatch':>7} {'outputs':>8} rc")
    for r in results.values():
        calls = r["calls"]
        print(
            f"{r['system']!s:10} {r['wall_s']!s:>8} {r['scheduler_calls']!s:>12} {r['status_calls']!s:>8} "
            f"{calls.get('sbatch', 0)!s:>7} {r['outputs']!s:>8} {r['rc']}"
        )
    for r in results.values():
        if r["rc"] != 0:
            print(f"{r['system']} did not finish cleanly (its counts are a lower bound): {r['error']}")
    if "slurm" in results and "batchkit" in results:
        ours, theirs = results["batchkit"], results["slurm"]
        ratio = theirs["scheduler_calls"] / max(1, ours["scheduler_calls"])
        speed = theirs["wall_s"] / max(0.1, ours["wall_s"])
        print(f"scheduler calls: b2luigi slurm / batchkit = {ratio:.1f}x fewer with batchkit (target >= 20x)")
        print(f"time to completion: b2luigi slurm / batchkit = {speed:.2f}x")
    ok = all(r["rc"] == 0 and r["outputs"] == args.n for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
