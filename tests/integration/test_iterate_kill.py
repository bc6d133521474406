"""A worker killed (SIGKILL) in the middle of ``step.each`` over 10,000 rows: nothing is lost,
and what runs again is exactly the rows processed after the last save, within the bound the
contract gives (the row in flight plus one ``checkpoint_interval`` of rows)."""

from __future__ import annotations

import functools
import math
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import jobs_iterate as ji
import onward
import waiting

pytestmark = pytest.mark.slow

ROWS = 10_000
ITEM_SECONDS = 0.0005  # each row takes at least this long
LEASE = "5"  # seconds: the killed worker's job is taken back soon after; long enough for a busy machine
DEADLINE = 120.0


poll = functools.partial(waiting.poll, timeout=DEADLINE, interval=0.01)


@pytest.fixture
def start_worker(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``onward worker`` processes (output in files); kill any left after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(store: onward.Store, *extra: str) -> subprocess.Popen[bytes]:
        env = {**subprocess_env, "ITERATE_ITEM_SECONDS": str(ITEM_SECONDS)}
        command = [sys.executable, "-m", "onward", "worker", "--import", "jobs_iterate"]
        with open(tmp_path / f"worker-{len(procs)}.log", "wb") as out:
            proc = subprocess.Popen([*command, "--database-url", store.url, *extra], env=env, stdout=out, stderr=out)
        procs.append(proc)
        return proc

    yield start
    for i, proc in enumerate(procs):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print(f"--- worker {i} exited {proc.returncode}")
        print((tmp_path / f"worker-{i}.log").read_text(errors="replace")[-3000:])


@pytest.mark.timeout(360)  # 10,000 rows twice over, slower on a busy machine
def test_a_worker_killed_mid_iteration_repeats_only_what_followed_the_last_save(
    store: onward.Store, tmp_path: Path, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    app, data = str(tmp_path / "app.sqlite3"), str(tmp_path / "data.sqlite3")
    with sqlite3.connect(data) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO items VALUES (?)", [(i,) for i in range(1, ROWS + 1)])
    conn.close()
    handle = ji.KilledMidRows.perform_later(app, data)

    worker = start_worker(store, "--lease-timeout", LEASE)

    def saved_mid_step() -> bool:
        steps = handle.refresh().steps
        return bool(steps) and steps[0].status == "running" and steps[0].cursor is not None

    poll(saved_mid_step, "a checkpoint saved in the middle of the step")
    poll(lambda: len(ji.processed(app)) >= ROWS * 3 // 10, "the job to get a third of the way")
    worker.kill()
    worker.wait()

    record = handle.refresh()
    assert record.state == "running"  # nobody knows yet that its worker died
    saved = record.steps[0].cursor  # the last key saved: the job resumes after it
    before = ji.processed(app)
    assert 0 < saved < ROWS

    poll(lambda: (handle.refresh().lease_expires_at or datetime.now(UTC)) < datetime.now(UTC), "the lease to end")
    finisher = start_worker(store, "--burst")  # the default lease: no lease lost to a busy machine
    assert finisher.wait(DEADLINE) == 0
    record = handle.refresh()
    assert record.state == "succeeded", record.error
    assert (record.attempts, record.resumptions) == (1, 1)  # progress was saved: resumed, not retried
    assert (record.steps[0].cursor, record.steps[0].status) == (ROWS, "completed")

    counts = Counter(ji.processed(app))
    assert set(counts) == set(range(1, ROWS + 1))  # nothing lost
    assert max(counts.values()) <= 2
    repeated = {item for item, n in counts.items() if n > 1}
    # exactly the rows processed after the last save ran again...
    assert repeated == {item for item in before if item > saved}
    # ...which the contract bounds by the row in flight plus one interval's worth of rows
    per_interval = math.ceil(ji.KilledMidRows.checkpoint_interval / ITEM_SECONDS)
    assert len(repeated) <= 1 + per_interval, f"{len(repeated)} rows ran twice"
