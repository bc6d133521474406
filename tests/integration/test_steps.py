"""Steps: replay on resume, cursors, durability, ``self.state``, progress and step errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

import jobs_steps as js
import onward
from onward import stores
from onward.testing import drain, interrupt_after_step, interrupt_during_step


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    js.reset()
    yield
    js.reset()


@pytest.fixture
def other(store: onward.Store) -> Iterator[onward.Store]:
    """A second connection to the same store, as another process would have."""
    second = stores.open_store(store.url)
    yield second
    second.close()


def test_steps_run_in_order_and_are_recorded(store: onward.Store) -> None:
    handle = js.Import.perform_later(3)
    assert drain() == 2  # the job and its continuation
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.result == 3
    assert [(s.name, s.status) for s in record.steps] == [
        ("initialize", "completed"),
        ("process", "completed"),
        ("finalize", "completed"),
    ]
    process = record.steps[1]
    assert (process.cursor, process.advanced, process.total) == (3, 3, 3)
    assert process.started_at is not None
    assert process.completed_at is not None
    assert process.started_at <= process.completed_at
    assert record.progress == 1.0
    assert js.items() == [0, 1, 2]
    assert js.events("finalize") == [("finalize",)]


def test_resume_skips_completed_steps_and_reenters_at_the_saved_cursor(store: onward.Store) -> None:
    handle = js.Import.perform_later(5)
    with interrupt_during_step(js.Import, "process", cursor=2):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (1, 1)
    assert js.events("initialize") == [("initialize",)]  # completed step skipped
    assert js.events("enter") == [("enter", None, False), ("enter", 2, True)]
    assert js.items() == [0, 1, 2, 3, 4]  # a graceful interruption repeats nothing
    assert js.events("outside") == [("outside", 1, 0), ("outside", 1, 1)]  # outside code runs every time
    assert record.job_state == {"count": 5}
    assert record.result == 5


def test_step_finished_between_executions_is_skipped(store: onward.Store) -> None:
    handle = js.Import.perform_later(2)
    with interrupt_after_step(js.Import, "process"):
        drain()
    assert handle.refresh().state == "succeeded"
    assert js.events("enter") == [("enter", None, False)]
    assert js.items() == [0, 1]
    assert js.events("finalize") == [("finalize",)]


@pytest.mark.parametrize(
    ("op", "cursors"),
    [
        ("advance_from_none", [None, 1, 2]),
        ("advance_from", [42, 1]),
        ("set_list", [[2, 17], {"page": "b", "row": 3}]),
    ],
)
def test_cursor_operations(store: onward.Store, op: str, cursors: list[object]) -> None:
    handle = js.Cursors.perform_later(op)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert [e[1] for e in js.events("cursor")] == cursors
    assert record.steps[0].cursor == cursors[-1]
    assert record.steps[0].advanced == len([c for c in cursors if c is not None])


@pytest.mark.parametrize("op", ["advance_string", "advance_from_float", "advance_bool"])
def test_advancing_a_cursor_without_successor_fails_at_once(store: onward.Store, op: str) -> None:
    handle = js.Cursors.perform_later(op)
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1  # not retried
    assert record.resumptions == 0  # nor resumed, although the cursor moved
    last = record.error.splitlines()[-1] if record.error else ""
    assert last.startswith("onward.UnadvanceableCursor:")
    assert "'s'" in last
    assert "set" in last


def test_a_cursor_that_cannot_be_stored_fails_at_set(store: onward.Store) -> None:
    handle = js.Cursors.perform_later("set_unserializable")
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    last = record.error.splitlines()[-1] if record.error else ""
    assert last.startswith("onward.SerializationError:")
    assert "set is not serializable" in last


@pytest.mark.parametrize(
    "cursor",
    [
        [3, "row-7"],
        {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "amount": Decimal("1.10"), "id": UUID(int=7)},
        "page-2",
        2**70,
    ],
)
def test_a_cursor_in_progress_is_saved_with_its_type(store: onward.Store, other: onward.Store, cursor: object) -> None:
    handle = js.TypedCursor.perform_later(cursor)
    worker = js.BackgroundWorker(store, burst=True)
    try:
        js.gate("g").wait_reached()
        record = other.get(handle.id)
        step = record.steps[1]
        assert (step.name, step.status, step.advanced, step.total) == ("typed", "running", 1, 7)
        assert step.cursor == cursor
        assert repr(step.cursor) == repr(cursor)  # the same types, not just equal values
        assert record.steps[0].status == "completed"
    finally:
        js.gate("g").open()
        worker.join()
    assert handle.refresh().steps[1].cursor == cursor


def test_start_is_the_first_cursor_and_the_saved_cursor_wins(store: onward.Store) -> None:
    handle = js.Started.perform_later(0)
    with interrupt_during_step(js.Started, "count", cursor=12):
        drain()
    assert handle.refresh().state == "succeeded"
    assert js.events("enter") == [("enter", 10, False), ("enter", 12, True)]
    assert js.items() == [10, 11, 12]


def test_state_is_saved_with_checkpoints_and_restored(store: onward.Store) -> None:
    handle = js.ImportEveryChange.perform_later(4)
    with interrupt_during_step(js.ImportEveryChange, "process", cursor=3):
        drain()
    record = handle.refresh()
    assert record.job_state == {"count": 4}  # built across two executions, exact
    assert record.result == 4


def test_every_change_is_durable_at_interval_zero(store: onward.Store, other: onward.Store) -> None:
    handle = js.ImportEveryChange.perform_later(5, 1, "g")
    worker = js.BackgroundWorker(store, burst=True)
    js.gate("g").wait_reached()
    record = other.get(handle.id)
    assert record.state == "running"
    step = record.steps[1]
    assert (step.name, step.status, step.cursor, step.advanced, step.total) == ("process", "running", 2, 2, 5)
    assert record.job_state == {"count": 2}
    assert record.progress == pytest.approx(0.4)
    js.gate("g").open()
    worker.join()
    assert other.get(handle.id).state == "succeeded"


def test_the_default_checkpoint_interval_is_one_second() -> None:
    assert onward.Job.checkpoint_interval == 1.0
    assert js.Import.checkpoint_interval == 1.0


def test_advances_within_the_interval_are_not_saved_until_a_checkpoint(
    store: onward.Store, other: onward.Store
) -> None:
    handle = js.ImportThrottled.perform_later(5, 1, "g")
    worker = js.BackgroundWorker(store, burst=True)
    js.gate("g").wait_reached()
    step = other.get(handle.id).steps[1]
    assert (step.status, step.cursor, step.advanced) == ("running", None, 0)  # saved at step start only
    js.gate("g").open()
    worker.join()
    assert other.get(handle.id).steps[1].cursor == 5  # saved on completion


def wait_for_cursor(store: onward.Store, job_id: str, cursor: object) -> onward.StepRecord:
    """Poll (with a deadline) until the step in progress shows ``cursor`` in ``store``."""
    deadline = time.monotonic() + 10
    while True:
        step = store.get(job_id).steps[-1]
        if step.cursor == cursor or time.monotonic() > deadline:
            return step
        time.sleep(0.005)


@pytest.mark.parametrize("job", [js.ImportShortInterval, js.AsyncImportShortInterval])
def test_an_advance_is_saved_when_the_interval_ends_even_if_the_job_stops_advancing(
    store: onward.Store, other: onward.Store, job: type[onward.Job]
) -> None:
    handle = job.perform_later(5, 1, "g")  # held at the gate after advancing past item 1
    worker = js.BackgroundWorker(store, burst=True)
    try:
        js.gate("g").wait_reached()
        step = wait_for_cursor(other, handle.id, 2)
        assert (step.name, step.status, step.cursor, step.advanced) == ("process", "running", 2, 2)
        assert other.get(handle.id).job_state == {"count": 2}
    finally:
        js.gate("g").open()
        worker.join()
    assert handle.refresh().state == "succeeded"


def test_checkpoint_forces_a_durable_save(store: onward.Store, other: onward.Store) -> None:
    handle = js.Checkpointing.perform_later()
    worker = js.BackgroundWorker(store, burst=True)
    js.gate("before").wait_reached()
    record = other.get(handle.id)
    assert record.steps[0].cursor is None
    assert record.job_state == {}
    js.gate("before").open()
    js.gate("after").wait_reached()
    record = other.get(handle.id)
    assert record.steps[0].cursor == "a"
    assert record.job_state == {"seen": ["a"]}
    js.gate("after").open()
    worker.join()
    assert other.get(handle.id).state == "succeeded"


def test_steps_show_interrupted_then_completed(store: onward.Store) -> None:
    handle = js.Import.perform_later(4, 1, "g")
    worker = js.BackgroundWorker(store)
    js.gate("g").wait_reached()
    worker.worker.stop()
    js.gate("g").open()
    worker.join()
    record = handle.refresh()
    assert record.state == "enqueued"
    step = record.steps[1]
    # item 2 was processed after the stop; its advance saved cursor 3 and interrupted
    assert (step.name, step.status, step.cursor, step.advanced, step.total) == ("process", "interrupted", 3, 3, 4)
    assert step.completed_at is None
    assert record.progress == pytest.approx(0.75)
    drain()
    record = handle.refresh()
    assert record.steps[1].status == "completed"
    assert record.steps[1].advanced == 4
    assert record.progress == 1.0


def test_progress_is_none_without_total(store: onward.Store) -> None:
    handle = js.Checkpointing.perform_later()
    worker = js.BackgroundWorker(store, burst=True)
    js.gate("after").go.set()
    js.gate("before").wait_reached()
    assert handle.refresh().progress is None
    js.gate("before").open()
    worker.join()


def test_error_after_progress_resumes_from_the_checkpoint(store: onward.Store) -> None:
    js.FAIL[3] = 1
    handle = js.Import.perform_later(5)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (1, 1)  # a resumption, not an attempt
    assert js.items() == [0, 1, 2, 3, 4]
    assert record.error is not None
    assert record.error.splitlines()[-1] == "builtins.RuntimeError: injected failure at item 3"
    assert len(record.children) == 1  # continuations ran once, after the final success


def test_resumption_after_an_error_waits_for_the_backoff(store: onward.Store) -> None:
    js.FAIL[2] = 1
    handle = js.ImportSlowBackoff.perform_later(5)
    before = datetime.now(UTC)
    drain()
    record = handle.refresh()
    assert record.state == "enqueued"
    assert (record.attempts, record.resumptions) == (1, 1)
    assert record.steps[1].cursor == 2  # the failure saved the cursor
    assert record.scheduled_at >= before + timedelta(seconds=3590)


def test_error_without_progress_uses_an_attempt(store: onward.Store) -> None:
    js.FAIL[0] = 1
    handle = js.Import.perform_later(3)
    # completing "initialize" is progress; the execution resumed after it fails at item 0
    # before any progress of its own, so the retry policy applies
    with interrupt_after_step(js.Import, "initialize"):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (2, 1)
    assert js.items() == [0, 1, 2]
    assert js.events("initialize") == [("initialize",)]


def test_a_deterministic_error_cannot_loop_through_resumptions(store: onward.Store) -> None:
    js.FAIL[2] = 1000
    handle = js.Import.perform_later(5)
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    # first execution progressed (0, 1) then failed: a resumption; the resumed execution
    # fails at once without progress: the retry policy takes over (3 attempts in all)
    assert (record.attempts, record.resumptions) == (3, 1)
    assert js.items() == [0, 1]
    assert record.steps[1].cursor == 2


def test_resume_errors_after_advancing_false_uses_the_retry_policy(store: onward.Store) -> None:
    js.FAIL[2] = 1
    handle = js.ImportNoResume.perform_later(4)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (2, 0)
    assert js.items() == [0, 1, 2, 3]  # still continues from the saved cursor


def test_error_not_retried_fails_at_once_even_after_progress(store: onward.Store) -> None:
    js.FAIL[2] = 1
    handle = js.ImportNotRetried.perform_later(4)
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert (record.attempts, record.resumptions) == (1, 0)
    assert record.steps[1].cursor == 2  # progress kept
    assert record.children == ()


def test_discard_on_wins_over_resuming(store: onward.Store) -> None:
    js.FAIL[2] = 1
    handle = js.ImportDiscarded.perform_later(4)
    drain()
    record = handle.refresh()
    assert record.state == "discarded"
    assert record.resumptions == 0


def test_resume_limit_on_errors_fails_with_the_original_error_chained(store: onward.Store) -> None:
    js.FAIL[1] = 1
    js.FAIL[3] = 1
    handle = js.ImportLimited.perform_later(5)
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.resumptions == 1
    assert record.error is not None
    assert record.error.splitlines()[-1].startswith("onward.ResumeLimitExceeded:")
    assert "RuntimeError: injected failure at item 3" in record.error


def test_perform_now_failure_keeps_progress_and_propagates(store: onward.Store) -> None:
    js.FAIL[2] = 1
    with pytest.raises(RuntimeError, match="item 2"):
        js.Import.perform_now(4)
    [record] = store.list_jobs(onward.stores.base.JobFilter())
    assert record.state == "failed"
    assert [s.status for s in record.steps] == ["completed", "interrupted"]
    assert record.steps[1].cursor == 2
    assert record.job_state == {"count": 2}
    assert record.children == ()


def test_perform_now_resumes_an_interruption_in_place(store: onward.Store) -> None:
    with interrupt_during_step(js.Import, "process", cursor=1):
        assert js.Import.perform_now(3) == 3
    assert js.items() == [0, 1, 2]
    [parent, child] = sorted(store.list_jobs(onward.stores.base.JobFilter()), key=lambda r: r.enqueued_at)
    assert parent.state == "succeeded"
    assert parent.resumptions == 1
    assert parent.children == (child.id,)


def test_step_timestamps_are_aware_and_ordered(store: onward.Store) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    handle = js.Import.perform_later(1)
    drain()
    steps = handle.refresh().steps
    for s in steps:
        assert s.started_at is not None
        assert s.started_at.tzinfo is not None
        assert started <= s.started_at <= (s.completed_at or s.started_at)
    assert steps[0].completed_at is not None
    assert steps[2].started_at is not None
    assert steps[0].completed_at <= steps[2].started_at
