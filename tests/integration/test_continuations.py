"""API §3: continuations run after success and commit with the parent's success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import onward
from jobs_core import (
    AsyncParent,
    AsyncRaisingContinuations,
    Child,
    ConditionalParent,
    DiscardedParent,
    FailingParent,
    NestedPerformNow,
    Parent,
    ParentOfFailingChild,
    PerformNowInContinuations,
    RaisingContinuations,
    SteppedParent,
    WaitingParent,
)
from onward import Store
from onward.execution import Execution
from onward.stores.base import JobFilter
from onward.testing import drain, interrupt_after_step


def jobs_of(store: Store, cls: type[onward.Job]) -> list[onward.JobRecord]:
    """Every stored job of ``cls``, oldest first."""
    return list(reversed(store.list_jobs(JobFilter(job_class=f"jobs_core:{cls.__qualname__}", limit=1000))))


def run_one(store: Store) -> None:
    """Run exactly the ready jobs now, not their children (a worker with one claim)."""
    claimed = store.claim("test-runner", None, 30.0, 1)
    assert len(claimed) == 1
    Execution(store, claimed[0]).run()


def test_continuations_run_after_perform_with_the_job_s_arguments_and_result(store: Store) -> None:
    handle = Parent.perform_later(4)
    run_one(store)
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert parent.job_state["seen"] == {"id": handle.id, "attempt": 1, "result": {"n": 4, "paid": True}, "n": 4}


def test_children_record_their_parent_and_the_parent_lists_them_in_order(store: Store) -> None:
    handle = Parent.perform_later(1)
    run_one(store)
    parent = handle.refresh()
    assert isinstance(parent.children, tuple)
    assert len(parent.children) == 2
    children = [store.get(c) for c in parent.children]
    assert [c.args for c in children] == [["first-1"], ["second-1"]]
    assert all(c.parent_id == handle.id for c in children)
    assert all(c.state == "enqueued" for c in children)


def test_handles_returned_inside_continuations_name_jobs_that_exist_after_the_commit(store: Store) -> None:
    handle = Parent.perform_later(1)
    run_one(store)
    parent = handle.refresh()
    ids = parent.job_state["handles"]
    assert ids == list(parent.children)
    assert [store.get(i).state for i in ids] == ["enqueued", "enqueued"]


def test_children_run_after_the_parent(store: Store) -> None:
    handle = Parent.perform_later(3)
    assert drain() == 3
    children = [store.get(c) for c in handle.refresh().children]
    assert [c.result for c in children] == ["first-3", "second-3"]
    assert all(c.started_at is not None and c.started_at >= handle.refresh().finished_at for c in children)  # type: ignore[operator]


@pytest.mark.parametrize(("paid", "expected"), [(True, "ship"), (False, "remind")])
def test_conditional_chains_are_plain_python(store: Store, paid: bool, expected: str) -> None:
    handle = ConditionalParent.perform_later(paid)
    drain()
    assert [store.get(c).args for c in handle.refresh().children] == [[expected]]


def test_wait_in_a_continuation_counts_from_the_parent_s_completion(store: Store) -> None:
    until = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    handle = WaitingParent.perform_later(0.3, until)
    drain()
    parent = handle.refresh()
    relative, absolute = (store.get(c) for c in parent.children)
    assert parent.finished_at is not None
    # The child was built while the parent ran, but its wait starts when the parent finished.
    assert relative.scheduled_at == pytest.approx(parent.finished_at + timedelta(seconds=120), abs=timedelta(0.001))
    assert relative.scheduled_at - parent.enqueued_at >= timedelta(seconds=120.3)
    assert absolute.scheduled_at == until  # wait_until is absolute
    assert relative.state == absolute.state == "enqueued"


@pytest.mark.parametrize("cls", [FailingParent, DiscardedParent])
def test_a_failed_or_discarded_job_runs_no_continuations(store: Store, cls: type[onward.Job]) -> None:
    handle = cls.perform_later()
    drain()
    record = handle.refresh()
    assert record.state in ("failed", "discarded")
    assert record.children == ()
    assert jobs_of(store, Child) == []


def test_an_interrupted_stepped_job_runs_its_continuations_once_when_it_finally_succeeds(store: Store) -> None:
    handle = SteppedParent.perform_later()
    with interrupt_after_step(SteppedParent, "first"):
        assert drain() == 3  # interrupted, resumed, then the child
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert parent.resumptions == 1
    assert [c.args for c in jobs_of(store, Child)] == [["after-steps"]]
    assert len(parent.children) == 1


def test_an_interrupted_execution_runs_no_continuations(store: Store) -> None:
    handle = SteppedParent.perform_later()
    with interrupt_after_step(SteppedParent, "first"):
        run_one(store)
    assert handle.refresh().state == "enqueued"
    assert jobs_of(store, Child) == []


def test_when_continuations_raise_the_parent_stays_succeeded_and_none_of_the_block_is_enqueued(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    handle = RaisingContinuations.perform_later()
    drain()
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert parent.result == "ok"
    assert parent.children == ()
    assert jobs_of(store, Child) == []
    assert parent.error is None
    assert parent.continuation_error is not None
    assert parent.continuation_error.splitlines()[-1] == "builtins.RuntimeError: continuations broke"
    assert "Traceback" in parent.continuation_error
    assert any("continuations broke" in r.getMessage() for r in caplog.records)  # and logged


def test_async_continuations_that_raise_are_isolated_too(store: Store) -> None:
    handle = AsyncRaisingContinuations.perform_later()
    drain()
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert (parent.continuation_error or "").splitlines()[-1] == "builtins.RuntimeError: async continuations broke"
    assert jobs_of(store, Child) == []


def test_async_continuations_enqueue_children(store: Store) -> None:
    handle = AsyncParent.perform_later(9)
    drain()
    assert [store.get(c).result for c in handle.refresh().children] == ["async-9"]


def test_perform_now_inside_continuations_runs_at_once_outside_the_transaction(store: Store) -> None:
    handle = PerformNowInContinuations.perform_later()
    drain()
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert parent.continuation_error is not None
    children = jobs_of(store, Child)
    # The perform_later was discarded with the failing block; the perform_now had already run.
    assert [(c.args, c.state) for c in children] == [(["ran-now"], "succeeded")]
    assert children[0].result == "ran-now"


def test_perform_now_inside_continuations_commits_its_own_children_and_the_block_goes_on(store: Store) -> None:
    handle = NestedPerformNow.perform_later()
    run_one(store)
    outer = handle.refresh()
    [inner] = jobs_of(store, Parent)
    assert inner.state == "succeeded"
    assert inner.parent_id is None  # perform_now is not a continuation of the outer job
    assert [store.get(c).args for c in inner.children] == [["first-8"], ["second-8"]]
    assert [store.get(c).args for c in outer.children] == [["outer-before"], ["outer-after"]]
    assert outer.job_state["handles"] == list(outer.children)


def test_a_child_s_failure_never_changes_its_parent(store: Store) -> None:
    handle = ParentOfFailingChild.perform_later()
    drain()
    parent = handle.refresh()
    [child_id] = parent.children
    assert store.get(child_id).state == "failed"
    assert parent.state == "succeeded"
    assert parent.error is None
    assert parent.continuation_error is None
