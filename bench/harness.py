"""What every benchmark needs: fresh stores, a real ``onward worker`` process, counting
finished jobs, and reading a process's memory."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import onward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN_URL = os.environ.get("ONWARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("ONWARD_BENCH_POSTGRES_DATABASE", "onward_bench_suite")  # one per concurrent run


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL benchmarks cannot run here, or ``None`` when they can."""
    try:
        import psycopg

        from onward.stores import postgres  # noqa: F401
    except ImportError as exc:
        return f"the PostgreSQL store cannot be imported ({exc})"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no server at {PG_ADMIN_URL} ({str(exc).strip()})"


@contextmanager
def fresh_store(kind: str) -> Iterator[tuple[onward.Store, str]]:
    """A new, empty store of ``kind`` ("sqlite" or "postgresql"), the default while in use."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="onward-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            store = onward.connect(url)
            try:
                yield store, url
            finally:
                store.close()
        return
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
    store = onward.connect(url)
    try:
        yield store, url
    finally:
        store.close()
        close_connections()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


class RawInserts:
    """What the disk allows one writer, beside ``perform_later``: single-row ``INSERT`` +
    ``COMMIT`` of a row of about the width of a job's (an id, a class path, a queue, a priority,
    the arguments, two times) into a table of its own with a primary key only, through the
    bare driver, on the store's own database with the same durability: SQLite's file in WAL
    mode with ``synchronous=NORMAL`` (the ``sqlite3`` module, autocommit, so each statement is
    its own transaction), or a psycopg connection in autocommit mode (each statement commits
    with the server's ``synchronous_commit``, prepared as Onward's are).

    :meth:`jobs_statement` sends, the same bare way, the very ``INSERT`` ``perform_later``
    sends for a no-op job into ``onward_jobs``: the schema's share (the table's indexes) is
    what separates the two, and Onward's own Python what separates it from ``perform_later``."""

    TABLE = "onward_bench_raw"

    def __init__(self, store: onward.Store, url: str) -> None:
        self.sqlite = hasattr(store, "_exec")
        self._jobs: list[tuple[str, Any]] = []
        self.n = 0
        self.conn: Any
        columns = (
            "id {text} PRIMARY KEY, job_class {text} NOT NULL, queue {text} NOT NULL, priority {int} NOT NULL,"
            " args {text} NOT NULL, kwargs {text} NOT NULL, max_attempts {int} NOT NULL, scheduled_at {time} NOT NULL,"
            " enqueued_at {time} NOT NULL"
        )
        if self.sqlite:
            self.conn = sqlite3.connect(store.path, isolation_level=None)  # type: ignore[attr-defined]
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute(f"CREATE TABLE {self.TABLE} ({columns.format(text='TEXT', int='INTEGER', time='REAL')})")
            self._insert = f"INSERT INTO {self.TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[self.conn.execute("PRAGMA synchronous").fetchone()[0]]
            self.durability = f"journal_mode={mode} synchronous={sync}"
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=0)
            self.conn.execute(
                f"CREATE TABLE {self.TABLE} ({columns.format(text='text', int='integer', time='timestamptz')})"
            )
            self._insert = f"INSERT INTO {self.TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, now(), now())"
            self.durability = "synchronous_commit=" + self.conn.execute("SHOW synchronous_commit").fetchone()[0]

    def one(self) -> None:
        """One row, committed."""
        self.n += 1
        n = self.n
        if self.sqlite:
            now = time.time()
            self.conn.execute(self._insert, (f"{n:032x}", "bench.jobs:Noop", "bench", 0, f"[{n}]", "{}", 25, now, now))
        else:
            self.conn.execute(self._insert, (f"{n:032x}", "bench.jobs:Noop", "bench", 0, f"[{n}]", "{}", 25))

    def prepare_jobs(self, count: int) -> None:
        """Build the parameters of ``count`` calls of :meth:`jobs_statement` (before timing)."""
        from bench.jobs import Noop
        from onward.job import Configured
        from onward.options import NO_OPTIONS

        jobs = [Configured(Noop, NO_OPTIONS).new_job((i,), {}) for i in range(count)]
        if self.sqlite:
            from onward.stores.sqlite import inserts as sqlite_inserts
            from onward.stores.sqlite import sql as sqlite_sql

            now = time.time()
            self._jobs = [(sqlite_sql.INSERT, sqlite_inserts.insert_params(job, now, None)) for job in jobs]
        else:
            from onward.stores.postgres import inserts as pg_inserts

            self._jobs = [pg_inserts.one_insert(job) for job in jobs]
        self._jobs.reverse()

    def jobs_statement(self) -> None:
        """The ``INSERT`` (and, on PostgreSQL, its ``NOTIFY``) of one no-op job into
        ``onward_jobs`` as ``perform_later`` sends it, committed (see :meth:`prepare_jobs`)."""
        statement, params = self._jobs.pop()
        self.conn.execute(statement, params)

    def close(self) -> None:
        self.conn.close()


