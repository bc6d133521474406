"""API §11: batches, their counters and their callbacks, on both stores."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

import onward
from jobs_batches import (
    BatchInFlakyContinuations,
    Callback,
    DiscardedMember,
    FlakyMember,
    Member,
    MemberWithChild,
    NestingCallback,
    OpensBatchInContinuations,
    OpensBatchInPerform,
    SteppedMember,
)
from onward import Store
from onward.admin import ActionRefused, Admin
from onward.execution import Execution
from onward.stores.base import JobFilter
from onward.testing import drain, interrupt_after_step


def callbacks(batch_id: str) -> list[onward.JobRecord]:
    return [onward.get_job(i) for i in onward.get_batch(batch_id).callback_ids]


def tags(batch_id: str) -> list[str]:
    return [r.args[0] for r in callbacks(batch_id)]


def run_one(store: Store) -> Execution:
    """Run exactly one ready job (not what it enqueues)."""
    [claimed] = store.claim("test-runner", None, 30.0, 1)
    execution = Execution(store, claimed)
    execution.run()
    return execution


# -- building a batch ---------------------------------------------------------------------------


def test_members_and_the_batch_are_stored_when_the_block_exits(store: Store) -> None:
    batch = onward.batch(description="album 7")
    with batch:
        handles = [Member.perform_later(i) for i in range(3)]
        batch.on_success(Callback, "published")
        batch.on_finish(Callback.set(queue="notify"), "notified")
        with pytest.raises(KeyError):
            onward.get_batch(batch.id)  # nothing is stored before the block exits
        with pytest.raises(KeyError):
            onward.get_job(handles[0].id)
    record = onward.get_batch(batch.id)
    assert isinstance(record, onward.BatchRecord)
    assert (record.id, record.description, record.state) == (batch.id, "album 7", "pending")
    assert (record.total, record.pending, record.succeeded, record.failed) == (3, 3, 0, 0)
    assert (record.discarded, record.cancelled, record.finished_at, record.callback_ids) == (0, 0, None, ())
    assert record.job_ids == tuple(h.id for h in handles)
    assert record.created_at.tzinfo is not None
    assert [onward.get_job(h.id).batch_id for h in handles] == [batch.id] * 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.total = 4  # type: ignore[misc]


def test_perform_all_later_inside_a_batch_adds_members(store: Store) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_later(0)
        Member.perform_all_later([(i,) for i in range(1, 50)])
    record = onward.get_batch(batch.id)
    assert record.total == 50
    assert [onward.get_job(i).args[0] for i in record.job_ids] == list(range(50))


def test_nothing_is_stored_when_the_block_raises(store: Store) -> None:
    batch = onward.batch()
    handles = []

    def block() -> None:
        with batch:
            handles.append(Member.perform_later(1))
            batch.on_success(Callback, "never")
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        block()
    with pytest.raises(KeyError):
        onward.get_batch(batch.id)
    with pytest.raises(KeyError):
        onward.get_job(handles[0].id)
    assert drain() == 0


def test_a_bad_argument_is_refused_at_the_call_and_nothing_is_stored(store: Store) -> None:
    batch = onward.batch()
    handles = []

    def block() -> None:
        with batch:
            handles.append(Member.perform_later(2))
            Member.perform_later({1, 2})  # a set is not serializable

    with pytest.raises(onward.SerializationError, match=r"args\[0\]"):
        block()
    with pytest.raises(KeyError):
        onward.get_batch(batch.id)
    with pytest.raises(KeyError):
        onward.get_job(handles[0].id)
    batch = onward.batch()
    with pytest.raises(onward.SerializationError, match="kwargs"), batch:
        batch.on_success(Callback, "x", log=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        onward.get_batch(batch.id)


@pytest.mark.parametrize("bad", [print, "jobs_batches:Callback", Callback(), 3, object])
def test_a_callback_that_is_not_a_job_class_or_set_object_raises_type_error_naming_it(
    store: Store, bad: object
) -> None:
    batch = onward.batch()
    with pytest.raises(TypeError, match="on_success") as raised, batch:
        batch.on_success(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(raised.value)
    with pytest.raises(TypeError, match="on_finish"):
        batch.on_finish(bad)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        onward.get_batch(batch.id)


def test_a_description_that_is_not_a_str_raises_type_error(store: Store) -> None:
    with pytest.raises(TypeError, match="description"):
        onward.batch(description=7)  # type: ignore[arg-type]


# -- callbacks ------------------------------------------------------------------------------------


def test_on_success_and_on_finish_run_once_when_every_member_succeeded(store: Store) -> None:
    batch = onward.batch()
    with batch:
        for i in range(3):
            Member.perform_later(i)
        batch.on_success(Callback, "s1")
        batch.on_success(Callback, "s2")
        batch.on_finish(Callback, "f1")
    run_one(store)
    run_one(store)
    assert onward.get_batch(batch.id).callback_ids == ()
    assert (onward.get_batch(batch.id).pending, onward.get_batch(batch.id).succeeded) == (1, 2)
    run_one(store)  # the last member: its success commits the callbacks
    record = onward.get_batch(batch.id)
    assert (record.state, record.pending, record.succeeded) == ("succeeded", 0, 3)
    assert record.finished_at is not None
    assert tags(batch.id) == ["s1", "s2", "f1"]
    assert all(r.parent_batch_id == batch.id and r.batch_id is None for r in callbacks(batch.id))
    assert drain() == 3
    assert [r.result["parent_batch"] for r in callbacks(batch.id)] == [batch.id] * 3
    assert len(onward.get_batch(batch.id).callback_ids) == 3


def test_a_failed_member_runs_on_finish_but_not_on_success(store: Store) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_later(1)
        Member.perform_later(2, fail=True)
        DiscardedMember.perform_later()
        batch.on_success(Callback, "success")
        batch.on_finish(Callback, "finish")
    drain()
    record = onward.get_batch(batch.id)
    assert (record.state, record.pending, record.succeeded, record.failed, record.discarded) == (
        "finished",
        0,
        1,
        1,
        1,
    )
    assert tags(batch.id) == ["finish"]
    assert [r.state for r in callbacks(batch.id)] == ["succeeded"]


def test_a_batch_without_members_is_at_once_finished_and_successful(store: Store) -> None:
    batch = onward.batch()
    with batch:
        batch.on_success(Callback, "empty-success")
        batch.on_finish(Callback, "empty-finish")
    record = onward.get_batch(batch.id)
    assert (record.state, record.total, record.pending) == ("succeeded", 0, 0)
    assert record.finished_at is not None
    assert tags(batch.id) == ["empty-success", "empty-finish"]


def test_callbacks_run_in_the_same_burst_as_the_last_member(store: Store) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_all_later([(i,) for i in range(20)])
        batch.on_success(Callback, "burst")
    worker = onward.Worker(concurrency=4, lease_timeout=30.0, schedules=False)
    worker.run(burst=True)  # the batched completion path (several successes per commit)
    assert worker.executions == 21
    assert [r.state for r in callbacks(batch.id)] == ["succeeded"]


def test_an_operator_retry_of_a_failed_member_lets_on_success_run_once_later(store: Store, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    batch = onward.batch()
    with batch:
        Member.perform_later(1)
        flaky = FlakyMember.perform_later(str(gate))
        batch.on_success(Callback, "success")
        batch.on_finish(Callback, "finish")
    drain()
    assert onward.get_batch(batch.id).state == "finished"
    assert tags(batch.id) == ["finish"]
    gate.touch()
    assert Admin(store).retry(flaky.id).state == "enqueued"
    record = onward.get_batch(batch.id)
    assert (record.state, record.pending, record.failed, record.finished_at) == ("pending", 1, 0, None)
    drain()
    record = onward.get_batch(batch.id)
    assert (record.state, record.succeeded, record.failed) == ("succeeded", 2, 0)
    assert tags(batch.id) == ["finish", "success"]  # on_finish is not run again
    with pytest.raises(ActionRefused):
        Admin(store).retry(flaky.id)  # a succeeded member cannot be retried
    assert tags(batch.id) == ["finish", "success"]


def test_an_operator_discard_of_an_enqueued_member_counts_as_final(store: Store) -> None:
    batch = onward.batch()
    with batch:
        handle = Member.perform_later(1)
        batch.on_finish(Callback, "finish")
    assert Admin(store).discard(handle.id).state == "discarded"
    record = onward.get_batch(batch.id)
    assert (record.state, record.discarded, record.pending) == ("finished", 1, 0)
    assert tags(batch.id) == ["finish"]


def test_a_member_s_continuations_are_not_members(store: Store) -> None:
    batch = onward.batch()
    with batch:
        MemberWithChild.perform_later()
        batch.on_success(Callback, "success")
    drain()
    record = onward.get_batch(batch.id)
    assert (record.total, record.succeeded) == (1, 1)
    member = onward.get_job(record.job_ids[0])
    [child] = member.children
    assert onward.get_job(child).batch_id is None
    assert tags(batch.id) == ["success"]


def test_an_interrupted_stepped_member_is_not_final_until_it_resumes_and_succeeds(store: Store) -> None:
    batch = onward.batch()
    with batch:
        SteppedMember.perform_later()
        batch.on_finish(Callback, "finish")
    with interrupt_after_step(SteppedMember, "first"):
        execution = run_one(store)
    assert execution.outcome == "interrupted"
    record = onward.get_batch(batch.id)
    assert (record.state, record.pending, record.callback_ids) == ("pending", 1, ())
    drain()
    record = onward.get_batch(batch.id)
    assert (record.state, record.succeeded) == ("succeeded", 1)
    assert onward.get_job(record.job_ids[0]).resumptions == 1
    assert tags(batch.id) == ["finish"]


def test_jobs_record_their_batch_and_see_it_while_running(store: Store) -> None:
    batch = onward.batch()
    with batch:
        batch.on_success(NestingCallback, 2)
    [outer_callback] = callbacks(batch.id)
    drain()
    inner_id = outer_callback.refresh().result
    inner = onward.get_batch(inner_id)
    assert inner.description == f"nested in {batch.id}"
    assert (inner.state, inner.total) == ("succeeded", 2)
    [inner_callback] = callbacks(inner_id)
    assert inner_callback.refresh().result == {"tag": "inner-success", "batch": None, "parent_batch": inner_id}
    assert all(onward.get_job(i).batch_id == inner_id for i in inner.job_ids)


def test_a_batch_opened_inside_perform_is_stored_at_once(store: Store) -> None:
    handle = OpensBatchInPerform.perform_later(3)
    drain()
    batch_id = handle.refresh().result
    record = onward.get_batch(batch_id)
    assert (record.description, record.state, record.total) == ("from perform", "succeeded", 3)
    assert [r.state for r in callbacks(batch_id)] == ["succeeded"]


def test_a_batch_opened_inside_continuations_commits_with_the_parent_s_success(store: Store) -> None:
    handle = OpensBatchInContinuations.perform_later(2)
    run_one(store)
    parent = handle.refresh()
    assert parent.state == "succeeded"
    record = onward.get_batch(parent.job_state["batch"])
    assert (record.description, record.total) == ("from continuations", 2)
    drain()
    assert onward.get_batch(record.id).state == "succeeded"


def test_a_batch_opened_in_continuations_that_then_raise_is_not_stored(store: Store) -> None:
    handle = OpensBatchInContinuations.perform_later(2, fail_continuations=True)
    run_one(store)
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert parent.continuation_error is not None
    assert parent.children == ()
    assert drain() == 0


def test_a_batch_inside_a_batch_is_stored_with_it(store: Store) -> None:
    outer = onward.batch("outer")
    with outer:
        Member.perform_later(1)
        inner = onward.batch("inner")
        with inner:
            Member.perform_later(2)
            Member.perform_later(3)
    assert onward.get_batch(outer.id).total == 1
    assert onward.get_batch(inner.id).total == 2
    third, fourth = onward.batch(), onward.batch()

    def block() -> None:
        with third:
            with fourth:
                Member.perform_later(4)
            raise RuntimeError("the outer block fails")

    with pytest.raises(RuntimeError):
        block()
    for unknown in (third.id, fourth.id):
        with pytest.raises(KeyError):
            onward.get_batch(unknown)


def test_get_batch_raises_key_error_for_an_unknown_id(store: Store) -> None:
    with pytest.raises(KeyError):
        onward.get_batch("no-such-batch")


def test_a_batch_opened_in_continuations_run_again_is_stored_then(store: Store, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    handle = BatchInFlakyContinuations.perform_later(str(gate))
    drain()
    assert handle.refresh().continuation_error is not None
    gate.touch()
    Admin(store).rerun_continuations(handle.id)
    drain()
    parent = handle.refresh()
    assert parent.continuation_error is None
    assert parent.children == ()  # a batch's members are not children
    [member] = store.list_jobs(JobFilter(job_class="jobs_batches:Member"))
    batch = onward.get_batch(member.batch_id)  # type: ignore[arg-type]
    assert (batch.description, batch.state, batch.total) == ("re-run", "succeeded", 1)
    assert tags(batch.id) == ["after re-run"]


def test_a_callback_s_wait_counts_from_the_last_member_s_completion(store: Store) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_later(1)
        batch.on_finish(Callback.set(wait=timedelta(minutes=10), priority=3), "later")
    assert batch.record.total == 1
    drain()
    [callback] = callbacks(batch.id)
    member = onward.get_job(onward.get_batch(batch.id).job_ids[0])
    assert member.finished_at is not None
    assert callback.state == "enqueued"
    assert callback.priority == 3
    delay = (callback.scheduled_at - member.finished_at).total_seconds()
    assert 599 <= delay <= 601
    assert drain(until=timedelta(minutes=11)) == 1
    assert callback.refresh().state == "succeeded"
