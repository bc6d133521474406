"""onward.events: every job event reaches subscribers, in order, on the thread that ran it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from jobs_core import AsyncSteps, Child, Fails, FailsUntilAttempt, Parent, SteppedParent
from onward import Store, events
from onward.testing import drain


@pytest.fixture
def seen() -> Iterator[list[tuple[events.Event, int]]]:
    """The events of this test, each with the thread it was emitted on."""
    found: list[tuple[events.Event, int]] = []
    lock = threading.Lock()

    def record(event: events.Event) -> None:
        with lock:
            found.append((event, threading.get_ident()))

    unsubscribe = events.subscribe(record)
    try:
        yield found
    finally:
        unsubscribe()


def kinds(seen: list[tuple[events.Event, int]], job_id: str) -> list[str]:
    return [e.kind for e, _ in seen if e.job_id == job_id]


def ran_once(seen: list[tuple[events.Event, int]], job_id: str) -> bool:
    """Enqueued, started, then succeeded and ended: a success (its children included) may be
    committed, and announced, after its execution ended, with others in one transaction."""
    found = kinds(seen, job_id)
    return found[:2] == ["enqueued", "started"] and sorted(found[2:]) == ["execution_ended", "succeeded"]


def test_a_chain_is_announced_from_enqueue_to_its_children(store: Store, seen: list[tuple[events.Event, int]]) -> None:
    parent = Parent.perform_later(1)
    assert drain() == 3
    assert ran_once(seen, parent.id)  # "succeeded" once committed, with its children
    children = parent.refresh().children
    assert len(children) == 2
    assert all(ran_once(seen, child) for child in children)
    done = next(e for e, _ in seen if e.kind == "succeeded" and e.job_id == parent.id)
    assert done.data["continuations"] == 2
    assert done.job_class == "jobs_core:Parent"
    assert done.queue == "default"
    assert done.attempt == 1
    assert done.duration is not None
    assert done.duration >= 0


def test_started_and_execution_ended_come_from_the_thread_that_ran_the_job(
    store: Store, seen: list[tuple[events.Event, int]]
) -> None:
    handles = [SteppedParent.perform_later(), AsyncSteps.perform_later()]
    drain()
    for handle in handles:
        mine = [(e.kind, thread) for e, thread in seen if e.job_id == handle.id]
        started = next(t for k, t in mine if k == "started")
        ended = next(t for k, t in mine if k == "execution_ended")
        steps = {t for k, t in mine if k.startswith("step_")}
        assert started == ended
        assert steps == {started}


def test_steps_and_checkpoints_are_announced(store: Store, seen: list[tuple[events.Event, int]]) -> None:
    handle = SteppedParent.perform_later()
    drain()
    mine = [e for e, _ in seen if e.job_id == handle.id]
    assert [(e.kind, e.step) for e in mine if e.kind.startswith("step_")] == [
        ("step_started", "first"),
        ("step_completed", "first"),
        ("step_started", "second"),
        ("step_completed", "second"),
    ]
    assert any(e.kind == "checkpointed" for e in mine)


def test_failures_and_retries_carry_the_error(store: Store, seen: list[tuple[events.Event, int]]) -> None:
    failing = Fails.perform_later("nope")
    recovering = FailsUntilAttempt.perform_later(2)
    drain()
    assert kinds(seen, failing.id) == ["enqueued"] + ["started", "retried", "execution_ended"] * 2 + [
        "started",
        "failed",
        "execution_ended",
    ]
    failed = next(e for e, _ in seen if e.kind == "failed")
    assert failed.error is not None
    assert failed.error.endswith("builtins.ValueError: nope")
    retried = next(e for e, _ in seen if e.kind == "retried" and e.job_id == recovering.id)
    assert retried.data["resumption"] is False
    assert [e.attempt for e, _ in seen if e.job_id == recovering.id and e.kind == "started"] == [1, 2]


def test_a_failing_subscriber_changes_no_outcome(store: Store, seen: list[tuple[events.Event, int]]) -> None:
    def broken(event: events.Event) -> None:
        raise RuntimeError("subscriber bug")

    unsubscribe = events.subscribe(broken)
    try:
        handle = Child.perform_later("x")
        drain()
    finally:
        unsubscribe()
    assert handle.refresh().state == "succeeded"
    assert ran_once(seen, handle.id)


def test_unsubscribed_functions_hear_nothing_more(store: Store) -> None:
    heard: list[str] = []
    unsubscribe = events.subscribe(lambda e: heard.append(e.kind))
    Child.perform_later("a")
    unsubscribe()
    Child.perform_later("b")
    drain()
    assert heard == ["enqueued"]


def test_a_subscriber_hears_only_the_kinds_it_names(store: Store) -> None:
    heard: list[str] = []
    unsubscribe = events.subscribe(lambda e: heard.append(e.kind), kinds={events.SUCCEEDED, events.FAILED})
    try:
        handle = Child.perform_later("a")
        drain()
    finally:
        unsubscribe()
    assert handle.refresh().state == "succeeded"
    assert heard == ["succeeded"]


def logged_kinds() -> frozenset[str]:
    from onward import log_events

    found = [kinds for fn, kinds in events._table if fn is log_events.log_event]
    assert len(found) == 1
    assert found[0] is not None
    return found[0]


def test_job_log_lines_at_info_are_not_built_while_nothing_writes_info(store: Store) -> None:
    import io
    import logging

    from onward import log_events, logs

    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    try:
        logs.configure("WARNING", stream=stream)
        assert logged_kinds() >= {events.FAILED, events.RETRIED}  # warnings are still written
        assert events.STARTED not in logged_kinds()
        logs.configure("INFO", stream=stream)
        assert events.STARTED in logged_kinds()
        handle = Child.perform_later("a")
        drain()
        assert f"{handle.id} started" in stream.getvalue()
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "stream", None) is stream:
                root.removeHandler(handler)
        root.setLevel(level)
        log_events.enable()
