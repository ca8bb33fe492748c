"""Transfer benchmark: batchkit vs xrdcp vs gfal-copy against the local XRootD server.

    .venv/bin/python bench/transfer.py [--server root://localhost:1094] [--files 1000]
        [--file-size 10000] [--large-mb 512] [--parallel 8] [--repeat 3] [--skip-gfal]

Two workloads, each run by every tool in the same process run, interleaved round by round so
machine noise hits all tools alike:

* many small files (default 1,000 x 10 kB): ``batchkit cp -r --parallel P`` (a process, like
  the others) and ``batchkit.fs.copy_many(parallel=P)`` in-process; ``xrdcp -r --parallel P``, also with
  ``--cksum adler32`` (the check batchkit does by default); ``gfal-copy -r``;
* ``--only webdav`` (not run by default): why batchkit has its own WebDAV client -- 50 stats
  and 100 small uploads to ``davs://`` (XrdHttp) and ``dav://`` (nginx) through batchkit's
  urllib3 client and through gfal2/davix (``register_filesystem(scheme, GfalFileSystem)``);
* one large file (default 512 MB): ``batchkit cp`` and ``batchkit.fs.copy``;
  ``xrdcp``, and ``xrdcp --cksum adler32`` (the same end-to-end check batchkit does by default);
  ``gfal-copy`` and ``gfal-copy -K ADLER32``. batchkit also runs with ``--checksum none``
  (size check only) to show what the verification costs.

batchkit always writes to a temporary name and renames it into place; xrdcp and gfal-copy
write the destination directly. Printed per tool: median and best wall seconds, and the
median CPU seconds of the client (this process and its children) and of the xrootd server
(from /proc/<pid>/stat; ``--server-pidfile``). On a shared 2-core machine the wall time follows
the load of others; CPU seconds are the steadier measure. Ratios are ``baseline / batchkit``
(above 1.0: batchkit is faster or cheaper). Targets from issue 5: >= 1.0x xrdcp for many files,
>= 0.9x xrdcp for the large file.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import batchkit.fs as bfs

Runner = Callable[[str], None]
DEFAULT_PIDFILE = "/tmp/batchkit-xrootd/run/bk1094/xrootd.pid"
TICKS = os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    """CPU seconds of this process (all threads) plus its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def server_cpu(pid: int | None) -> float:
    """CPU seconds the server process has used so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _run(argv: list[str]) -> None:
    env = dict(os.environ)
    env.setdefault("GFAL_PYTHONBIN", "/usr/bin/python3")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")


def make_data(top: Path, files: int, file_size: int, large_mb: int) -> tuple[Path, Path]:
    small = top / "small"
    small.mkdir(parents=True)
    for i in range(files):
        (small / f"f{i:05d}.dat").write_bytes(os.urandom(file_size))
    large = top / "large.dat"
    with open(large, "wb") as out:
        for _ in range(large_mb):
            out.write(os.urandom(1024 * 1024))
    return small, large


def many_tools(small: Path, parallel: int, gfal: bool) -> dict[str, Runner]:
    py = sys.executable
    names = sorted(os.listdir(small))

    def api(target: str) -> None:
        results = bfs.copy_many([(small / n, f"{target}/{n}") for n in names], parallel=parallel)
        failed = [r for r in results if not r.ok]
        if failed:
            raise SystemExit(f"batchkit copy_many: {len(failed)} failed, first: {failed[0].error}")

    tools: dict[str, Runner] = {
        "batchkit cp -r": lambda t: _run([py, "-m", "batchkit", "cp", "-r", "-p", str(parallel), f"{small}/", t + "/"]),
        "batchkit.fs.copy_many": api,
        "xrdcp -r --parallel": lambda t: _run(
            ["xrdcp", "-s", "-f", "-r", "--parallel", str(parallel), f"{small}/", t + "/"]
        ),
    }
    tools["xrdcp -r --parallel --cksum adler32"] = lambda t: _run(
        ["xrdcp", "-s", "-f", "-r", "--parallel", str(parallel), "--cksum", "adler32", f"{small}/", t + "/"]
    )
    if gfal:
        tools["gfal-copy -r"] = lambda t: _run(["gfal-copy", "-f", "-r", str(small), t + "/small"])
    return tools


def large_tools(large: Path, gfal: bool) -> dict[str, Runner]:
    py = sys.executable

    def api(target: str) -> None:
        bfs.copy(large, f"{target}/large.dat")

    tools: dict[str, Runner] = {
        "batchkit cp": lambda t: _run([py, "-m", "batchkit", "cp", "--", str(large), f"{t}/large.dat"]),
        "batchkit.fs.copy": api,
        "batchkit cp --checksum none": lambda t: _run(
            [py, "-m", "batchkit", "cp", "--checksum", "none", "--", str(large), f"{t}/large.dat"]
        ),
        "xrdcp": lambda t: _run(["xrdcp", "-s", "-f", str(large), f"{t}/large.dat"]),
        "xrdcp --cksum adler32": lambda t: _run(
            ["xrdcp", "-s", "-f", "--cksum", "adler32", str(large), f"{t}/large.dat"]
        ),
    }
    if gfal:
        tools["gfal-copy"] = lambda t: _run(["gfal-copy", "-f", str(large), f"{t}/large.dat"])
        tools["gfal-copy -K ADLER32"] = lambda t: _run(
            ["gfal-copy", "-f", "-K", "ADLER32", str(large), f"{t}/large.dat"]
        )
    return tools


Measured = dict[str, dict[str, list[float]]]  # tool -> {"wall"|"client"|"server": [seconds per round]}


def measure(tools: dict[str, Runner], server: str, label: str, repeat: int, pid: int | None) -> Measured:
    times: Measured = {name: {"wall": [], "client": [], "server": []} for name in tools}
    base = f"{server}//batchkit-bench-{secrets.token_hex(3)}"
    for round_no in range(repeat):
        order = list(tools) if round_no % 2 == 0 else list(reversed(tools))  # alternate who goes first
        for n, name in enumerate(order):
            target = f"{base}/{label}-{round_no}-{n}"
            bfs.mkdir(target)  # every tool gets an existing, empty target directory (xrdcp -r needs one)
            cpu0, srv0, started = client_cpu(), server_cpu(pid), time.perf_counter()
            tools[name](target)
            wall, cpu, srv = time.perf_counter() - started, client_cpu() - cpu0, server_cpu(pid) - srv0
            for key, value in (("wall", wall), ("client", cpu), ("server", srv)):
                times[name][key].append(value)
            bfs.remove(target, recursive=True)
            print(
                f"  {label} round {round_no + 1}: {name:30s} {wall:7.3f} s wall, {cpu:6.2f} s client CPU, "
                f"{srv:6.2f} s server CPU",
                flush=True,
            )
    bfs.remove(base, recursive=True, missing_ok=True)
    return times


def webdav_choice(small: Path, targets: list[str]) -> None:
    """Own urllib3 client vs gfal2/davix for the same WebDAV operations (``--only webdav``)."""
    from batchkit.fs import registry
    from batchkit.fs.gfal import GfalFileSystem

    names = sorted(os.listdir(small))[:100]
    for base in targets:
        scheme = base.split("://")[0]
        for impl in ("batchkit urllib3 client", "gfal2/davix"):
            registry.reset()
            if impl == "gfal2/davix":
                registry.register_filesystem(scheme, GfalFileSystem)
            target = f"{base}/batchkit-bench-{secrets.token_hex(3)}"
            bfs.mkdir(target)
            bfs.copy(small / names[0], f"{target}/probe")
            started = time.perf_counter()
            for _ in range(50):
                bfs.stat(f"{target}/probe")
            stat_ms = (time.perf_counter() - started) / 50 * 1000
            started = time.perf_counter()
            results = bfs.copy_many([(small / n, f"{target}/{n}") for n in names], parallel=8)
            upload_s = time.perf_counter() - started
            assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok][:3]
            bfs.remove(target, recursive=True)
            print(f"  {base:32s} {impl:26s} stat {stat_ms:7.1f} ms   100 x upload {upload_s:7.2f} s", flush=True)
    registry.reset()


def report(title: str, times: Measured, baselines: list[str], ours: list[str]) -> None:
    med = statistics.median
    print(f"\n{title}")
    print(f"  {'tool':32s} {'wall med':>9s} {'wall best':>9s} {'client CPU':>10s} {'server CPU':>10s}")
    for name, values in times.items():
        print(
            f"  {name:32s} {med(values['wall']):9.3f} {min(values['wall']):9.3f} "
            f"{med(values['client']):10.2f} {med(values['server']):10.2f}"
        )
    for mine in ours:
        for base in baselines:
            if base in times and mine in times:
                b, m = times[base], times[mine]
                cpu_b = med(b["client"]) + med(b["server"])
                cpu_m = med(m["client"]) + med(m["server"])
                print(
                    f"  {base} / {mine}: wall median {med(b['wall']) / med(m['wall']):.2f}x, "
                    f"best {min(b['wall']) / min(m['wall']):.2f}x; CPU (client+server) "
                    f"{cpu_b / cpu_m if cpu_m else float('nan'):.2f}x"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.environ.get("BATCHKIT_TEST_XROOTD_URL", "root://localhost:1094"))
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--file-size", type=int, default=10_000)
    parser.add_argument("--large-mb", type=int, default=512)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-gfal", action="store_true", help="leave gfal-copy out")
    parser.add_argument("--server-pidfile", default=DEFAULT_PIDFILE, help="pid file of the xrootd server")
    parser.add_argument("--only", choices=("many", "large", "webdav"), help="run one workload only")
    parser.add_argument(
        "--webdav",
        action="append",
        help="WebDAV base URLs for --only webdav (default: the test servers' davs:// and dav://)",
    )
    args = parser.parse_args()
    gfal = not args.skip_gfal and shutil.which("gfal-copy") is not None
    try:
        pid: int | None = int(Path(args.server_pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as tmp:
        started = time.perf_counter()
        large_mb = 1 if args.only in ("many", "webdav") else args.large_mb
        small, large = make_data(Path(tmp), args.files, args.file_size, large_mb)
        print(f"data: {args.files} x {args.file_size} B and {large_mb} MB in {time.perf_counter() - started:.1f} s")
        if args.only == "webdav":
            os.environ.setdefault("X509_CERT_DIR", "/tmp/batchkit-pki/ca")
            print("\nWebDAV client choice (50 stats of one file, 100 x uploads with parallel 8):")
            webdav_choice(small, args.webdav or ["davs://localhost:8443", "dav://127.0.0.1:8080"])
            return 0
        if args.only != "large":
            times = measure(many_tools(small, args.parallel, gfal), args.server, "many", args.repeat, pid)
            report(
                f"{args.files} files x {args.file_size} B, parallel {args.parallel} ({args.repeat} rounds)",
                times,
                ["xrdcp -r --parallel", "xrdcp -r --parallel --cksum adler32", "gfal-copy -r"],
                ["batchkit cp -r", "batchkit.fs.copy_many"],
            )
        if args.only not in ("many",):
            times = measure(large_tools(large, gfal), args.server, "large", args.repeat, pid)
            report(
                f"one {args.large_mb} MB file ({args.repeat} rounds)",
                times,
                ["xrdcp", "xrdcp --cksum adler32", "gfal-copy", "gfal-copy -K ADLER32"],
                ["batchkit cp", "batchkit.fs.copy", "batchkit cp --checksum none"],
            )
    print(f"\nload average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
