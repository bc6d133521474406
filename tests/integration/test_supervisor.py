"""``onward worker --processes N``: N worker processes under one supervisor that passes
SIGTERM/SIGINT on to them and restarts a crashed one with backoff."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import waiting
from jobs_supervisor import CountsUntilStopped, CrashesItsProcessOnce, MeetsAnotherProcess
from onward import Store
from onward.supervisor import MAX_BACKOFF, MIN_BACKOFF, backoff, child_argv

pytestmark = pytest.mark.usefixtures("sqlite_store")


poll = functools.partial(waiting.poll, timeout=30.0, interval=0.01)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def supervisor(
    tmp_path: Path, subprocess_env: dict[str, str], sqlite_store: Store
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``onward worker --processes ...`` on the test's store; output goes to a file."""
    procs: list[subprocess.Popen[str]] = []
    log = tmp_path / "supervisor.log"

    def start(*args: str) -> subprocess.Popen[str]:
        out = open(log, "w")  # noqa: SIM115 - closed right after the process started
        proc = subprocess.Popen(
            [sys.executable, "-m", "onward", "worker", "--import", "jobs_supervisor", *args,
             "--database-url", sqlite_store.url],
            env=subprocess_env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        out.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def child_pids(log: Path) -> list[int]:
    """Child process ids, in start order, from the supervisor's log lines."""
    pids = []
    for line in log.read_text().splitlines():
        if "worker process" in line and "started (pid" in line:
            pids.append(int(line.rsplit("(pid ", 1)[1].rstrip(")")))
    return pids


def test_processes_run_jobs_at_once_and_burst_ends_when_all_are_done(
    supervisor: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    handles = [MeetsAnotherProcess.perform_later(str(meeting), 2) for _ in range(2)]
    proc = supervisor("--processes", "2", "--concurrency", "1", "--burst")
    assert proc.wait(timeout=60) == 0, (tmp_path / "supervisor.log").read_text()
    records = [h.refresh() for h in handles]
    assert [r.state for r in records] == ["succeeded", "succeeded"]
    pids = {r.result for r in records}
    assert len(pids) == 2  # each job ran in a different process, at the same time
    assert pids == set(child_pids(tmp_path / "supervisor.log"))
    assert os.getpid() not in pids
    assert proc.pid not in pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_supervisor_stops_every_child_gracefully(
    supervisor: Callable[..., subprocess.Popen[str]], tmp_path: Path, signum: int
) -> None:
    started = [tmp_path / "started-0", tmp_path / "started-1"]
    handles = [CountsUntilStopped.perform_later(str(path)) for path in started]
    proc = supervisor("--processes", "2", "--concurrency", "1")
    poll(lambda: all(p.exists() for p in started), what="both jobs running")
    pids = child_pids(tmp_path / "supervisor.log")
    assert len(pids) == 2

    proc.send_signal(signum)
    assert proc.wait(timeout=30) == 0, (tmp_path / "supervisor.log").read_text()
    assert not any(alive(pid) for pid in pids)
    # A graceful stop: each stepped job was interrupted at a checkpoint and put back.
    for handle in handles:
        record = handle.refresh()
        assert record.state == "enqueued"
        assert record.resumptions == 1
        assert record.steps[0].status == "interrupted"
        assert record.steps[0].cursor is not None
        assert record.steps[0].cursor > 0


@pytest.mark.slow
def test_a_crashed_child_is_restarted_and_its_job_taken_back(
    supervisor: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"
    handle = CrashesItsProcessOnce.perform_later(str(marker))
    proc = supervisor("--processes", "2", "--concurrency", "1", "--lease-timeout", "1")
    record = handle.wait(timeout=60)
    assert record.state == "succeeded"
    assert record.attempts == 2  # the crash used an attempt (the execution saved no progress)
    crashed_pid = int(marker.read_text())
    assert record.result != crashed_pid
    log = tmp_path / "supervisor.log"
    poll(lambda: len(child_pids(log)) == 3, what="the crashed child restarted")
    assert crashed_pid in child_pids(log)
    assert "killed by signal 9; restarting in" in log.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_backoff_doubles_after_each_crash_in_a_row_up_to_a_limit() -> None:
    assert backoff(1) == MIN_BACKOFF
    assert backoff(2) == 2 * MIN_BACKOFF
    assert backoff(3) == 4 * MIN_BACKOFF
    assert backoff(100) == MAX_BACKOFF


def test_children_run_the_same_command_without_processes() -> None:
    argv = child_argv(["worker", "--processes", "3", "--queues", "a,b", "--processes=2", "--burst"])
    assert argv == [sys.executable, "-m", "onward", "worker", "--queues", "a,b", "--burst"]


def test_processes_must_be_positive(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onward", "worker", "--processes", "0", "--burst"],
        env=subprocess_env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--processes" in result.stderr
