"""A PostgreSQL restart in the middle of a run loses no job and no checkpoint.

Two workers run chains of continuations and stepped jobs that save a checkpoint at every
item; once some of each have made progress, the server is restarted (every connection is
cut). The workers reconnect, their writes retry, and afterwards every job has succeeded
exactly once with its checkpointed counts exact.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

import waiting
from onward import Job, JobRecord, Worker
from onward.steps import Step
from onward.stores.base import Store

CHAINS = 40
CHAIN_LENGTH = 3
STEPPED = 16
ITEMS = 40

_finished: collections.Counter[str] = collections.Counter()
_finished_lock = threading.Lock()


def _ran_to_the_end(job_id: str) -> None:
    with _finished_lock:
        _finished[job_id] += 1


class Link(Job):
    def perform(self, chain: int, n: int) -> int:
        _ran_to_the_end(self.id)
        return n

    def continuations(self, chain: int, n: int) -> None:
        if n < CHAIN_LENGTH:
            Link.perform_later(chain, n + 1)


class Counts(Job):
    """Counts items in ``self.state``, saved with the cursor at every item."""

    checkpoint_interval = 0

    def perform(self, number: int) -> int:
        self.step("items", self.items)
        _ran_to_the_end(self.id)
        return int(self.state["items"])

    def items(self, step: Step) -> None:
        step.total = ITEMS
        self.state.setdefault("items", 0)
        for item in range(step.cursor or 0, ITEMS):
            time.sleep(0.01)  # the work an item stands for
            self.state["items"] += 1
            step.advance(from_=item)


def _cluster() -> list[str]:
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        pytest.skip("needs a local PostgreSQL cluster managed by pg_ctlcluster")
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions or not os.path.isdir(f"/etc/postgresql/{versions[-1]}/main"):
        pytest.skip("no local PostgreSQL cluster 'main'")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    waiting.poll(condition, what, timeout=timeout, interval=0.02)


def _midway(record: JobRecord) -> bool:
    return bool(record.steps) and 0 < (record.steps[0].cursor or 0) < ITEMS


def _count(url: str, sql: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1  # the server is restarting


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_restart_mid_run_loses_no_job_and_no_checkpoint(pg_store: Store, pg_url: str) -> None:
    restart = _cluster()
    _finished.clear()
    chains = Link.perform_all_later([(c, 1) for c in range(CHAINS)])
    counts = Counts.perform_all_later([(s,) for s in range(STEPPED)])
    workers = [Worker(store=pg_store, concurrency=4, lease_timeout=20.0) for _ in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    total = CHAINS * CHAIN_LENGTH + STEPPED
    try:
        # Restart once stepped jobs are midway and chains are partly done.
        _poll(lambda: any(_midway(h.refresh()) for h in counts), 30, "a stepped job to save progress")
        before = _count(pg_url, "SELECT count(*) FROM onward_jobs WHERE state = 'succeeded'")
        subprocess.run(restart, check=True, capture_output=True, timeout=120)
        _poll(
            lambda: _count(pg_url, "SELECT count(*) FROM onward_jobs WHERE state = 'succeeded'") == total,
            120,
            "every job to succeed after the restart",
        )
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(60)
    assert before < total, "the restart came after the run"
    assert sum(w.outcomes["succeeded"] for w in workers) == total
    assert set(_finished.values()) == {1}
    assert len(_finished) == total
    for handle in chains:
        record = handle.refresh()
        for n in range(1, CHAIN_LENGTH + 1):
            assert record.state == "succeeded"
            assert record.args == [record.args[0], n]
            if n < CHAIN_LENGTH:
                assert len(record.children) == 1
                record = pg_store.get(record.children[0])
        assert record.children == ()
    for handle in counts:
        record = handle.refresh()
        assert record.result == ITEMS
        assert record.job_state == {"items": ITEMS}
        assert record.steps[0].cursor == ITEMS
        assert record.steps[0].advanced == ITEMS