_PG_CONNECTIONS: dict[str, Any] = {}


def sql(store: onward.Store, statement: str) -> Any:
    """Run one read-only statement on the store's own connection (SQLite), or on one
    connection kept per database (PostgreSQL): counting every 20 ms must not cost a new
    server process each time."""
    if hasattr(store, "_exec"):  # SQLite
        return store._exec(statement).fetchone()
    import psycopg

    conn = _PG_CONNECTIONS.get(store.url)
    if conn is None or conn.closed:
        conn = _PG_CONNECTIONS[store.url] = psycopg.connect(store.url, autocommit=True)
    cur = conn.execute(statement)
    return cur.fetchone() if cur.description is not None else None


def close_connections() -> None:
    while _PG_CONNECTIONS:
        _PG_CONNECTIONS.popitem()[1].close()


def succeeded(store: onward.Store) -> int:
    # Spelled as the index of finished jobs is, so that counting never reads the whole table.
    finished = "state IN ('succeeded', 'failed', 'discarded')"
    return int(sql(store, f"SELECT count(*) FROM onward_jobs WHERE state = 'succeeded' AND {finished}")[0])


def enqueued(store: onward.Store) -> int:
    return int(sql(store, "SELECT count(*) FROM onward_jobs WHERE state = 'enqueued'")[0])


class WorkerProcess:
    """``onward worker`` in a subprocess, with the benchmark jobs importable."""

    def __init__(
        self,
        url: str,
        concurrency: int = 2,
        processes: int = 1,
        *,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        argv = [
            sys.executable, "-m", "onward", "worker", "--import", "bench.jobs", "--concurrency", str(concurrency),
            "--log-level", "WARNING", "--database-url", url, *extra,
        ]  # fmt: skip
        if processes > 1:
            argv += ["--processes", str(processes)]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        full_env = None if env is None else {**os.environ, **env}
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)

    def rss_kib(self) -> int:
        """Resident memory of the worker (and its children under ``--processes``), KiB."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def wait_until(store: onward.Store, target: int, worker: WorkerProcess, timeout: float = 900.0) -> dict[str, float]:
    """Poll the count of succeeded jobs until it reaches ``target``; the rate counts from the
    first observed success (worker start-up excluded), like the peer benchmarks."""
    first_t = first_n = None
    deadline = time.perf_counter() + timeout
    while True:
        n = succeeded(store)
        now = time.perf_counter()
        if n and first_t is None:
            first_t, first_n = now, n
        if n >= target:
            break
        if now > deadline or worker.proc.poll() is not None:
            raise RuntimeError(f"{n}/{target} jobs done; worker output:\n{worker.output()}")
        time.sleep(0.02)
    assert first_t is not None
    assert first_n is not None
    span = now - first_t
    return {"per_s": (target - first_n) / span if span > 0 else float("inf"), "startup_s": first_t - worker.started}
