"""Cancellation against real worker processes (API §12): how soon a worker notices, a worker
killed while a cancellation is pending, and cancels racing with successes."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import waiting
from jobs_cancel import Looping, Quick
from onward import JobRecord, Store

poll = functools.partial(waiting.poll, timeout=60.0, interval=0.005)


@pytest.fixture
def spawn(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start worker processes (``--import jobs_cancel``); kill leftovers after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(store_url: str, lease: float, *extra: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "onward", "worker", "--import", "jobs_cancel"]
        command += ["--lease-timeout", str(lease), "--database-url", store_url, *extra]
        with open(tmp_path / f"worker-{len(procs)}.log", "wb") as out:
            proc = subprocess.Popen(command, env=subprocess_env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for i, proc in enumerate(procs):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print(f"--- worker {i} exited {proc.returncode}")
        print((tmp_path / f"worker-{i}.log").read_text(errors="replace")[-3000:])


def saved_cursor(record: JobRecord) -> int:
    return int(record.steps[0].cursor or 0) if record.steps else 0


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_worker_notices_a_cancellation_within_a_heartbeat(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    lease = 1.5  # heartbeats every 0.5 s
    proc = spawn(store_url, lease)
    handle = Looping.perform_later(str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    asked = time.monotonic()
    handle.cancel()
    poll(lambda: handle.refresh().state == "cancelled", timeout=10, what="the job to be cancelled")
    took = time.monotonic() - asked
    stop(proc)
    assert took < lease / 3 + 1.0, f"noticed after {took:.2f} s"  # a heartbeat, and slack for a loaded machine
    record = handle.refresh()
    assert record.steps[0].cursor >= 1
    assert not (tmp_path / "after").exists()


def test_on_postgresql_a_worker_notices_a_cancellation_at_once_through_notify(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("NOTIFY is PostgreSQL's")
    proc = spawn(store_url, 120.0)  # a heartbeat only every 40 s
    handle = Looping.perform_later(str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    asked = time.monotonic()
    handle.cancel()
    poll(lambda: handle.refresh().state == "cancelled", timeout=20, what="the job to be cancelled")
    took = time.monotonic() - asked
    stop(proc)
    assert took < 5.0, f"noticed after {took:.2f} s"  # far sooner than the 40 s heartbeat


def test_a_job_whose_worker_was_killed_with_a_cancel_pending_is_cancelled_without_running_again(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = Looping.perform_later(str(tmp_path))
    first = spawn(store_url, 1.0)
    poll(lambda: saved_cursor(handle.refresh()) >= 1, what="the job to save progress")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    (tmp_path / "started").unlink()
    requested = handle.cancel()
    assert requested.state == "running"  # its lease has not expired yet: a request
    assert requested.cancel_requested_at is not None
    second = spawn(store_url, 1.0)
    poll(lambda: handle.refresh().finished, what="the next worker to take the job back")
    stop(second)
    record = handle.refresh()
    assert record.state == "cancelled"
    assert record.attempts == 1
    assert not (tmp_path / "started").exists()  # never run again
    assert saved_cursor(record) >= 1  # the progress saved before the kill is kept


def test_cancels_racing_with_successes_leave_each_job_either_succeeded_or_cancelled(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handles = [Quick.perform_later(n) for n in range(300)]
    proc = spawn(store_url, 5.0, "--concurrency", "4")
    poll(lambda: handles[0].refresh().finished, what="the worker to run jobs")
    for handle in reversed(handles[:200]):  # while the worker runs them, meeting it on the way
        handle.cancel()
    poll(lambda: all(h.refresh().finished for h in handles), what="every job to finish")
    stop(proc)
    outcomes = {"succeeded": 0, "cancelled": 0}
    for n, handle in enumerate(handles):
        record = handle.refresh()
        outcomes[record.state] += 1
        if record.state == "succeeded":  # the success committed first: it stands, with its continuation
            assert record.result == n
            assert len(record.children) == 1
        else:
            assert record.state == "cancelled"
            assert record.result is None
            assert record.children == ()
    assert outcomes["cancelled"] > 0
    assert outcomes["succeeded"] > 0
