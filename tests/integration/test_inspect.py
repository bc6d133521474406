"""API §6: get_job, JobHandle.refresh/wait, and what a JobRecord says."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest

import onward
from jobs_core import (
    Child,
    Counted,
    Echo,
    Fails,
    InspectsRunningStep,
    Parent,
    ProgressThenFailOnce,
    RetriesLater,
    TwoSteps,
    WaitsForEvent,
    event,
    unique_names,
)
from onward import JobRecord, State, StepRecord, Store
from onward.execution import Execution
from onward.serialization import to_json
from onward.stores.base import Checkpoint
from onward.testing import drain, interrupt_during_step

FIELDS = [
    "id",
    "job_class",
    "queue",
    "priority",
    "args",
    "kwargs",
    "state",
    "attempts",
    "resumptions",
    "scheduled_at",
    "enqueued_at",
    "started_at",
    "finished_at",
    "error",
    "continuation_error",
    "parent_id",
    "children",
    "result",
    "job_state",
    "steps",
    "progress",
]


def test_get_job_returns_a_frozen_record_with_every_documented_field(store: Store) -> None:
    handle = Echo.perform_later(1, b=2)
    record = onward.get_job(handle.id)
    assert isinstance(record, JobRecord)
    for name in FIELDS:
        assert hasattr(record, name), name
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = State.FAILED  # type: ignore[misc]
    assert record == handle.refresh()


def test_get_job_raises_key_error_for_an_unknown_id(store: Store) -> None:
    with pytest.raises(KeyError):
        onward.get_job("00000000-0000-7000-8000-000000000000")
    with pytest.raises(KeyError):
        store.get("not-an-id")


def test_a_fresh_record(store: Store) -> None:
    record = Echo.set(queue="q", priority=7).perform_later(1, b=2).refresh()
    assert record.job_class == "jobs_core:Echo"
    assert (record.queue, record.priority, record.args, record.kwargs) == ("q", 7, [1], {"b": 2})
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 0, 0)
    assert record.started_at is None
    assert record.finished_at is None
    assert record.error is None
    assert record.continuation_error is None
    assert record.parent_id is None
    assert record.children == ()
    assert record.result is None
    assert record.job_state == {}
    assert record.steps == []
    assert record.progress is None


def test_datetimes_are_aware_utc(store: Store) -> None:
    handle = Echo.perform_later()
    drain()
    record = handle.refresh()
    for value in (record.scheduled_at, record.enqueued_at, record.started_at, record.finished_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value.tzinfo is not None
    assert record.enqueued_at <= record.started_at <= record.finished_at  # type: ignore[operator]


def test_state_is_a_string_enum_and_compares_to_its_value(store: Store) -> None:
    assert {s.value for s in State} == {"enqueued", "running", "succeeded", "failed", "discarded", "cancelled"}
    record = Echo.perform_later().refresh()
    assert record.state == "enqueued"
    assert record.state is State.ENQUEUED


def test_state_is_running_while_a_worker_runs_the_job(store: Store) -> None:
    started, go = unique_names("started", "go")
    handle = WaitsForEvent.perform_later(started, go)
    worker = onward.Worker(store=store)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    try:
        assert event(started).wait(10)
        record = handle.refresh()
        assert record.state == "running"
        assert record.attempts == 1
        assert record.started_at is not None
        assert record.finished_at is None
    finally:
        event(go).set()
        thread.join(10)
    assert handle.refresh().state == "succeeded"


def test_state_is_enqueued_while_waiting_to_retry(store: Store) -> None:
    handle = RetriesLater.perform_later()
    drain()
    assert handle.refresh().state == "enqueued"


def test_final_states(store: Store) -> None:
    ok, bad = Echo.perform_later(), Fails.perform_later()
    drain()
    assert ok.refresh().state == "succeeded"
    assert bad.refresh().state == "failed"


def test_children_are_a_tuple_of_ids_in_enqueue_order_and_children_name_their_parent(store: Store) -> None:
    handle = Parent.perform_later(5)
    drain()
    parent = handle.refresh()
    assert isinstance(parent.children, tuple)
    assert [onward.get_job(c).args for c in parent.children] == [["first-5"], ["second-5"]]
    assert {onward.get_job(c).parent_id for c in parent.children} == {handle.id}
    assert onward.get_job(parent.children[0]).job_class == f"jobs_core:{Child.__qualname__}"


def test_job_state_is_self_state_as_of_the_last_checkpoint(store: Store) -> None:
    handle = Counted.perform_later(3)
    drain()
    assert handle.refresh().job_state == {"count": 3}


def test_steps_are_step_records_in_execution_order(store: Store) -> None:
    handle = TwoSteps.perform_later()
    drain()
    steps = handle.refresh().steps
    assert [type(s) for s in steps] == [StepRecord, StepRecord]
    assert [(s.name, s.status) for s in steps] == [("first", "completed"), ("second", "completed")]
    assert all(s.started_at is not None and s.completed_at is not None for s in steps)
    assert steps[0].completed_at <= steps[1].started_at  # type: ignore[operator]
    assert all(s.started_at.tzinfo is not None for s in steps if s.started_at)


def test_a_step_is_running_while_an_execution_is_in_it(store: Store) -> None:
    handle = InspectsRunningStep.perform_later()
    drain()
    *steps, progress = handle.refresh().result
    assert steps == [["look", "running", 1, 1, 4]]
    assert progress == 0.25


def test_an_interrupted_step_reports_interrupted_with_its_cursor_and_progress(store: Store) -> None:
    handle = Counted.perform_later(10)
    with interrupt_during_step(Counted, "count", cursor=3):
        run_one(store)
    record = handle.refresh()
    assert record.state == "enqueued"
    [step] = record.steps
    assert (step.name, step.status, step.cursor, step.advanced, step.total) == ("count", "interrupted", 3, 3, 10)
    assert step.completed_at is None
    assert record.progress == pytest.approx(0.3)


def test_advanced_counts_across_executions_and_progress_is_one_once_succeeded(store: Store) -> None:
    handle = Counted.perform_later(4)
    with interrupt_during_step(Counted, "count", cursor=2):
        drain()
    record = handle.refresh()
    assert record.resumptions == 1
    assert record.steps[0].advanced == 4
    assert record.progress == 1.0


def test_progress_is_none_without_a_total(store: Store) -> None:
    handle = ProgressThenFailOnce.perform_later()
    assert handle.refresh().progress is None  # no steps yet
    run_one(store)  # advances to 2 of an unknown total, then fails and waits to resume
    record = handle.refresh()
    assert (record.state, record.steps[0].cursor, record.steps[0].total) == ("enqueued", 2, None)
    assert record.progress is None
    drain()
    assert handle.refresh().progress == 1.0


def test_progress_is_capped_at_one(store: Store) -> None:

    handle = Child.perform_later("x")
    [claimed] = store.claim("inspector", None, 30.0, 1)
    steps = to_json([{"name": "s", "status": "running", "cursor": 9, "advanced": 9, "total": 4}])
    store.save_checkpoint(claimed.id, claimed.lease_token, Checkpoint(steps, "{}", progressed=True))
    assert handle.refresh().progress == 1.0


def run_one(store: Store) -> None:
    """One execution of the next ready job, in this thread."""
    [claimed] = store.claim("test-runner", None, 30.0, 1)
    Execution(store, claimed).run()


# -- handles ---------------------------------------------------------------------------------


def test_handle_wait_returns_the_finished_record(store: Store) -> None:
    handle = Echo.perform_later("w")
    thread = threading.Thread(target=drain)
    thread.start()
    record = handle.wait(timeout=30)
    thread.join()
    assert record.state == "succeeded"
    assert record.result["args"] == ["w"]


def test_handle_wait_returns_failed_records_too(store: Store) -> None:
    handle = Fails.perform_later()
    drain()
    assert handle.wait(timeout=5).state == "failed"


def test_handle_wait_raises_timeout_error(store: Store) -> None:
    handle = Echo.perform_later()
    with pytest.raises(TimeoutError):
        handle.wait(timeout=0.05)
    assert handle.refresh().state == "enqueued"


def test_handle_has_its_id_and_refresh_reads_the_current_record(store: Store) -> None:
    handle = Echo.perform_later()
    before = handle.refresh()
    assert before.id == handle.id
    drain()
    assert handle.refresh().state == "succeeded"
    assert before.state == "enqueued"  # a record is a snapshot
    assert before.refresh().state == "succeeded"
