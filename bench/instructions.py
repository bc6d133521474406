"""CPU instructions per no-op job, counted by valgrind: a figure that load cannot blur.

    python -m bench.instructions                      # this checkout, SQLite, 1,000 and 3,000 jobs
    python -m bench.instructions --base 7fadb87       # and an earlier revision, side by side
    python -m bench.instructions --store postgresql --jobs 500,1500
    python -m bench.instructions --worker-options='--metrics-port {port}'   # a worker option's cost

Wall-clock throughput on a shared machine moves by tens of percent from one run to the next;
instruction counts do not. This fills a fresh store with N queued no-op jobs, runs
``onward worker --burst`` over them under ``valgrind --tool=callgrind`` (instructions of every
thread of the worker process, the database server's not included), does the same for a
larger N, and reports the difference divided by the difference in jobs: instructions per job,
start-up and imports excluded. It measures the worker's own cost (claiming, running,
committing: what a feature adds to the hot path), not waiting or the disk. Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_COLLECTED = re.compile(r"Collected : (\d+)")


def count(build: Path, store: str, jobs: int, options: Sequence[str] = ()) -> int:
    """Instructions of one burst worker over ``jobs`` queued no-op jobs, built from ``build``,
    started with the extra worker ``options`` (``{port}`` in them: a free TCP port)."""
    options = [o.replace("{port}", str(_free_port())) for o in options]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(build / "src"), str(build)]))
    with tempfile.TemporaryDirectory() as tmp:
        url = _store_url(store, tmp)
        fill = (
            "import sys; from onward import stores; from bench.jobs import Noop\n"
            f"with stores.connected({url!r}):\n"
            f"    Noop.perform_all_later([(i,) for i in range({jobs})])\n"
        )
        subprocess.run([sys.executable, "-c", fill], cwd=build, env=env, check=True)
        worker = [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, "-m", "onward", "worker", "--burst", "--import", "bench.jobs",
            "--log-level", "WARNING", "--database-url", url, *options,
        ]  # fmt: skip
        result = subprocess.run(worker, cwd=build, env=env, capture_output=True, text=True, check=True)
        if store == "postgresql":
            _drop(url)
    match = _COLLECTED.search(result.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _store_url(store: str, tmp: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{tmp}/bench.sqlite3"
    import psycopg

    name = f"onward_instr_{os.getpid()}_{abs(hash(tmp)) % 10**8}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def per_job(build: Path, store: str, small: int, large: int, options: Sequence[str] = ()) -> float:
    return (count(build, store, large, options) - count(build, store, small, options)) / (large - small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="a git revision to measure beside this checkout")
    parser.add_argument("--revs", default="", help="comma-separated git revisions to measure instead of this checkout")
    parser.add_argument("--store", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--jobs", default="1000,3000", help="the two backlog sizes, small,large")
    parser.add_argument("--worker-options", default="", help="extra options for every worker measured")
    args = parser.parse_args()
    options = shlex.split(args.worker_options)
    small, large = (int(n) for n in args.jobs.split(","))
    revisions = [r for r in args.revs.split(",") if r] or ([args.base] if args.base else [])
    builds = [] if args.revs else [("this checkout", ROOT)]
    with tempfile.TemporaryDirectory(prefix="onward-base-") as tmp:
        for i, revision in enumerate(revisions):
            tree = Path(tmp) / f"rev{i}"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True)
            builds.insert(i, (f"{'base ' if args.base else ''}{revision}", tree))
        try:
            figures = []
            for name, build in builds:
                figures.append((name, per_job(build, args.store, small, large, options)))
                print(f"{args.store}: {name}: {figures[-1][1]:,.0f} instructions per no-op job", file=sys.stderr)
        finally:
            for i in range(len(revisions)):
                tree = Path(tmp) / f"rev{i}"
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    for name, value in figures:
        print(f"{args.store}: {name}: {value:,.0f} instructions per no-op job")
    if len(figures) == 2 and not args.revs:
        print(f"{args.store}: this checkout / base = {figures[1][1] / figures[0][1]:.3f}")


if __name__ == "__main__":
    main()
