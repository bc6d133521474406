"""API §10 on each store, through ``run_schedules`` and the scheduler duty: one job per tick,
missed ticks, overlap, pausing, and what operators see."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import onward
import rawsql
from jobs_limits import Capped
from jobs_schedules import HoldUntilFile, Keyed, Tick
from onward import Store, Worker, schedules
from onward.admin import Admin, ScheduleNotFound
from onward.duties.scheduler import Scheduler
from onward.stores.base import JobFilter
from onward.testing import drain, run_schedules

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # a whole minute


def jobs_of(store: Store, key: str) -> list[onward.JobRecord]:
    return list(reversed(store.list_jobs(JobFilter(schedule_key=key, limit=5000))))


def ticks_of(store: Store, key: str) -> list[datetime]:
    return [j.scheduled_for for j in jobs_of(store, key) if j.scheduled_for is not None]


def test_a_tick_job_carries_its_class_limits(store: Store) -> None:
    onward.schedule("capped", Capped, every=60, args=(1, "acme"))
    run_schedules(T0 + timedelta(seconds=30))
    [handle] = run_schedules(T0 + timedelta(seconds=61))
    record = handle.refresh()
    assert record.limit_key == "account:acme" == Capped.perform_later(2, "acme").refresh().limit_key


def test_a_new_schedule_starts_after_it_is_first_seen_and_each_tick_enqueues_one_job(store: Store) -> None:
    onward.schedule("minutely", Tick, every=60, args=("x",), kwargs={"n": 2}, queue="ticks", priority=-3)
    assert run_schedules(T0 + timedelta(seconds=30)) == []  # first seen: never backfills
    [handle] = run_schedules(T0 + timedelta(seconds=61))
    assert run_schedules(T0 + timedelta(seconds=61)) == []  # the same tick never twice
    assert run_schedules(T0 + timedelta(seconds=100)) == []
    record = handle.refresh()
    assert (record.schedule_key, record.scheduled_for) == ("minutely", T0 + timedelta(minutes=1))
    assert (record.job_class, record.args, record.kwargs) == ("jobs_schedules:Tick", ["x"], {"n": 2})
    assert (record.queue, record.priority, record.state) == ("ticks", -3, "enqueued")
    assert record.scheduled_at == T0 + timedelta(minutes=1)  # due at its tick
    assert drain() == 1
    assert handle.refresh().result == "2024-05-01T12:01:00+00:00"  # self.scheduled_for, in UTC
    plain = Tick.perform_later()
    assert drain() == 1
    assert plain.refresh().result is None  # not enqueued by a schedule
    assert plain.refresh().schedule_key is None


@pytest.mark.parametrize(
    ("missed", "expected"),
    [
        ("latest", [T0 + timedelta(minutes=10)]),
        ("all", [T0 + timedelta(minutes=m) for m in range(1, 11)]),
        ("skip", []),
    ],
)
def test_ticks_missed_while_no_worker_ran_the_schedule_follow_its_missed_policy(
    store: Store, missed: str, expected: list[datetime]
) -> None:
    onward.schedule("report", Tick, every=60, missed=missed, overlap=True)
    run_schedules(T0)
    handles = run_schedules(T0 + timedelta(minutes=10, seconds=5))  # ten ticks came due meanwhile
    assert [h.refresh().scheduled_for for h in handles] == expected
    assert ticks_of(store, "report") == expected
    # None of them comes back; the next tick is enqueued as usual.
    assert [h.refresh().scheduled_for for h in run_schedules(T0 + timedelta(minutes=11))] == [
        T0 + timedelta(minutes=11)
    ]


@pytest.mark.parametrize("missed", ["latest", "all", "skip"])
def test_a_single_due_tick_is_enqueued_whatever_the_missed_policy(store: Store, missed: str) -> None:
    onward.schedule("report", Tick, every=60, missed=missed)
    run_schedules(T0)
    assert [h.refresh().scheduled_for for h in run_schedules(T0 + timedelta(seconds=90))] == [T0 + timedelta(minutes=1)]


def test_missed_all_enqueues_the_most_recent_thousand_oldest_first(store: Store) -> None:
    onward.schedule("fast", Tick, every=1, missed="all", overlap=True)
    run_schedules(T0)
    handles = run_schedules(T0 + timedelta(seconds=1500))
    ticks = [h.refresh().scheduled_for for h in handles]
    assert len(ticks) == 1000
    assert ticks[0] == T0 + timedelta(seconds=501)
    assert ticks[-1] == T0 + timedelta(seconds=1500)
    assert ticks == sorted(ticks)
    # the store keeps a bounded history of ticks per schedule
    kept = rawsql.execute(store, "SELECT count(*) FROM onward_schedule_ticks WHERE schedule_key = ?", ("fast",))
    assert kept[0][0] <= 101


def test_overlap_false_records_a_tick_as_skipped_while_the_previous_job_is_enqueued(store: Store) -> None:
    onward.schedule("sync", Tick, every=60)
    run_schedules(T0)
    [first] = run_schedules(T0 + timedelta(minutes=1))
    assert run_schedules(T0 + timedelta(minutes=2)) == []  # the first job has not run yet
    [view] = Admin(store).schedules()
    assert view.last_tick == T0 + timedelta(minutes=2)
    assert view.record.last_tick_skipped
    assert (view.last_job_id, view.last_job_state) == (first.id, "enqueued")
    query = "SELECT job_id, skipped FROM onward_schedule_ticks WHERE schedule_key = 'sync' AND skipped IS NOT NULL"
    assert rawsql.execute(store, query) == [(None, "overlap")]
    assert drain() == 1
    [third] = run_schedules(T0 + timedelta(minutes=3))
    assert third.refresh().scheduled_for == T0 + timedelta(minutes=3)
    assert ticks_of(store, "sync") == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)]


def test_overlap_false_skips_a_tick_while_the_previous_job_runs_and_overlap_true_does_not(
    store: Store, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    onward.schedule("hold", HoldUntilFile, every=60, args=(str(release),))
    onward.schedule("hold-overlapping", HoldUntilFile, every=60, args=(str(release),), overlap=True)
    run_schedules(T0)
    first = run_schedules(T0 + timedelta(minutes=1))
    assert len(first) == 2
    worker = Worker(concurrency=2, store=store, lease_timeout=10, schedules=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while any(h.refresh().state != "running" for h in first):
            assert time.monotonic() < deadline, "the first jobs never started"
            time.sleep(0.01)
        second = run_schedules(T0 + timedelta(minutes=2))
        assert [h.refresh().schedule_key for h in second] == ["hold-overlapping"]
        release.write_text("go")
        for h in first + second:
            assert h.wait(timeout=60).state == "succeeded"
    finally:
        worker.stop()
        thread.join(30)
    assert ticks_of(store, "hold") == [T0 + timedelta(minutes=1)]
    assert ticks_of(store, "hold-overlapping") == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]


def test_a_unique_job_still_live_is_named_by_the_next_tick_instead_of_a_new_job(store: Store) -> None:
    onward.schedule("keyed", Keyed, every=60, args=("a",), overlap=True)
    run_schedules(T0)
    [first] = run_schedules(T0 + timedelta(minutes=1))
    [second] = run_schedules(T0 + timedelta(minutes=2))
    assert second.id == first.id  # the job with that unique key
    # The second tick is recorded as naming that job.
    query = "SELECT job_id FROM onward_schedule_ticks WHERE schedule_key = 'keyed' ORDER BY tick DESC LIMIT 1"
    assert rawsql.execute(store, query) == [(first.id,)]
    assert len(jobs_of(store, "keyed")) == 1


def test_schedulers_racing_over_the_same_ticks_enqueue_each_tick_exactly_once(store: Store) -> None:
    for i in range(5):
        onward.schedule(f"race-{i}", Tick, every=1, overlap=True, missed="all")
    run_schedules(T0)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def racer() -> None:
        try:
            barrier.wait(30)
            for second in range(1, 31):
                run_schedules(T0 + timedelta(seconds=second))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    for i in range(5):
        ticks = ticks_of(store, f"race-{i}")
        counts = Counter(ticks)
        assert max(counts.values()) == 1, f"race-{i}: a tick enqueued twice"
        assert sorted(counts) == [T0 + timedelta(seconds=s) for s in range(1, 31)], f"race-{i}: a tick missing"


def test_a_paused_schedule_enqueues_nothing_and_resumes_without_backfill(store: Store) -> None:
    onward.schedule("paused", Tick, every=1, missed="all", overlap=True)
    ops = Admin(store)
    start = datetime.now(UTC)
    run_schedules(start)
    assert ops.pause_schedule("paused").paused
    assert run_schedules(start + timedelta(seconds=5)) == []
    assert ops.schedule("paused").next_tick is None
    time.sleep(2.5)  # time passes while it is paused: these ticks must never be enqueued
    resumed = ops.resume_schedule("paused")
    resumed_at = datetime.now(UTC)
    assert not resumed.paused
    assert resumed.next_tick is not None
    assert resumed.next_tick > resumed_at - timedelta(seconds=1)
    run_schedules(resumed_at + timedelta(seconds=3))
    ticks = ticks_of(store, "paused")
    assert ticks, "no tick after resuming"
    assert min(ticks) > resumed_at - timedelta(seconds=1), "ticks of the paused time were enqueued"
    with pytest.raises(ScheduleNotFound, match="no schedule with key 'nope'"):
        ops.pause_schedule("nope")
    with pytest.raises(KeyError):
        ops.resume_schedule("nope")


def test_a_schedule_declared_again_with_new_settings_continues_from_its_last_tick(store: Store) -> None:
    onward.schedule("deploy", Tick, every=60)
    run_schedules(T0)
    run_schedules(T0 + timedelta(minutes=1))
    drain()
    schedules._forget("deploy")  # a new release of the application
    onward.schedule("deploy", Tick, every=30, args=("v2",))
    [handle] = run_schedules(T0 + timedelta(minutes=1, seconds=31))
    record = handle.refresh()
    assert (record.scheduled_for, record.args) == (T0 + timedelta(minutes=1, seconds=30), ["v2"])
    [view] = Admin(store).schedules()
    assert (view.record.every, view.expression, view.record.settings["args"]) == (30.0, "every 30s", ["v2"])


def test_operators_see_each_schedule_and_whether_a_live_worker_declares_it(store: Store) -> None:
    onward.schedule("nightly", Tick, cron="0 3 * * *", timezone="Europe/Paris", kwargs={"kind": "daily"})
    onward.schedule("ping", Tick, every=30)
    run_schedules(T0)
    ops = Admin(store)
    nightly, ping = ops.schedules()
    assert (nightly.key, nightly.job_class, nightly.expression) == (
        "nightly",
        "jobs_schedules:Tick",
        "0 3 * * * (Europe/Paris)",
    )
    assert nightly.next_tick == datetime(2024, 5, 2, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert nightly.record.settings == {
        "args": [], "kwargs": {"kind": "daily"}, "missed": "latest", "overlap": False, "queue": "default", "priority": 0
    }  # fmt: skip
    assert (ping.next_tick, ping.last_tick, ping.last_job_id, ping.paused) == (
        T0 + timedelta(seconds=30),
        None,
        None,
        False,
    )
    assert not nightly.live  # run_schedules is not a running worker
    scheduler = Scheduler("worker-1")
    ticked = scheduler.tick(store)  # a worker's scheduler, now: ticks came due since 2024; the latest is enqueued
    assert all(s.live and s.record.declared_by == "worker-1" for s in ops.schedules())
    scheduler.close(store)  # the worker stops
    assert not any(s.live for s in ops.schedules())
    [ping_job] = ops.jobs(schedule_key="ping").jobs
    assert [t.job_id for t in ticked if t.key == "ping"] == [ping_job.id]
    assert ping_job.scheduled_for is not None
    assert datetime.now(UTC) - timedelta(seconds=31) < ping_job.scheduled_for <= datetime.now(UTC)


def test_run_schedules_wants_an_aware_datetime(store: Store) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        run_schedules(datetime(2024, 1, 1))  # type: ignore[arg-type]
