"""Many worker processes on one PostgreSQL database: every job runs to success exactly once.

Four ``onward worker`` processes, four threads each, share 2,000 jobs: chains of
continuations and stepped jobs. Each execution that reaches the end of ``perform`` appends a
line to a log file (one ``O_APPEND`` write, so processes never mix lines). Afterwards every job
must be ``succeeded``, must have run to the end exactly once, and every continuation must
exist exactly once.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pg
from onward import Job, stores
from onward.steps import Step

HERE = Path(__file__).parent
LOG_ENV = "ONWARD_TEST_RUN_LOG"
CHAIN_LENGTH = 3
CHAINS = 500
STEPPED = 500
ITEMS = 5
WORKERS = 4
CONCURRENCY = 4


def _log(line: str) -> None:
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class ChainLink(Job):
    """Link ``n`` of chain ``chain``; links before the last enqueue the next one."""

    def perform(self, chain: int, n: int) -> int:
        _log(f"{self.id} chain {chain} {n}")
        return n

    def continuations(self, chain: int, n: int) -> None:
        if n < CHAIN_LENGTH:
            ChainLink.perform_later(chain, n + 1)


class SteppedWork(Job):
    """Three steps, the middle one advancing a cursor with a durable save at every item."""

    checkpoint_interval = 0

    def perform(self, number: int) -> int:
        self.step("start", lambda: self.state.update(items=0))
        self.step("items", self.items)
        self.step("finish", lambda: None)
        _log(f"{self.id} stepped {number} {self.state['items']}")
        return int(self.state["items"])

    def items(self, step: Step) -> None:
        step.total = ITEMS
        for item in range(step.cursor or 0, ITEMS):
            self.state["items"] += 1
            step.advance(from_=item)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from pg.fresh_database(request)


@pytest.mark.slow
@pytest.mark.postgres
def test_four_worker_processes_run_every_job_and_continuation_exactly_once(
    pg_url: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    log_path = tmp_path / "runs.log"
    env = dict(subprocess_env)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
    env[LOG_ENV] = str(log_path)
    os.environ[LOG_ENV] = str(log_path)
    store = stores.open_store(pg_url)
    previous = stores.set_default(store)
    module = ChainLink.__module__
    command = [sys.executable, "-m", "onward", "worker", "--concurrency", str(CONCURRENCY), "--import", module]
    command += ["--database-url", pg_url, "--log-level", "WARNING", "--lease-timeout", "30"]
    workers = [
        subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(WORKERS)
    ]
    try:
        chains = ChainLink.perform_all_later([(c, 1) for c in range(CHAINS)])
        stepped = SteppedWork.perform_all_later([(s,) for s in range(STEPPED)])
        total = CHAINS * CHAIN_LENGTH + STEPPED
        deadline = time.monotonic() + 240
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT count(*) FROM onward_jobs WHERE state = 'succeeded'").fetchone()
                done = row[0] if row else 0
                if done >= total:
                    break
                crashed = [w.returncode for w in workers if w.poll() is not None]
                assert not crashed, f"a worker process exited early: {crashed}"
                assert time.monotonic() < deadline, f"only {done} of {total} jobs succeeded in time"
                time.sleep(0.1)
            states = dict(conn.execute("SELECT state, count(*) FROM onward_jobs GROUP BY state").fetchall())
        assert states == {"succeeded": total}
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        outputs = [w.communicate(timeout=60)[0].decode(errors="replace") for w in workers]
        stores.set_default(previous)
    assert [w.returncode for w in workers] == [0] * WORKERS, outputs

    # Every execution that ran to the end is in the log: each job exactly once.
    lines = log_path.read_text().splitlines()
    runs = collections.Counter(line.split()[0] for line in lines)
    assert len(lines) == total
    assert set(runs.values()) == {1}
    try:
        # Every chain has exactly one job per link, each link the child of the one before.
        for handle in chains:
            record = handle.refresh()
            links = [record]
            while len(record.children) == 1:
                record = store.get(record.children[0])
                links.append(record)
            assert [r.args[1] for r in links] == list(range(1, CHAIN_LENGTH + 1))
            assert record.children == ()
            assert all(r.attempts == 1 and r.id in runs for r in links)
        # Stepped jobs kept exact counts in their checkpoints.
        for handle in stepped:
            record = handle.refresh()
            assert record.result == ITEMS
            assert record.job_state == {"items": ITEMS}
            assert [s.status for s in record.steps] == ["completed"] * 3
            assert record.steps[1].cursor == ITEMS
    finally:
        store.close()
