"""API §10 with real ``onward worker`` processes on each store: many workers and process groups
running the same schedules, a downtime under each missed policy, overlap, a worker killed
right after a tick, pausing and resuming from the command line."""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import rawsql
import waiting
from onward import Store
from onward.admin import Admin
from onward.stores.base import JobFilter
from onward.testing import drain

Spawn = Callable[..., subprocess.Popen[bytes]]


poll = functools.partial(waiting.poll, timeout=90.0, interval=0.05)


@pytest.fixture
def spawn(tmp_path: Path, subprocess_env: dict[str, str], store_url: str) -> Iterator[Spawn]:
    """Start ``onward worker --import schedules_app`` with the schedules given (as
    ``onward.schedule`` keyword arguments); output to files; killed after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(declared: list[dict[str, Any]], *args: str) -> subprocess.Popen[bytes]:
        env = {**subprocess_env, "ONWARD_TEST_SCHEDULES": json.dumps(declared)}
        command = [sys.executable, "-m", "onward", "worker", "--import", "schedules_app", "--database-url", store_url]
        with open(tmp_path / f"worker-{len(procs)}.log", "wb") as out:
            proc = subprocess.Popen([*command, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for i, proc in enumerate(procs):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print(f"--- worker {i} exited {proc.returncode}")
        print((tmp_path / f"worker-{i}.log").read_text(errors="replace")[-3000:])


def log_of(tmp_path: Path, index: int) -> str:
    return (tmp_path / f"worker-{index}.log").read_text(errors="replace")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(60) == 0


def ticks_of(store: Store, key: str) -> list[datetime]:
    jobs = store.list_jobs(JobFilter(schedule_key=key, limit=10_000))
    return sorted(j.scheduled_for for j in jobs if j.scheduled_for is not None)


def whole_seconds(ticks: list[datetime]) -> list[int]:
    return [int(t.timestamp()) for t in ticks]


def gaps(ticks: list[datetime]) -> list[int]:
    """The missing seconds between consecutive ticks of an ``every=1`` schedule."""
    seconds = whole_seconds(ticks)
    return [b - a - 1 for a, b in itertools.pairwise(seconds) if b - a > 1]


def test_many_workers_and_process_groups_enqueue_each_tick_exactly_once(store: Store, spawn: Spawn) -> None:
    declared = [
        {"key": "every-second", "job": "Tick", "every": 1, "overlap": True},
        {"key": "every-second-no-overlap", "job": "Tick", "every": 1},
    ]
    workers = [spawn(declared) for _ in range(3)]
    workers += [spawn(declared, "--processes", "2") for _ in range(2)]
    poll(lambda: len(ticks_of(store, "every-second")) >= 2, what="the first ticks")
    started = whole_seconds(ticks_of(store, "every-second"))[-1]
    poll(lambda: whole_seconds(ticks_of(store, "every-second"))[-1] >= started + 6, what="six more seconds of ticks")
    views = {v.key: v for v in Admin(store).schedules()}
    assert views["every-second"].live
    stop(*workers)

    ticks = ticks_of(store, "every-second")
    counts = Counter(ticks)
    assert max(counts.values()) == 1, f"ticks enqueued twice: {[t for t, n in counts.items() if n > 1]}"
    assert gaps(ticks) == [], f"ticks missing between {ticks[0]} and {ticks[-1]}"
    assert len(ticks) >= 8
    for tick in ticks:
        assert tick.microsecond == 0
    # Without overlap, a tick is either enqueued or recorded as skipped: once, and none missing.
    rows = rawsql.execute(
        store,
        "SELECT tick FROM onward_schedule_ticks WHERE schedule_key = ? AND skipped = 'overlap'",
        ("every-second-no-overlap",),
    )
    skipped = [int(r[0] if isinstance(r[0], float) else r[0].timestamp()) for r in rows]
    every = sorted(whole_seconds(ticks_of(store, "every-second-no-overlap")) + skipped)
    assert len(every) == len(set(every)), f"ticks both enqueued and skipped, or skipped twice: {every}"
    assert every == list(range(every[0], every[-1] + 1))
    # The jobs ran (those of the last ticks may have been enqueued as the workers stopped), and saw their tick.
    drain(queues=["default"])
    for job in store.list_jobs(JobFilter(schedule_key="every-second", limit=1000)):
        assert job.state == "succeeded", job
        assert job.scheduled_for is not None
        assert job.result == job.scheduled_for.isoformat()


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["latest", "all", "skip"])
def test_ticks_that_came_due_while_no_worker_ran_follow_the_missed_policy(
    store: Store, spawn: Spawn, tmp_path: Path, policy: str
) -> None:
    declared = [{"key": "report", "job": "Tick", "every": 1, "overlap": True, "missed": policy}]
    first = spawn(declared)
    poll(lambda: len(ticks_of(store, "report")) >= 2, what="ticks before the downtime")
    stop(first)
    before = ticks_of(store, "report")
    # The downtime: no worker runs the schedule for a few seconds.
    poll(lambda: datetime.now(UTC) > before[-1] + timedelta(seconds=4.5), what="the downtime", timeout=30)
    second = spawn(declared)
    poll(lambda: len(ticks_of(store, "report")) >= len(before) + 3, what="ticks after the downtime")
    stop(second)
    ticks = ticks_of(store, "report")
    assert max(Counter(ticks).values()) == 1
    assert ticks[: len(before)] == before
    holes = gaps(ticks)
    message = [line for line in log_of(tmp_path, 1).splitlines() if "came due while no worker ran it" in line]
    assert len(message) == 1, log_of(tmp_path, 1)
    if policy == "all":
        assert holes == []
        assert f"missed='all' enqueues {int(message[0].split(' ticks came due')[0].split()[-1])} of them" in message[0]
    elif policy == "latest":
        assert len(holes) == 1
        assert holes[0] >= 3
        assert "missed='latest' enqueues 1 of them" in message[0]
    else:
        assert len(holes) == 1
        assert holes[0] >= 4
        assert "missed='skip' enqueues 0 of them" in message[0]


def test_overlap_false_skips_ticks_while_the_previous_job_runs(store: Store, spawn: Spawn, tmp_path: Path) -> None:
    release = tmp_path / "release"
    declared = [{"key": "hold", "job": "HoldUntilFile", "every": 1, "args": [str(release)]}]
    worker = spawn(declared, "--concurrency", "2")
    poll(
        lambda: any(j.state == "running" for j in store.list_jobs(JobFilter(schedule_key="hold"))), what="a running job"
    )
    [running] = store.list_jobs(JobFilter(schedule_key="hold"))

    def skipped() -> int:
        query = "SELECT count(*) FROM onward_schedule_ticks WHERE schedule_key = 'hold' AND skipped = 'overlap'"
        return int(rawsql.execute(store, query)[0][0])

    poll(lambda: skipped() >= 2, what="ticks skipped while the job runs")
    assert [j.id for j in store.list_jobs(JobFilter(schedule_key="hold"))] == [running.id]
    view = Admin(store).schedule("hold")
    assert view.record.last_tick_skipped
    assert view.last_job_id == running.id
    release.write_text("go")
    poll(lambda: len(store.list_jobs(JobFilter(schedule_key="hold"))) >= 2, what="the next tick after the job ended")
    stop(worker)
    assert store.get(running.id).state == "succeeded"


@pytest.mark.slow
def test_a_worker_killed_right_after_a_tick_leaves_that_tick_with_one_job(store: Store, spawn: Spawn) -> None:
    declared = [{"key": "every-second", "job": "Tick", "every": 1, "overlap": True}]
    first = spawn(declared, "--lease-timeout", "1")
    poll(lambda: len(ticks_of(store, "every-second")) >= 1, what="a first tick")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    killed_after = ticks_of(store, "every-second")[-1]
    second = spawn(declared, "--lease-timeout", "1")
    poll(lambda: len(ticks_of(store, "every-second")) >= 4, what="ticks from the second worker")
    poll(
        lambda: all(j.state == "succeeded" for j in store.list_jobs(JobFilter(schedule_key="every-second"))),
        what="every tick's job to run",
    )
    stop(second)
    ticks = ticks_of(store, "every-second")
    assert max(Counter(ticks).values()) == 1
    assert ticks.count(killed_after) == 1


@pytest.mark.slow
def test_pausing_from_the_command_line_stops_ticks_and_resuming_does_not_backfill(
    store: Store, spawn: Spawn, store_url: str, subprocess_env: dict[str, str]
) -> None:
    declared = [{"key": "paused", "job": "Tick", "every": 1, "overlap": True, "missed": "all"}]
    worker = spawn(declared)
    poll(lambda: len(ticks_of(store, "paused")) >= 2, what="ticks before pausing")

    def onward(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "onward", "schedules", *args, "--database-url", store_url]
        return subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=60, check=False)

    done = onward("pause", "paused")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Schedule 'paused' is paused."
    paused_at = datetime.now(UTC)
    listing = onward()
    assert "paused" in listing.stdout
    assert "live" in listing.stdout
    poll(lambda: datetime.now(UTC) > paused_at + timedelta(seconds=3), what="time to pass", timeout=30)
    assert [t for t in ticks_of(store, "paused") if t > paused_at + timedelta(seconds=1)] == []
    done = onward("resume", "paused")
    assert done.returncode == 0, done.stderr
    resumed_at = datetime.now(UTC)
    poll(lambda: ticks_of(store, "paused")[-1] > resumed_at, what="ticks after resuming")
    stop(worker)
    during = [
        t for t in ticks_of(store, "paused") if paused_at + timedelta(seconds=1) < t < resumed_at - timedelta(seconds=1)
    ]
    assert during == [], "ticks of the paused time were enqueued"
    unknown = onward("pause", "no-such-schedule")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "Error: no schedule with key 'no-such-schedule'"


def test_a_worker_started_with_no_schedules_runs_none(
    store: Store, store_url: str, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "ONWARD_TEST_SCHEDULES": json.dumps([{"key": "k", "job": "Tick", "every": 1}])}
    command = [sys.executable, "-m", "onward", "worker", "--import", "schedules_app", "--database-url", store_url]
    done = subprocess.run([*command, "--burst", "--no-schedules"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert store.list_schedules() == []
    done = subprocess.run([*command, "--burst"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [s.key for s in store.list_schedules()] == ["k"]
    assert os.environ.get("ONWARD_TEST_SCHEDULES") is None  # the test process declares nothing
