"""Fault injection with real processes: killed workers, a crash inside ``continuations``,
a killed ``perform_now`` caller, and two workers sharing one database (API §3, §5, §7)."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import waiting
from jobs_core import Child, CountOnce, CrashingContinuations, SlowSteps, StuckOnce, StuckOnFirstAttempt
from onward import JobRecord, Store, lifecycle
from onward.stores.base import JobFilter

pytestmark = pytest.mark.slow

LEASE = "1"  # seconds: a dead worker's job is taken back about a second later


poll = functools.partial(waiting.poll, timeout=60.0, interval=0.02)


@pytest.fixture
def spawn(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start processes with output to files under ``tmp_path``; kill leftovers after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*command: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"process-{len(procs)}.log", "wb") as out:
            proc = subprocess.Popen(list(command), env=subprocess_env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for i, proc in enumerate(procs):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # Shown by pytest when the test failed: what each process said.
        print(f"--- process {i} ({' '.join(proc.args[:4])}...) exited {proc.returncode}")  # type: ignore[index]
        print((tmp_path / f"process-{i}.log").read_text(errors="replace")[-4000:])


def worker(store_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "onward",
        "worker",
        "--import",
        "jobs_core",
        "--lease-timeout",
        LEASE,
        "--database-url",
        store_url,
        *extra,
    ]


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def last_line(record: JobRecord) -> str:
    return (record.error or "").splitlines()[-1]


# -- killed workers ----------------------------------------------------------------------------


def test_a_job_whose_worker_was_killed_is_finished_by_another_worker_as_a_new_attempt(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = StuckOnFirstAttempt.perform_later(str(tmp_path))
    first = spawn(*worker(store_url))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    second = spawn(*worker(store_url))
    poll(lambda: handle.refresh().finished, what="another worker to finish the job")
    stop(second)
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions, record.result) == ("succeeded", 2, 0, 2)
    # Kept for the record: the next worker on this machine read the dead one's journal and
    # took the job over at once (on another machine it would wait for the lease to expire).
    assert last_line(record) == lifecycle.PROCESS_DIED_ERROR


def test_a_killed_worker_s_job_fails_when_its_attempts_are_used_up(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = StuckOnce.perform_later(str(tmp_path))  # a single attempt
    first = spawn(*worker(store_url))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    second = spawn(*worker(store_url))
    poll(lambda: handle.refresh().finished, what="the lost job to be failed")
    stop(second)
    record = handle.refresh()
    assert (record.state, record.attempts, record.result) == ("failed", 1, None)
    assert last_line(record) == lifecycle.PROCESS_DIED_ERROR


def test_a_killed_worker_s_job_that_saved_progress_resumes_without_using_an_attempt(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = SlowSteps.perform_later(str(tmp_path))  # one attempt only: a retry would fail it
    first = spawn(*worker(store_url))
    poll(lambda: (tmp_path / "started").exists(), what="the job to save progress")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    second = spawn(*worker(store_url))
    poll(lambda: handle.refresh().finished, what="the job to resume and finish")
    stop(second)
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.result == {"attempt": 1, "resumptions": 1}
    assert (record.steps[0].cursor, record.steps[0].status) == (3, "completed")


# -- a crash inside continuations ------------------------------------------------------------


def test_a_crash_inside_continuations_neither_loses_nor_duplicates_the_children(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = CrashingContinuations.perform_later(str(tmp_path))
    crashed = spawn(*worker(store_url, "--burst"))
    assert crashed.wait(60) == 17  # died inside continuations, after two perform_later calls
    assert (tmp_path / "crashed").exists()
    assert store.list_jobs(JobFilter(job_class="jobs_core:Child")) == []  # nothing committed
    assert handle.refresh().state == "running"  # until its lease expires
    second = spawn(*worker(store_url))
    poll(lambda: handle.refresh().finished, what="another worker to take the parent back")
    poll(
        lambda: all(store.get(c).finished for c in handle.refresh().children),
        what="the children to run",
    )
    stop(second)
    parent = handle.refresh()
    assert (parent.state, parent.attempts) == ("succeeded", 2)
    children = store.list_jobs(JobFilter(job_class=f"jobs_core:{Child.__qualname__}"))
    assert sorted(c.args[0] for c in children) == ["one", "two"]  # exactly once each
    assert set(parent.children) == {c.id for c in children}
    assert all(c.parent_id == parent.id and c.state == "succeeded" for c in children)


# -- perform_now's caller dies ---------------------------------------------------------------

CALLER = """
import sys
import onward
from onward import perform_now
from jobs_core import StuckOnFirstAttempt

perform_now.PERFORM_NOW_LEASE = 1.0  # a short lease, so that the test need not wait 30 s
onward.connect(sys.argv[1])
StuckOnFirstAttempt.perform_now(sys.argv[2])
"""


def test_if_the_caller_of_perform_now_dies_a_worker_finishes_the_job(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    caller = spawn(sys.executable, "-c", CALLER, store_url, str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="perform_now to start")
    [record] = store.list_jobs(JobFilter(job_class="jobs_core:StuckOnFirstAttempt"))
    assert record.state == "running"
    caller.send_signal(signal.SIGKILL)
    caller.wait(30)
    second = spawn(*worker(store_url))
    poll(lambda: store.get(record.id).finished, what="a worker to take the job over")
    stop(second)
    record = store.get(record.id)
    assert (record.state, record.attempts, record.result) == ("succeeded", 2, 2)


# -- two worker processes, one database ------------------------------------------------------

JOBS = 1000


def test_two_worker_processes_run_each_of_1000_jobs_exactly_once(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    workers = [spawn(*worker(store_url, "--concurrency", "2")) for _ in range(2)]
    poll(
        lambda: all("started" in (tmp_path / f"process-{i}.log").read_text() for i in range(2)),
        what="both workers to start",
    )
    handles = CountOnce.perform_all_later([(n, str(tmp_path)) for n in range(JOBS)])

    def succeeded() -> int:
        return len(store.list_jobs(JobFilter(state="succeeded", limit=JOBS + 1)))

    poll(lambda: succeeded() == JOBS, timeout=240, what=f"{JOBS} jobs to succeed")
    for proc in workers:
        stop(proc)
    lines = (tmp_path / "executions.log").read_text().splitlines()
    numbers = Counter(int(line.split()[0]) for line in lines)
    assert len(lines) == JOBS, f"{len(lines) - JOBS} extra executions"
    assert set(numbers) == set(range(JOBS))
    assert not (tmp_path / "duplicates.log").exists()
    assert all((tmp_path / f"job-{n}").exists() for n in range(JOBS))
    records = [h.refresh() for h in handles]
    assert [r.result for r in records] == list(range(JOBS))
    assert {r.attempts for r in records} == {1}
    pids = {line.split()[2] for line in lines}
    assert pids <= {str(proc.pid) for proc in workers}  # only the two workers ran jobs
