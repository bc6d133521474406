"""Unique jobs: one live job per key; a failed latest job is re-run by its key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import jobs_steps as js
import onward
from onward.stores.base import JobFilter
from onward.testing import drain


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    js.reset()
    yield
    js.reset()


def all_jobs(store: onward.Store) -> list[onward.JobRecord]:
    return store.list_jobs(JobFilter(limit=1000))


def test_enqueued_key_returns_the_existing_job(store: onward.Store) -> None:
    first = js.Keyed.perform_later("k", 1)
    second = js.Keyed.perform_later("k", 2)
    assert second.id == first.id
    assert len(all_jobs(store)) == 1
    drain()
    assert js.events("keyed") == [("keyed", "k", 1)]


def test_running_key_returns_the_running_job(store: onward.Store) -> None:
    first = js.Keyed.perform_later("k", 1, "g")
    worker = js.BackgroundWorker(store, burst=True)
    js.gate("g").wait_reached()
    assert js.Keyed.perform_later("k", 2).id == first.id
    js.gate("g").open()
    worker.join()
    assert len(all_jobs(store)) == 1


def test_other_keys_and_no_key_are_independent(store: onward.Store) -> None:
    a = js.Keyed.perform_later("a")
    b = js.Keyed.perform_later("b")
    assert a.id != b.id
    assert js.Import.perform_later(1).id != js.Import.perform_later(1).id  # unique_key None


def test_succeeded_or_discarded_latest_job_means_a_new_job(store: onward.Store) -> None:
    first = js.Keyed.perform_later("k", 1)
    drain()
    second = js.Keyed.perform_later("k", 2)
    assert second.id != first.id
    drain()
    assert second.refresh().result == ["k", 2]


def test_failed_latest_job_is_rerun_with_its_id_and_arguments(store: onward.Store) -> None:
    first = js.UniqueImport.perform_later(5)
    assert js.UniqueImport.perform_later(5).id == first.id  # enqueued: deduplicated
    js.FAIL[2] = 10  # fails after progress, then twice without: all 3 attempts used
    drain()
    js.FAIL.clear()
    record = first.refresh()
    assert record.state == "failed"
    assert record.steps[1].cursor == 2
    resumptions = record.resumptions

    again = js.UniqueImport.perform_later(5, None, "other arguments are ignored")
    assert again.id == first.id
    record = again.refresh()
    assert record.state == "enqueued"
    assert record.attempts == 0  # attempts start again
    assert record.resumptions == resumptions  # resumptions are kept
    assert record.args == [5]  # the original arguments
    drain()
    record = again.refresh()
    assert record.state == "succeeded"
    assert record.attempts == 1
    assert js.events("initialize") == [("initialize",)]  # completed step skipped
    assert js.items() == [0, 1, 2, 3, 4]  # the step in progress resumed at its cursor


def test_fresh_starts_a_new_job_after_a_failure(store: onward.Store) -> None:
    js.FAIL[0] = 10
    first = js.UniqueImport.perform_later(3)
    drain()
    assert first.refresh().state == "failed"
    js.FAIL.clear()
    fresh = js.UniqueImport.set(fresh=True).perform_later(3)
    assert fresh.id != first.id
    drain()
    assert fresh.refresh().state == "succeeded"
    assert first.refresh().state == "failed"


def test_seed_fails_midway_then_perform_now_again_resumes(store: onward.Store) -> None:
    # "First attempt: fails midway"
    js.FAIL[3] = 1
    with pytest.raises(RuntimeError, match="item 3"):
        js.UniqueImport.perform_now(6)
    # "Verify checkpoint was saved"
    [record] = all_jobs(store)
    assert record.state == "failed"
    assert record.steps[1].cursor == 3  # the last processed item was 2
    # "Second attempt: resumes from checkpoint"
    assert js.UniqueImport.perform_now(6) == 6
    record = record.refresh()
    assert record.state == "succeeded"
    assert record.attempts == 1
    assert len(all_jobs(store)) == 2  # the job and its continuation: no second job
    assert js.items() == [0, 1, 2, 3, 4, 5]
    assert js.events("initialize") == [("initialize",)]


def test_perform_now_runs_an_enqueued_job_with_its_own_arguments(store: onward.Store) -> None:
    handle = js.Keyed.set(queue="elsewhere", priority=7).perform_later("k", 1)
    assert js.Keyed.perform_now("k", 2) == ["k", 1]
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.queue, record.priority) == ("elsewhere", 7)
    assert len(all_jobs(store)) == 1
    assert drain() == 0


def test_perform_now_with_a_running_key_raises(store: onward.Store) -> None:
    js.Keyed.perform_later("k", 1, "g")
    worker = js.BackgroundWorker(store, burst=True)
    js.gate("g").wait_reached()
    try:
        with pytest.raises(onward.OnwardError, match="'k'"):
            js.Keyed.perform_now("k", 2)
    finally:
        js.gate("g").open()
        worker.join()
    assert js.events("keyed") == [("keyed", "k", 1)]


def test_unique_children_are_deduplicated_when_the_parent_commits(store: onward.Store) -> None:
    existing = js.Keyed.perform_later("child-key", 0)
    parent = js.Parent.set(queue="parents").perform_later("child-key")
    assert drain(queues=["parents"]) == 1  # the parent alone; its children stay enqueued
    [(_, first, second)] = js.events("handles")
    assert first.id == existing.id  # the handle names the job that exists
    assert second.id == existing.id
    assert parent.refresh().children == ()  # no new child was added
    assert existing.refresh().state == "enqueued"


def test_unique_children_of_one_parent_are_deduplicated_among_themselves(store: onward.Store) -> None:
    parent = js.Parent.set(queue="parents").perform_later("fresh-key")
    assert drain(queues=["parents"]) == 1
    [(_, first, second)] = js.events("handles")
    assert first.id == second.id
    assert parent.refresh().children == (first.id,)
    assert first.refresh().args == ["fresh-key", 1]
    assert first.refresh().parent_id == parent.id


def test_perform_now_with_fresh_starts_a_new_job_after_a_failure(store: onward.Store) -> None:
    js.FAIL[1] = 1
    with pytest.raises(RuntimeError):
        js.UniqueImport.perform_now(3)
    [failed] = all_jobs(store)
    assert js.UniqueImport.set(fresh=True).perform_now(3) == 3
    jobs = [r for r in all_jobs(store) if r.job_class.endswith(":UniqueImport")]
    assert len(jobs) == 2
    assert failed.refresh().state == "failed"
    assert js.items() == [0, 0, 1, 2]  # the fresh job started from the beginning
