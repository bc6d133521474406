"""Worker CPU per job: what Onward itself costs per job, robust to a busy machine.

    python -m bench.cpu_per_job                          # both stores, this checkout
    python -m bench.cpu_per_job --base 7fadb87 --reps 5  # this checkout beside an earlier build
    python -m bench.cpu_per_job --this 49869c7 --base 7fadb87   # two revisions
    python -m bench.cpu_per_job --variant off= --variant metrics='--metrics-port {port}' \
        --variant otel='--import bench.otel_on'          # worker options side by side

Enqueues ``--jobs`` no-op jobs (``bench.jobs:Noop``, or ``TenChildren`` parents with
``--kind chains``), runs ``onward worker --burst`` over them in a child process and reads the
CPU time (user + system) the kernel charged to that process, less that of a worker started
and stopped on an empty store. Rates in jobs per second swing
by a factor of two when other work shares the machine's cores; the CPU a worker spends per
job moves far less, so it is the figure to compare builds by on a shared machine. It does not
count the database server's: PostgreSQL's CPU per job, summed from ``/proc`` over the
server's processes (so including anything else it serves meanwhile), is ``server_us_per_job``.

With ``--variant NAME=OPTIONS`` (repeatable) this checkout's worker runs with each set of
extra options in turn, and each variant is compared with the first. With ``--base REV`` the
base revision is checked out in a temporary worktree and both builds
run alternately, ``--reps`` times each; the benchmark scripts are this checkout's, the
``onward`` package the build's. Durability as in ``bench/suite.py`` (SQLite WAL with
``synchronous=FULL``; PostgreSQL ``synchronous_commit=on``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.compare_builds import checkout

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("ONWARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("ONWARD_BENCH_POSTGRES_DATABASE", "onward_bench_cpu")  # one per concurrent run


def server_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            # utime + stime, and cutime + cstime: the postmaster's ended backends
            total += sum(int(x) for x in fields[11:15]) / tick
    return total


def fresh_url(store: str, tmp: str, name: str = "cpu") -> str:
    """A new, empty store of the kind ``store``; ``name`` tells two of them apart."""
    if store == "sqlite":
        return f"sqlite:///{tmp}/{name}.sqlite3"
    import psycopg

    database = f"{PG_DATABASE}_{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def measure(store: str, jobs: int, kind: str, extra: list[str]) -> dict[str, float]:
    """One run in this process's ``onward`` (the build on ``PYTHONPATH``)."""
    import onward
    from bench.jobs import Noop, TenChildren

    with tempfile.TemporaryDirectory(prefix="onward-cpu-") as tmp:
        url = fresh_url(store, tmp)
        connection = onward.connect(url)  # the default store of this process, as in 0.1
        if kind == "chains":
            parents = jobs // 11
            TenChildren.perform_all_later([() for _ in range(parents)])
            total = parents * 11
        else:
            Noop.perform_all_later([(i,) for i in range(jobs)])
            total = jobs
        connection.close()
        # Start-up and shut-down alone, on an empty store of the same kind (already migrated,
        # as the measured one is), so only the work per job is left after the subtraction.
        empty_url = fresh_url(store, tmp, "empty")
        onward.connect(empty_url).close()
        empty = _burst(empty_url, extra)
        server_before = server_cpu() if store == "postgresql" else 0.0
        worker = _burst(url, extra)
        server = server_cpu() - server_before if store == "postgresql" else 0.0
        return {
            "jobs": total,
            "cpu_us_per_job": 1e6 * (worker[0] - empty[0]) / total,
            "server_us_per_job": 1e6 * server / total,
            "wall_per_s": total / (worker[1] - empty[1]),
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _burst(url: str, extra: list[str]) -> tuple[float, float]:
    """Run ``onward worker --burst`` on ``url``: (its CPU seconds, its wall seconds). A
    ``{port}`` in the extra options becomes a free TCP port."""
    extra = [e.replace("{port}", str(_free_port())) for e in extra]
    argv = [sys.executable, "-m", "onward", "worker", "--import", "bench.jobs", "--queues", "bench",
            "--concurrency", "2", "--log-level", "WARNING", "--database-url", url, "--burst", *extra]  # fmt: skip
    with tempfile.TemporaryFile() as log:  # the worker's log lines (a pipe nobody reads would fill)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"worker exited {os.waitstatus_to_exitcode(status)}: {tail}")
    return usage.ru_utime + usage.ru_stime, elapsed


def _run_build(src: Path, store: str, jobs: int, kind: str, extra: str = "") -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(ROOT)]))
    command = [sys.executable, "-m", "bench.cpu_per_job", "--store", store, "--jobs", str(jobs), "--kind", kind,
               f"--worker-options={extra}", "--one"]  # fmt: skip
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="all", choices=["sqlite", "postgresql", "all"])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--kind", default="noop", choices=["noop", "chains"])
    parser.add_argument("--base", help="git revision to compare with")
    parser.add_argument("--this", help="git revision to measure instead of this checkout")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS")
    parser.add_argument("--worker-options", default="", help=argparse.SUPPRESS)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    stores = ["sqlite", "postgresql"] if args.store == "all" else [args.store]
    if args.one:
        print(json.dumps(measure(stores[0], args.jobs, args.kind, shlex.split(args.worker_options))))
        return
    if args.variant:
        _variants(args, stores)
        return
    builds = {"this": ROOT / "src"}
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with contextlib.ExitStack() as trees:
        for name, revision in (("this", args.this), ("base", args.base)):
            if revision:
                builds[name] = trees.enter_context(checkout(revision)) / "src"
        order = list(builds.items())
        for rep in range(args.reps):
            for store in stores:
                for name, src in order if rep % 2 == 0 else order[::-1]:
                    result = _run_build(src, store, args.jobs, args.kind)
                    runs.setdefault((store, name), []).append(result)
                    print(f"[cpu] rep {rep + 1} {store} {name}: {json.dumps(result)}", file=sys.stderr)
    _report(runs, stores, args)


