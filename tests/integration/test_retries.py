"""API §5: retries, discarding, errors that fail at once, lost workers, and the error text."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

import onward
from jobs_core import (
    CallableBackoff,
    Child,
    Discards,
    Fails,
    FailsUntilAttempt,
    FailsWithDefaultBackoff,
    NoResumptions,
    NotRetried,
    ProgressThenFailOnce,
    RaisesCustom,
    RaisesFatal,
    RetriesLater,
    StepThenFail,
    StuckOnce,
)
from onward import Store
from onward.job import new_id
from onward.serialization import to_json
from onward.stores.base import Checkpoint, NewJob
from onward.testing import drain, interrupt_during_step


def last_line(record: onward.JobRecord) -> str:
    assert record.error is not None
    return record.error.splitlines()[-1]


def test_a_failing_job_is_tried_attempts_times_then_failed(store: Store) -> None:
    handle = Fails.perform_later("boom")
    assert drain() == 3  # zero backoff: every retry runs in the same burst
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 3
    assert record.finished_at is not None
    assert last_line(record) == "builtins.ValueError: boom"


def test_a_job_that_succeeds_on_a_retry_keeps_the_last_error_for_the_record(store: Store) -> None:
    handle = FailsUntilAttempt.perform_later(3)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.result == 3
    assert record.attempts == 3
    assert last_line(record) == "builtins.ConnectionError: attempt 2 failed"


def test_an_exception_not_in_retry_on_fails_at_once(store: Store) -> None:
    handle = NotRetried.perform_later()
    assert drain() == 1
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    assert last_line(record) == "builtins.ValueError: not retryable"


def test_discard_on_marks_the_job_discarded_at_once(store: Store) -> None:
    handle = Discards.perform_later()
    assert drain() == 1
    record = handle.refresh()
    assert record.state == "discarded"
    assert record.attempts == 1
    assert last_line(record) == "builtins.KeyError: 'record gone'"


def test_backoff_in_seconds_schedules_the_retry_that_much_later(store: Store) -> None:
    handle = RetriesLater.perform_later()
    before = datetime.now(UTC)
    assert drain() == 1  # the retry is an hour away: the burst does not wait for it
    record = handle.refresh()
    assert record.state == "enqueued"  # waiting to retry
    assert record.attempts == 1
    assert before + timedelta(seconds=3599) <= record.scheduled_at <= datetime.now(UTC) + timedelta(seconds=3601)
    assert last_line(record) == "builtins.ConnectionError: down"


def test_backoff_from_a_callable(store: Store) -> None:
    handle = CallableBackoff.perform_later()
    assert drain() == 4
    record = handle.refresh()
    assert (record.state, record.attempts, record.result) == ("succeeded", 4, 4)


def test_the_default_backoff_waits_about_two_seconds_after_the_first_try(store: Store) -> None:
    handle = FailsWithDefaultBackoff.perform_later()
    drain()
    record = handle.refresh()
    assert record.state == "enqueued"
    assert record.started_at is not None
    wait = record.scheduled_at - record.started_at
    assert timedelta(seconds=1.5) <= wait <= timedelta(seconds=2.5 + 5)  # 2 s +-25 %, plus the run itself


@pytest.mark.parametrize(
    "kind", ["InvalidStep", "UnadvanceableCursor", "ResumeLimitExceeded", "SerializationError", "JobClassNotFound"]
)
def test_errors_that_retrying_cannot_help_fail_at_once(store: Store, kind: str) -> None:
    handle = RaisesFatal.perform_later(kind)  # its policy allows five attempts
    assert drain() == 1
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    assert record.resumptions == 0
    assert last_line(record).startswith(f"onward.{kind}: ")


def test_a_retried_job_keeps_its_progress(store: Store) -> None:
    handle = StepThenFail.perform_later()
    assert drain() == 2
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.attempts == 2  # an attempt, not a resumption (resume_errors_after_advancing = False)
    assert record.resumptions == 0
    # Step "a" ran once; step "b" started fresh, then continued at its saved cursor 3.
    assert record.result == {"a_runs": 1, "b_starts": [None, 3]}
    assert [(s.name, s.status, s.cursor, s.advanced) for s in record.steps] == [
        ("a", "completed", None, 0),
        ("b", "completed", 5, 5),
    ]


def test_an_error_after_progress_resumes_without_using_an_attempt(store: Store) -> None:
    handle = ProgressThenFailOnce.perform_later()  # a single attempt allowed
    assert drain() == 2
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("succeeded", 1, 1)
    assert last_line(record) == "builtins.ConnectionError: flaky"


def test_the_error_is_the_traceback_whose_last_line_is_module_type_message(store: Store) -> None:
    handle = RaisesCustom.perform_later("card declined")
    drain()
    record = handle.refresh()
    assert isinstance(record.error, str)
    assert record.error.startswith("Traceback (most recent call last):")
    assert "in perform" in record.error
    assert "raise PaymentDeclined(message)" in record.error
    assert last_line(record) == "jobs_core.PaymentDeclined: card declined"


# -- workers that die: leases ----------------------------------------------------------------


def expire(store: Store, lease: float = 0.05) -> tuple[str, str]:
    """Claim the ready job with a tiny lease and no heartbeat, as a worker that then died;
    return its id and the dead worker's token once another worker has taken it back."""
    [claimed] = store.claim("dead-worker", None, lease, 1)
    deadline = time.monotonic() + 10
    while store.reap_expired() == 0:
        assert time.monotonic() < deadline, "the expired lease was never taken back"
        time.sleep(lease / 2)
    return claimed.id, claimed.lease_token


