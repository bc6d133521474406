"""Recycling worker processes under ``--processes`` (API §5, §7): a child that ran
``--max-jobs-per-child`` jobs, grew past ``--max-memory-per-child`` or left a timed-out
job's thread behind is replaced gracefully, without losing or repeating a job, on both
stores, with real worker processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs_reliability import Grows, HangsFirstTime, Pid
from onward import Store

Start = Callable[..., subprocess.Popen[str]]


def finished(proc: subprocess.Popen[str], tmp_path: Path) -> str:
    """Wait for a burst to end cleanly; returns the output."""
    status = proc.wait(120)
    log = (tmp_path / "workers.log").read_text()
    assert status == 0, log[-3000:]
    return log


def test_a_child_that_ran_max_jobs_is_replaced_and_no_job_is_lost_or_repeated(
    workers: Start, tmp_path: Path, store: Store
) -> None:
    handles = Pid.perform_all_later([() for _ in range(20)])
    log = finished(workers("--processes", "2", "--burst", "--max-jobs-per-child", "5"), tmp_path)
    records = [h.refresh() for h in handles]
    assert {(r.state, r.attempts) for r in records} == {("succeeded", 1)}  # nothing lost, nothing ran twice
    pids = {r.result for r in records}
    assert len(pids) >= 4  # 20 jobs, at most 5 per process
    assert log.count("replaced by a fresh one") >= 2
    assert "crash" not in log


@pytest.mark.slow  # about 15 s: processes that grow, one after the other
def test_a_child_that_grew_past_max_memory_is_replaced(workers: Start, tmp_path: Path, store: Store) -> None:
    handles = Grows.perform_all_later([(40,) for _ in range(6)])
    log = finished(workers("--processes", "2", "--burst", "--max-memory-per-child", "100"), tmp_path)
    records = [h.refresh() for h in handles]
    assert {(r.state, r.attempts) for r in records} == {("succeeded", 1)}
    assert len({r.result for r in records}) >= 3  # 240 MB in all: no process kept much more than 100
    assert "--max-memory-per-child 100" in log
    assert "replaced by a fresh one" in log


def test_a_child_left_with_a_timed_out_jobs_thread_is_replaced(workers: Start, tmp_path: Path, store: Store) -> None:
    handle = HangsFirstTime.perform_later(str(tmp_path))
    log = finished(workers("--processes", "2", "--burst"), tmp_path)
    record = handle.refresh()
    assert (record.state, record.attempts, record.result) == ("succeeded", 2, 2)
    assert record.error is not None
    assert "onward.JobTimeout" in record.error
    [first] = tmp_path.glob("started-1-*")
    stuck_pid = int(first.name.rsplit("-", 1)[1])
    assert f"job {handle.id} timed out and its thread cannot be stopped" in log
    assert "replaced by a fresh one" in log
    started = [int(line.rsplit("(pid ", 1)[1].rstrip(")")) for line in log.splitlines() if "started (pid" in line]
    assert stuck_pid in started
    assert len(started) == 3  # the two children, and the one that replaced the stuck child


def test_recycling_options_need_processes(tmp_path: Path, subprocess_env: dict[str, str], store: Store) -> None:
    for option in ("--max-jobs-per-child", "--max-memory-per-child"):
        done = subprocess.run(
            [sys.executable, "-m", "onward", "worker", option, "5", "--burst", "--database-url", store.url],
            env=subprocess_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2
        assert "need --processes" in done.stderr


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_recycling_options_are_checked(value: str, subprocess_env: dict[str, str], store: Store) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "onward", "worker", "--processes", "2", "--max-jobs-per-child", value,
         "--database-url", store.url],
        env=subprocess_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--max-jobs-per-child" in done.stderr
