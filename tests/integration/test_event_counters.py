"""onward.events counters: told of every event of their kinds, with the same figures whether
or not a subscriber has the events built."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from jobs_core import Child, Fails, FailsUntilAttempt, Parent
from onward import Store, events, log_events
from onward.testing import drain

COUNTED = frozenset({events.ENQUEUED, events.STARTED, events.EXECUTION_ENDED, *events.JOB_OUTCOMES})

# (kind, queue, job_class, whether a duration came with it)
Tally = tuple[str, "str | None", "str | None", bool]


@pytest.fixture
def quiet() -> Iterator[None]:
    """No log lines for job events during the test: nothing else listens."""
    log_events.disable()
    try:
        yield
    finally:
        log_events.enable()


def counting() -> tuple[list[Tally], events.Counter]:
    found: list[Tally] = []
    lock = threading.Lock()

    def count(kind: str, queue: str | None, job_class: str | None, duration: float | None) -> None:
        assert duration is None or duration >= 0
        with lock:
            found.append((kind, queue, job_class, duration is not None))

    return found, count


def run_jobs() -> None:
    """A chain, a job failing for good and one that succeeds on its second try."""
    Parent.perform_later(1)
    Fails.perform_later()
    FailsUntilAttempt.perform_later(2)
    drain(until=3600)


@pytest.mark.parametrize("guarded", [False, True])
def test_a_counter_alone_is_told_what_a_subscriber_would_see(store: Store, quiet: None, guarded: bool) -> None:
    """A guarded counter (one that catches its own errors), alone, is called directly."""
    alone, count = counting()
    unsubscribe = events.subscribe_counter(count, COUNTED, guarded=guarded)
    try:
        assert events.wanted >= COUNTED
        assert not COUNTED & events.built, "only a counter listens: no event is built"
        run_jobs()
    finally:
        unsubscribe()
    assert not COUNTED & events.wanted

    beside, count = counting()
    heard: list[events.Event] = []
    unsubscribe_counter = events.subscribe_counter(count, COUNTED)
    unsubscribe = events.subscribe(heard.append, COUNTED)
    try:
        assert events.built >= COUNTED
        run_jobs()
    finally:
        unsubscribe()
        unsubscribe_counter()

    seen = [(e.kind, e.queue, e.job_class, e.duration is not None) for e in heard]
    assert Counter(beside) == Counter(seen), "built events are counted as they are announced"
    assert Counter(alone) == Counter(seen), "and the same figures come without building them"
    assert Counter(kind for kind, *_ in alone) == {
        events.ENQUEUED: 5,  # three, and the parent's two children
        events.STARTED: 8,  # Fails three times, FailsUntilAttempt twice
        events.EXECUTION_ENDED: 8,
        events.SUCCEEDED: 4,
        events.FAILED: 1,
        events.RETRIED: 3,
    }
    assert ("succeeded", "default", "jobs_core:Parent", True) in alone
    assert all(has_duration == (kind in events.JOB_OUTCOMES) for kind, _, _, has_duration in alone)


def test_a_failing_counter_changes_no_outcome_and_others_still_count(store: Store, quiet: None) -> None:
    def broken(kind: str, queue: str | None, job_class: str | None, duration: float | None) -> None:
        raise RuntimeError("counter bug")

    found, count = counting()
    unsubscribe_broken = events.subscribe_counter(broken, COUNTED)
    unsubscribe = events.subscribe_counter(count, COUNTED)
    try:
        handle = Child.perform_later("x")
        drain()
    finally:
        unsubscribe()
        unsubscribe_broken()
    assert handle.refresh().state == "succeeded"
    assert sorted(kind for kind, *_ in found) == ["enqueued", "execution_ended", "started", "succeeded"]


def test_a_counter_hears_only_its_kinds_and_nothing_once_unsubscribed(store: Store, quiet: None) -> None:
    found, count = counting()
    unsubscribe = events.subscribe_counter(count, {events.SUCCEEDED})
    Child.perform_later("a")
    drain()
    unsubscribe()
    Child.perform_later("b")
    drain()
    assert found == [("succeeded", "default", "jobs_core:Child", True)]