def test_a_job_whose_worker_died_without_progress_is_retried_as_an_attempt(store: Store) -> None:
    handle = Child.perform_later("x")
    expire(store)
    record = handle.refresh()
    assert record.state == "enqueued"
    assert record.attempts == 1
    assert "worker lost: lease expired" in last_line(record)
    drain()
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("succeeded", 2, 0)
    assert "worker lost: lease expired" in last_line(record)  # kept after the later success


def test_a_job_whose_worker_died_after_saving_progress_resumes(store: Store) -> None:
    handle = Child.perform_later("x")
    [claimed] = store.claim("dead-worker", None, 0.05, 1)
    steps = to_json([{"name": "walk", "status": "running", "cursor": 2, "advanced": 2, "total": None}])
    store.save_checkpoint(claimed.id, claimed.lease_token, Checkpoint(steps, "{}", progressed=True))
    deadline = time.monotonic() + 10
    while store.reap_expired() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 1, 1)
    assert record.steps[0].status == "interrupted"
    assert record.steps[0].cursor == 2


def test_a_lost_worker_on_the_last_attempt_fails_the_job(store: Store) -> None:
    handle = StuckOnce.perform_later("unused")  # one attempt
    expire(store)
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    assert record.finished_at is not None
    assert last_line(record).endswith("worker lost: lease expired")


def test_a_job_that_keeps_killing_its_worker_cannot_loop_forever(store: Store) -> None:
    handle = Child.perform_later("x")  # three attempts
    [claimed] = store.claim("dead-worker", None, 0.05, 1)
    steps = to_json([{"name": "walk", "status": "running", "cursor": 1, "advanced": 1, "total": None}])
    store.save_checkpoint(claimed.id, claimed.lease_token, Checkpoint(steps, "{}", progressed=True))
    deadline = time.monotonic() + 10
    while store.reap_expired() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (handle.refresh().attempts, handle.refresh().resumptions) == (1, 1)  # that execution saved progress
    # Each later execution dies before saving anything: the progress of an earlier execution
    # does not make its reclaim a resumption, so the attempts run out.
    expire(store)
    expire(store)
    assert (handle.refresh().state, handle.refresh().attempts) == ("enqueued", 2)
    expire(store)
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("failed", 3, 1)
    assert last_line(record).endswith("worker lost: lease expired")


def test_a_worker_never_applies_its_own_lease_timeout_to_another_worker_s_job(store: Store) -> None:
    handle = Child.perform_later("x")
    store.claim("slow-but-alive", None, 60.0, 1)  # a live worker's lease: one minute
    time.sleep(0.1)  # longer than the impatient worker's lease, far shorter than the job's
    impatient = onward.Worker(store=store, lease_timeout=0.05)
    impatient.run(burst=True)  # looks for expired leases as it starts
    assert store.reap_expired() == 0
    record = handle.refresh()
    assert record.state == "running"
    assert record.attempts == 1
    assert impatient.executions == 0


# -- the errors (API §9) ---------------------------------------------------------------------

ERRORS = (
    onward.ConfigurationError,
    onward.SerializationError,
    onward.JobClassNotFound,
    onward.InvalidStep,
    onward.UnadvanceableCursor,
    onward.ResumeLimitExceeded,
)


@pytest.mark.parametrize("error", ERRORS)
def test_every_error_derives_from_onward_error_and_is_exported(error: type[Exception]) -> None:
    assert issubclass(error, onward.OnwardError)
    assert error.__name__ in onward.__all__
    assert getattr(onward, error.__name__) is error


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("InvalidStep", ["RaisesFatal", "step name"]),
        ("UnadvanceableCursor", ["RaisesFatal", "step 'walk'", "'a'"]),
        ("SerializationError", ["RaisesFatal", "self.state['bad']"]),
    ],
)
def test_error_messages_say_what_was_wrong_and_where(store: Store, kind: str, where: list[str]) -> None:
    handle = RaisesFatal.perform_later(kind)
    drain()
    message = last_line(handle.refresh())
    assert message.startswith(f"onward.{kind}: ")
    for part in where:
        assert part in message


def test_resume_limit_exceeded_names_the_job_and_the_limit(store: Store) -> None:
    handle = NoResumptions.perform_later(5)
    with interrupt_during_step(NoResumptions, "count", cursor=2):
        drain()
    record = handle.refresh()
    assert record.state == "failed"
    message = last_line(record)
    assert message.startswith("onward.ResumeLimitExceeded: NoResumptions")
    assert "max_resumptions=0" in message


def test_job_class_not_found_names_the_stored_path(store: Store) -> None:
    [job_id] = store.enqueue([NewJob(new_id(), "gone_module:Gone", "default", 0, "[]", "{}", 3)])
    drain()
    message = last_line(store.get(job_id))
    assert message.startswith("onward.JobClassNotFound: ")
    assert "gone_module:Gone" in message
