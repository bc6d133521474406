"""A worker process that dies under ``--processes`` costs only the job it was running, and
its jobs are taken over as soon as the supervisor sees it die (not when their leases
expire), on both stores, with real worker processes."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import waiting
from jobs_reliability import Hangs, Segfaults, Short
from onward import Store, lifecycle

poll = functools.partial(waiting.poll, timeout=60.0, interval=0.005)


def test_a_segfault_costs_only_the_job_that_crashed(
    workers: Callable[..., subprocess.Popen[str]], tmp_path: Path, store: Store
) -> None:
    shorts = [Short.perform_later(n, str(tmp_path)) for n in range(100)]
    crashing = Segfaults.perform_later(str(tmp_path))
    shorts += [Short.perform_later(n, str(tmp_path)) for n in range(100, 200)]
    proc = workers("--processes", "2", "--burst")
    assert proc.wait(120) == 0, (tmp_path / "workers.log").read_text()[-3000:]
    log = (tmp_path / "workers.log").read_text()
    assert "killed by signal 11" in log  # the crash did happen, in a worker process

    record = crashing.refresh()
    assert (record.state, record.attempts) == ("succeeded", 2)  # only this job lost an attempt
    assert record.error == lifecycle.PROCESS_DIED_ERROR
    assert Path(tmp_path, "segfault-1").exists()
    assert Path(tmp_path, "segfault-2").exists()
    runs: Counter[int] = Counter()
    for path in tmp_path.glob("ran-*"):
        runs.update(int(line) for line in path.read_text().split())
    assert sorted(runs) == list(range(200))
    assert [n for n, count in runs.items() if count > 1] == []  # no other job ran twice
    states = Counter((h.refresh().state, h.refresh().attempts) for h in shorts)
    assert states == {("succeeded", 1): 200}


def test_a_killed_childs_jobs_are_taken_over_within_a_second_or_two(
    workers: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
    store: Store,
    record_property: Callable[[str, object], None],
) -> None:
    handle = Hangs.perform_later(str(tmp_path))
    workers("--processes", "2")  # the default 30 s lease: only a takeover can be this quick
    poll(lambda: Path(tmp_path, "started-1").exists(), what="the job to start")
    pid = int(Path(tmp_path, "started-1").read_text())
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    poll(lambda: Path(tmp_path, "started-2").exists(), timeout=20, what="the job to be taken over")
    taken_over_in = time.monotonic() - killed
    record_property("taken_over_s", round(taken_over_in, 3))  # in the JUnit report (--junitxml)
    assert taken_over_in < 2.0, f"taken over {taken_over_in:.2f} s after the kill"
    assert int(Path(tmp_path, "started-2").read_text()) != pid
    Path(tmp_path, "go").touch()
    record = handle.wait(30)
    assert (record.state, record.attempts, record.result) == ("succeeded", 2, 2)
    assert record.error == lifecycle.PROCESS_DIED_ERROR


def test_without_a_supervisor_the_next_worker_on_the_machine_takes_over_at_once(
    workers: Callable[..., subprocess.Popen[str]], tmp_path: Path, store: Store
) -> None:
    shorts = [Short.perform_later(n, str(tmp_path)) for n in range(60)]
    crashing = Segfaults.perform_later(str(tmp_path))
    shorts += [Short.perform_later(n, str(tmp_path)) for n in range(60, 120)]
    first = workers()  # one plain worker process, default 30 s lease; it dies in the segfault
    assert first.wait(60) == -signal.SIGSEGV
    second = workers("--burst")  # finds the dead process's journal at start: no lease to wait for
    assert second.wait(60) == 0
    record = crashing.refresh()
    assert (record.state, record.attempts, record.error) == ("succeeded", 2, lifecycle.PROCESS_DIED_ERROR)
    runs: Counter[int] = Counter()
    for path in tmp_path.glob("ran-*"):
        runs.update(int(line) for line in path.read_text().split())
    assert sorted(runs) == list(range(120))
    assert [n for n, count in runs.items() if count > 1] == []
    assert Counter((h.refresh().state, h.refresh().attempts) for h in shorts) == {("succeeded", 1): 120}
