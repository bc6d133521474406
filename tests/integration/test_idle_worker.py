"""An idle worker sleeps until something happens (no polling at its ``poll_interval``), and
still starts at once a job another process enqueues, a job that comes due later, and stops
at once when asked."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from jobs_core import Echo
from onward import Store, Worker
from onward.handles import JobHandle

LONG = 120.0  # a poll interval far longer than any wait below


@pytest.fixture
def idle_worker(store: Store) -> Iterator[Worker]:
    """A worker with a very long ``poll_interval``, in a thread, that has run one job."""
    worker = Worker(store=store, poll_interval=LONG, schedules=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert Echo.perform_later("first").wait(30).state == "succeeded"
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()


def test_a_job_another_process_enqueues_wakes_the_idle_worker(
    store: Store, store_url: str, idle_worker: Worker, subprocess_env: dict[str, str]
) -> None:
    """Not through this process's own wake-up: through the WAL file (SQLite) or NOTIFY."""
    for n in range(3):  # again and again: each time it went back to sleep on the store
        script = (
            f"import onward; from jobs_core import Echo; onward.connect({store_url!r});"
            f" print(Echo.perform_later({n}).id)"
        )
        done = subprocess.run([sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert JobHandle(done.stdout.strip(), store).wait(30).result["args"] == [n]


def test_a_job_scheduled_for_later_starts_when_due_not_at_the_next_poll(store: Store, idle_worker: Worker) -> None:
    handle = Echo.set(wait=0.5).perform_later("later")
    record = handle.wait(30)
    assert record.state == "succeeded"
    assert record.started_at is not None
    assert record.started_at >= record.scheduled_at


def test_an_idle_worker_stops_when_asked(store: Store) -> None:
    worker = Worker(store=store, poll_interval=LONG, schedules=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert Echo.perform_later("first").wait(30).state == "succeeded"
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()
