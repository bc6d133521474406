"""API §2: perform_now runs the job in the caller, recorded in the store like any job."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import onward
from jobs_core import (
    Add,
    AsyncAdd,
    AsyncParent,
    Child,
    Counted,
    Discards,
    Fails,
    Parent,
    SeesOwnRecord,
    StepThenFail,
    WaitsForHeartbeat,
    YieldsOften,
)
from onward import Store, perform_now, stores
from onward.stores.base import JobFilter
from onward.testing import drain, interrupt_during_step


def only_job(store: Store, cls: type[onward.Job]) -> onward.JobRecord:
    [record] = store.list_jobs(JobFilter(job_class=f"jobs_core:{cls.__qualname__}"))
    return record


def test_perform_now_returns_perform_s_result_and_records_the_job(store: Store) -> None:
    assert Add.perform_now(2, 3) == 5
    record = only_job(store, Add)
    assert record.state == "succeeded"
    assert record.result == 5
    assert record.args == [2, 3]
    assert record.attempts == 1
    assert record.started_at is not None
    assert record.finished_at is not None


def test_the_record_is_running_and_owned_by_the_caller_while_it_runs(store: Store) -> None:
    seen = SeesOwnRecord.perform_now()
    assert seen["state"] == "running"
    assert seen["worker_id"]  # the caller holds the lease


def test_the_caller_renews_the_lease_like_a_worker(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perform_now, "PERFORM_NOW_LEASE", 0.3)  # renewed every 0.1 s
    assert WaitsForHeartbeat.perform_now() is True
    assert store.reap_expired() == 0
    record = only_job(store, WaitsForHeartbeat)
    assert (record.state, record.attempts) == ("succeeded", 1)


def test_steps_checkpoint_under_perform_now(store: Store) -> None:
    assert Counted.perform_now(4) == 4
    record = only_job(store, Counted)
    steps = [(s.name, s.status, s.cursor, s.advanced, s.total) for s in record.steps]
    assert steps == [("count", "completed", 4, 4, 4)]
    assert record.job_state == {"count": 4}


def test_continuations_are_enqueued_on_success(store: Store) -> None:
    assert Parent.perform_now(2) == {"n": 2, "paid": True}
    parent = only_job(store, Parent)
    assert len(parent.children) == 2
    children = [store.get(child_id) for child_id in parent.children]
    assert [c.args for c in children] == [["first-2"], ["second-2"]]
    assert all(c.state == "enqueued" and c.parent_id == parent.id for c in children)
    assert parent.job_state["handles"] == list(parent.children)


def test_async_jobs_and_async_continuations_run_under_perform_now(store: Store) -> None:
    assert AsyncAdd.perform_now(20, 22) == 42
    assert AsyncParent.perform_now(7) == 7
    parent = only_job(store, AsyncParent)
    assert [store.get(c).args for c in parent.children] == [["async-7"]]


def test_perform_now_of_an_async_job_from_inside_a_running_event_loop(store: Store) -> None:
    async def main() -> int:
        asyncio.get_running_loop()  # we are inside a running loop
        result: int = AsyncAdd.perform_now(1, 1)
        return result

    # A thread of its own, so that no event loop left running in the main thread by
    # another test's tooling gets in the way of asyncio.run.
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(main())))
    thread.start()
    thread.join(30)
    assert results == [2]


def test_an_exception_marks_the_job_failed_and_propagates_without_retry(store: Store) -> None:
    with pytest.raises(ValueError, match="boom"):
        Fails.perform_now()  # its policy allows three attempts: perform_now never retries
    record = only_job(store, Fails)
    assert record.state == "failed"
    assert record.attempts == 1
    assert (record.error or "").splitlines()[-1] == "builtins.ValueError: boom"
    assert drain() == 0  # nothing was left to retry in the background


def test_a_discard_on_exception_marks_the_job_discarded_and_propagates(store: Store) -> None:
    with pytest.raises(KeyError):
        Discards.perform_now()
    assert only_job(store, Discards).state == "discarded"


def test_progress_is_kept_when_perform_now_fails(store: Store) -> None:
    with pytest.raises(ConnectionError, match="at 3"):
        StepThenFail.perform_now()
    record = only_job(store, StepThenFail)
    assert record.state == "failed"
    assert [(s.name, s.status, s.cursor) for s in record.steps] == [("a", "completed", None), ("b", "interrupted", 3)]
    assert record.job_state == {"a_runs": 1, "b_starts": [None]}


def test_an_interruption_inside_perform_now_resumes_in_place(store: Store) -> None:
    with interrupt_during_step(Counted, "count", cursor=2):
        assert Counted.perform_now(5) == 5
    record = only_job(store, Counted)
    assert record.state == "succeeded"
    assert record.resumptions == 1
    assert record.attempts == 1
    assert record.job_state == {"count": 5}  # nothing ran twice
    assert record.steps[0].advanced == 5


def test_max_run_time_inside_perform_now_resumes_in_place(store: Store) -> None:
    assert YieldsOften.perform_now() == [0, 1, 2]  # each step in an execution of its own
    record = only_job(store, YieldsOften)
    assert (record.state, record.attempts, record.resumptions) == ("succeeded", 1, 2)


def test_a_job_run_by_perform_now_is_not_picked_up_again_by_a_worker(store: Store) -> None:
    Add.perform_now(1, 2)
    assert drain() == 0
    assert only_job(store, Add).attempts == 1


@pytest.fixture
def no_default_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No store connected and no ONWARD_DATABASE_URL; the current directory is ``tmp_path``."""
    monkeypatch.delenv("ONWARD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    previous = stores.set_default(None)
    try:
        yield tmp_path
    finally:
        created = stores.set_default(previous)
        if created is not None:
            created.close()


def test_with_no_store_connected_perform_now_creates_onward_sqlite3_in_the_current_directory(
    no_default_store: Path,
) -> None:
    assert Add.perform_now(4, 5) == 9
    assert (no_default_store / "onward.sqlite3").exists()
    record = only_job(stores.default(), Add)
    assert record.result == 9


def test_with_no_store_connected_perform_later_uses_the_same_default(no_default_store: Path) -> None:
    handle = Child.perform_later("x")
    assert (no_default_store / "onward.sqlite3").exists()
    assert handle.store is stores.current()
