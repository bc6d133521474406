"""Limits held by the store across worker processes (``--processes``), measured from the
start and end times the jobs record: never exceeded, fully used, other keys never delayed."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import onward
import waiting
from jobs_limits import Capped, Free, Lingering, SharedA, SharedB, SteppedCapped, Throttled
from onward import JobHandle, JobRecord
from onward.stores.base import Store
from onward.testing import interrupt_during_step

Spawn = Callable[..., subprocess.Popen[bytes]]


poll = functools.partial(waiting.poll, timeout=60.0, interval=0.02)


def _results(handles: Sequence[JobHandle], timeout: float = 90.0) -> list[JobRecord]:
    records = [h.wait(timeout=timeout) for h in handles]
    assert [str(r.state) for r in records] == ["succeeded"] * len(records), [r.error for r in records]
    return records


def _most_at_once(records: Sequence[JobRecord]) -> int:
    """The most jobs running at one moment (an end and a start at the same instant do not overlap)."""
    events = sorted([(r.result["start"], 1) for r in records] + [(r.result["end"], -1) for r in records])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def _idle_slot_time(records: Sequence[JobRecord], limit: int) -> float:
    """How long, between the first and the last start, fewer than ``limit`` jobs ran (every
    job was enqueued before the workers started, so some were always waiting)."""
    events = sorted([(r.result["start"], 1) for r in records] + [(r.result["end"], -1) for r in records])
    last_start = max(r.result["start"] for r in records)
    running, idle, previous = 0, 0.0, events[0][0]
    for at, change in events:
        if at > last_start:
            break
        if running < limit:
            idle += at - previous
        running += change
        previous = at
    return idle


def test_the_concurrency_limit_is_never_exceeded_and_fully_used(
    store: Store, spawn: Spawn, subprocess_env: dict[str, str]
) -> None:
    subprocess_env["ONWARD_TEST_HOLD"] = "0.3"  # each job runs 0.3 s
    a = Capped.perform_all_later([(i, "a") for i in range(12)])
    b = Capped.perform_all_later([(i, "b") for i in range(6)])
    procs = [spawn(store.url, "--burst", "--processes", "2", "--concurrency", "4") for _ in range(2)]
    records_a, records_b = _results(a), _results(b)
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    assert _most_at_once(records_a) == 2
    assert _most_at_once(records_b) == 2
    # Fully used: a slot freed is taken again at once. Handing a slot over takes a few
    # round trips to the store, longer on a loaded machine: allow a quarter of the slot time.
    span = max(r.result["end"] for r in records_a) - min(r.result["start"] for r in records_a)
    assert span < 12 * 0.3, span  # less than one job at a time would need
    assert _idle_slot_time(records_a, 2) < 0.25 * 2 * span, (_idle_slot_time(records_a, 2), span)
    assert all(r.attempts == 1 for r in records_a + records_b)  # held back: no attempt counted


def test_ten_thousand_held_jobs_do_not_delay_other_keys(store: Store, spawn: Spawn) -> None:
    held = Capped.set(priority=-1).perform_all_later([(i, "busy") for i in range(10_000)])  # ahead of the others
    others = Capped.perform_all_later([(i, f"k{i % 5}") for i in range(20)])
    free = Free.perform_all_later([(i,) for i in range(20)])
    started = time.monotonic()
    procs = [spawn(store.url, "--processes", "2", "--concurrency", "4", "--lease-timeout", "5") for _ in range(2)]
    records = _results(others + free, timeout=120)
    took = time.monotonic() - started
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)
    # 20 keyed jobs, 2 at once per key, 4 per key: two rounds of HOLD seconds; worker start-up
    # dominates. Behind the busy key they would wait 10,000 / 2 rounds (12 minutes).
    assert took < 60, took
    assert max(r.result["end"] for r in records) - min(r.result["start"] for r in records) < 15
    busy = [h.refresh() for h in held]
    assert sum(str(r.state) == "running" for r in busy) <= 2
    done = [r for r in busy if str(r.state) == "succeeded"]
    assert len(done) < 10_000
    assert _most_at_once(done) <= 2
    waiting = [r for r in busy if str(r.state) == "enqueued"]
    assert waiting
    assert all(r.attempts == 0 for r in waiting)


def test_a_throttle_lets_limit_jobs_start_per_sliding_window(store: Store, spawn: Spawn) -> None:
    handles = Throttled.perform_all_later([(i,) for i in range(9)])  # 3 per second
    proc = spawn(store.url, "--processes", "2", "--concurrency", "4")
    records = _results(handles, timeout=60)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    starts = sorted(r.result["start"] for r in records)
    # Counted when claimed: the starts of perform may lag their claims by a little.
    for i in range(len(starts) - 3):
        assert starts[i + 3] - starts[i] > 0.9, starts
    assert starts[-1] - starts[0] < 2 + 1.0, starts  # and used: three windows of one second


def test_two_classes_returning_the_same_key_share_its_count(store: Store, spawn: Spawn) -> None:
    handles = SharedA.perform_all_later([(i,) for i in range(4)]) + SharedB.perform_all_later([(i,) for i in range(4)])
    procs = [spawn(store.url, "--burst", "--processes", "2", "--concurrency", "4") for _ in range(2)]
    records = _results(handles)
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    assert _most_at_once(records) == 1
    assert {r.job_class.rsplit(":", 1)[1] for r in records} == {"SharedA", "SharedB"}


def host(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of a worker on machine ``name`` (its own journal directory)."""
    return {"ONWARD_JOURNAL_DIR": str(tmp_path / f"journals-{name}")}


def test_a_killed_workers_slot_frees_when_its_lease_expires(store: Store, spawn: Spawn, tmp_path: Path) -> None:
    until = tmp_path / "go"
    first = Lingering.perform_later(1, str(until))
    second = Lingering.perform_later(2, str(until))
    # Two journal directories stand for two machines: the next worker cannot read the dead
    # one's journal (which would free the slot at once), only its lease can expire.
    doomed = spawn(store.url, "--lease-timeout", "1.5", "--concurrency", "2", env=host(tmp_path, "a"))
    poll(lambda: "running" in {str(first.refresh().state), str(second.refresh().state)}, what="a job to run")
    running, waiting = (first, second) if str(first.refresh().state) == "running" else (second, first)
    time.sleep(0.3)  # (the worker would claim the other one now if the limit let it)
    assert str(waiting.refresh().state) == "enqueued"
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    killed_at = time.time()
    spawn(store.url, "--lease-timeout", "1.5", "--concurrency", "2", env=host(tmp_path, "b"))

    def running_again() -> bool:
        again = running.refresh()
        return str(waiting.refresh().state) == "running" or (str(again.state) == "running" and again.attempts > 1)

    poll(running_again, what="a job to take the slot")
    assert time.time() - killed_at > 1.0  # not before the dead worker's lease expired
    until.touch()
    assert _most_at_once(_results([first, second])) == 1


def test_an_interrupted_stepped_job_competes_again_for_its_slot(store: Store) -> None:
    handles = SteppedCapped.perform_all_later([(1, 5), (2, 5), (3, 5)])
    with interrupt_during_step(SteppedCapped, "items", cursor=2):
        onward.Worker(concurrency=4, lease_timeout=5).run(burst=True)
    records = _results(handles)
    assert _most_at_once(records) == 1
    assert sorted(r.resumptions for r in records) == [0, 0, 1]
    assert all(r.steps[0].cursor == 5 for r in records)
