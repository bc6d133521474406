"""Onward under the bench-peers protocol (``../shared/bench-peers/bench_common.py``, beside the project).

Same no-op job body as every peer (one Redis INCR, or RPUSH of a latency token), same
counting, concurrency 2, and the real ``onward worker`` command started as a subprocess.

    python bench/peers/bench_onward.py --store sqlite --jobs 5000
    python bench/peers/bench_onward.py --store postgresql --processes 2 --concurrency 1

``--store sqlite`` uses a fresh file under ``/tmp`` (WAL, ``synchronous=NORMAL``: durable
against process crashes); ``--store postgresql`` a fresh database on 127.0.0.1:5432
(``synchronous_commit=on``). ``--concurrency`` is the total number of jobs run at once:
with ``--processes P`` each of the P worker processes runs ``concurrency / P`` threads.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS_DIR = os.environ.get("BENCH_PEERS_DIR", os.path.join(os.path.dirname(ROOT), "shared", "bench-peers"))
sys.path.insert(0, PEERS_DIR)
sys.path.insert(0, HERE)

import bench_common as bc  # noqa: E402

from onward import Job  # noqa: E402

SQLITE_PATH = os.environ.get("BENCH_ONWARD_SQLITE", "/tmp/onward-bench-peers.sqlite3")
PG_ADMIN_URL = os.environ.get("BENCH_ONWARD_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "onward_bench_peers"


class NoopJob(Job):
    """The peers' no-op job: one Redis round trip."""

    queue = "bench"

    def perform(self, token: str | None = None) -> None:
        bc.job_body(token)


def _parse() -> tuple[object, str, int]:
    store_kind, processes = "sqlite", 1
    argv = list(sys.argv[1:])
    if "--store" in argv:
        i = argv.index("--store")
        store_kind = argv[i + 1]
        del argv[i : i + 2]
    if "--processes" in argv:
        i = argv.index("--processes")
        processes = int(argv[i + 1])
        del argv[i : i + 2]
    return bc.parse_args(argv), store_kind, processes


def _fresh_store_url(kind: str) -> str:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(SQLITE_PATH + suffix):
                os.remove(SQLITE_PATH + suffix)
        return f"sqlite:///{SQLITE_PATH}"
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DB


def main() -> None:
    args, kind, processes = _parse()
    import onward

    url = _fresh_store_url(kind)
    store = onward.connect(url)
    threads = max(1, args.concurrency // processes)
    worker_argv = [
        sys.executable,
        "-m",
        "onward",
        "worker",
        "--queues",
        "bench",
        "--concurrency",
        str(threads),
        "--import",
        "bench_onward",
        "--log-level",
        "WARNING",
        "--database-url",
        url,
    ]
    if processes > 1:
        worker_argv[4:4] = ["--processes", str(processes)]

    def clean() -> None:
        # Empty the table with the store's own connection (no API deletes jobs yet).
        if kind == "sqlite":
            store._exec("DELETE FROM onward_jobs")  # type: ignore[attr-defined]
        else:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DELETE FROM onward_jobs")

    def analyze() -> None:
        if kind == "sqlite":
            store._exec("ANALYZE")  # type: ignore[attr-defined]
        else:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE onward_jobs")

    durability = (
        "SQLite WAL synchronous=NORMAL (survives process crashes)"
        if kind == "sqlite"
        else "PostgreSQL synchronous_commit=on"
    )
    kind_text = f"{processes} processes x {threads} threads" if processes > 1 else f"1 process, {threads} threads"
    bc.run_protocol(
        peer=f"onward-{kind}" + (f"-p{processes}" if processes > 1 else ""),
        backend="sqlite" if kind == "sqlite" else "postgresql",
        args=args,
        enqueue_one=lambda: NoopJob.perform_later(),
        enqueue_token=lambda tok: NoopJob.perform_later(tok),
        clean=clean,
        before_worker=analyze,
        worker_argv=worker_argv,
        worker_env={"PYTHONPATH": os.pathsep.join([HERE, PEERS_DIR, os.environ.get("PYTHONPATH", "")])},
        worker_name=f"onward-{kind}-p{processes}",
        notes=(
            f"onward {onward.__version__}; `onward worker --concurrency {threads}`"
            + (f" --processes {processes}" if processes > 1 else "")
            + f" = {kind_text}; {durability}; perform_later() one INSERT per job; jobs kept"
        ),
        extra={"concurrency": args.concurrency, "concurrency_kind": kind_text},
    )
    store.close()


if __name__ == "__main__":
    import bench_onward  # run under the real module name, so the worker imports the same class

    bench_onward.main()
