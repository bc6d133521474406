"""Interruption: a stopping worker, ``max_run_time``, isolated steps, resumption limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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


def stop_while_paused(store: onward.Store, job: type[onward.Job], *args: object) -> onward.JobHandle:
    """Run ``job`` on a worker, stop the worker while the job waits at gate ``g``, let it go on."""
    handle = job.perform_later(*args)
    worker = js.BackgroundWorker(store)
    js.gate("g").wait_reached()
    worker.worker.stop()
    js.gate("g").open()
    worker.join()
    return handle


def test_stopping_worker_interrupts_at_the_next_advance(store: onward.Store) -> None:
    before = datetime.now(UTC)
    handle = stop_while_paused(store, js.Import, 6, 1, "g")
    record = handle.refresh()
    assert record.state == "enqueued"  # the same job, back in the queue
    assert record.scheduled_at <= datetime.now(UTC)  # at once
    assert record.scheduled_at >= before
    assert (record.attempts, record.resumptions) == (1, 1)  # no attempt used
    assert record.error is None
    assert record.children == ()  # no continuation ran
    assert js.events("child") == []
    assert record.steps[1].cursor == 3  # the updated cursor was saved
    assert js.items() == [0, 1, 2]

    assert drain() == 2  # the next worker resumes it; then the continuation
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (1, 1)
    assert js.items() == [0, 1, 2, 3, 4, 5]  # a graceful stop repeats nothing
    assert len(record.children) == 1
    assert js.events("child") == [("child", "after-import-6")]


def test_stopping_worker_interrupts_at_the_next_step_after_progress(store: onward.Store) -> None:
    handle = stop_while_paused(store, js.Import, 2, 1, "g")  # paused after the last item
    record = handle.refresh()
    assert record.state == "enqueued"
    assert [(s.name, s.status) for s in record.steps] == [("initialize", "completed"), ("process", "completed")]
    assert js.events("finalize") == []
    drain()
    assert handle.refresh().state == "succeeded"
    assert js.events("finalize") == [("finalize",)]
    assert js.items() == [0, 1]


def test_a_stopping_worker_does_not_interrupt_before_progress(store: onward.Store) -> None:
    handle = js.Checkpointing.perform_later()  # pauses before any progress in this execution
    worker = js.BackgroundWorker(store)
    js.gate("before").wait_reached()
    worker.worker.stop()
    js.gate("after").open()
    js.gate("before").open()
    worker.join()
    record = handle.refresh()
    # checkpoint() is an interruption point: the job stopped there with cursor "a" saved
    assert record.state == "enqueued"
    assert record.steps[0].cursor == "a"
    assert record.resumptions == 1


def test_max_run_time_yields_only_after_progress(store: onward.Store) -> None:
    handle = js.ImportYielding.perform_later(3)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    # with max_run_time 0 each execution makes exactly one piece of progress, then yields:
    # "initialize" completes, item 0, item 1, item 2, "process" completes; then "finalize"
    assert record.resumptions == 5
    assert record.attempts == 1
    assert js.items() == [0, 1, 2]
    assert len(record.children) == 1  # continuations once, after the final success
    assert js.events("child") == [("child", "after-import-3")]


def test_max_resumptions_fails_with_resume_limit_exceeded(store: onward.Store) -> None:
    handle = js.ImportYieldingLimited.perform_later(5)
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.resumptions == 2
    assert record.error is not None
    assert record.error.splitlines()[-1].startswith("onward.ResumeLimitExceeded:")
    assert "max_resumptions=2" in record.error
    assert record.children == ()


def test_interruption_cannot_be_swallowed_by_except_exception(store: onward.Store) -> None:
    handle = js.Stubborn.perform_later(3)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.resumptions == 3
    assert js.events("swallowed") == []
    assert js.items() == [0, 1, 2]


@pytest.mark.parametrize(
    ("job", "runs", "resumptions"),
    [
        # a, then b isolated: interrupted before b; b alone; interrupted before c
        (js.Phases, [("a", 0), ("b", 1), ("c", 2)], 2),
        # the first step to run never causes an isolation interrupt
        (js.PhasesFirstIsolated, [("a", 0), ("b", 1), ("c", 1)], 1),
        # an isolated last step: interrupted before it, nothing follows it
        (js.PhasesLastIsolated, [("a", 0), ("b", 0), ("c", 1)], 1),
    ],
)
def test_isolated_steps_get_an_execution_of_their_own(
    store: onward.Store, job: type[onward.Job], runs: list[tuple[str, int]], resumptions: int
) -> None:
    handle = job.perform_later()
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert [(e[1], e[2]) for e in js.events("ran")] == runs
    assert record.resumptions == resumptions
    assert record.attempts == 1
    assert js.events("child") == [("child", "after-phases")]


def test_isolation_interrupts_count_against_max_resumptions(store: onward.Store) -> None:
    handle = js.PhasesNoResumptions.perform_later()
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.error is not None
    assert record.error.splitlines()[-1].startswith("onward.ResumeLimitExceeded:")
    assert [(e[1], e[2]) for e in js.events("ran")] == [("a", 0)]
    assert record.children == ()


def test_interrupted_job_is_taken_by_the_next_free_worker(store: onward.Store) -> None:
    handle = stop_while_paused(store, js.Import, 3, 0, "g")
    [record] = [r for r in store.list_jobs(JobFilter()) if r.id == handle.id]
    assert record.state == "enqueued"
    assert record.scheduled_at - datetime.now(UTC) < timedelta(seconds=1)
    worker = js.BackgroundWorker(store, burst=True)
    worker.join()
    assert handle.refresh().state == "succeeded"
    assert js.items() == [0, 1, 2]


def test_max_run_time_inside_perform_now_resumes_in_place(store: onward.Store) -> None:
    assert js.ImportYielding.perform_now(2) == 2
    [record] = [r for r in store.list_jobs(JobFilter()) if r.job_class.endswith(":ImportYielding")]
    assert record.state == "succeeded"
    assert record.resumptions == 4  # initialize, item 0, item 1, process completed
    assert js.items() == [0, 1]


def test_resume_limit_inside_perform_now_raises(store: onward.Store) -> None:
    with pytest.raises(onward.ResumeLimitExceeded, match="max_resumptions=2"):
        js.ImportYieldingLimited.perform_now(5)
    [record] = store.list_jobs(JobFilter())
    assert record.state == "failed"
    assert record.resumptions == 2