def _variants(args: Any, stores: list[str]) -> None:
    variants = [tuple(v.split("=", 1)) if "=" in v else (v, "") for v in args.variant]
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for rep in range(args.reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        for store in stores:
            for name, options in order:
                result = _run_build(ROOT / "src", store, args.jobs, args.kind, options)
                runs.setdefault((store, name), []).append(result)
                print(f"[cpu] rep {rep + 1} {store} {name}: {json.dumps(result)}", file=sys.stderr)
    print(f"{args.kind} jobs, {args.jobs:,} per run, {args.reps} runs; medians of worker CPU per job")
    first = variants[0][0]
    for store in stores:
        for name, options in variants:
            mine = [r["cpu_us_per_job"] for r in runs[(store, name)]]
            rate = statistics.median(r["wall_per_s"] for r in runs[(store, name)])
            line = f"{store} {name} ({options or 'no options'}): {statistics.median(mine):.1f} µs, {rate:,.0f} jobs/s"
            if name != first:
                ratios = [b["cpu_us_per_job"] / r for r, b in zip(mine, runs[(store, first)], strict=True)]
                shown = ", ".join(f"{r:.2f}" for r in ratios)
                line += f"; {first} / {name} (paired) {statistics.median(ratios):.3f} ({shown})"
            print(line)


def _report(runs: dict[tuple[str, str], list[dict[str, float]]], stores: list[str], args: Any) -> None:
    print(f"{args.kind} jobs, {args.jobs:,} per run, {args.reps} runs; medians (worker CPU per job, µs)")
    for store in stores:
        this = runs[(store, "this")]
        line = f"{store}: this {statistics.median(r['cpu_us_per_job'] for r in this):.1f} µs"
        if store == "postgresql":
            line += f" (server {statistics.median(r['server_us_per_job'] for r in this):.1f} µs)"
        if args.base:
            base = runs[(store, "base")]
            ratios = [b["cpu_us_per_job"] / t["cpu_us_per_job"] for t, b in zip(this, base, strict=True)]
            line += f"; base {args.base} {statistics.median(r['cpu_us_per_job'] for r in base):.1f} µs"
            line += f"; base / this (paired) {statistics.median(ratios):.3f} ({', '.join(f'{r:.2f}' for r in ratios)})"
        print(line)


if __name__ == "__main__":
    main()
