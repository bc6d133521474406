"""API §2: defining jobs, perform_later and set(...), arguments and their serialization,
class paths, and what a job sees of itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

import onward
from jobs_core import (
    AsyncAdd,
    AsyncSteps,
    BadCursor,
    BadResult,
    Context,
    Echo,
    Mailer,
    RaisesFatal,
)
from onward import Job, JobHandle, SerializationError, Store
from onward.stores.base import JobFilter, NewJob
from onward.testing import drain

# -- perform_later ---------------------------------------------------------------------------


def test_perform_later_stores_the_job_and_returns_a_handle_at_once(store: Store) -> None:
    handle = Echo.perform_later(1, "two", three=3)
    assert isinstance(handle, JobHandle)
    assert isinstance(handle.id, str)
    record = handle.refresh()
    assert record.state == "enqueued"
    assert record.args == [1, "two"]
    assert record.kwargs == {"three": 3}
    assert record.attempts == 0
    assert record.started_at is None


def test_jobs_run_by_a_worker_receive_their_arguments(store: Store) -> None:
    handle = Echo.perform_later(1, "two", three=[3])
    drain()
    assert handle.refresh().result == {"args": [1, "two"], "kwargs": {"three": [3]}, "types": ["int", "str"]}


def test_queue_and_priority_default_to_default_and_zero(store: Store) -> None:
    record = Echo.perform_later().refresh()
    assert (record.queue, record.priority) == ("default", 0)


def test_queue_and_priority_come_from_the_class(store: Store) -> None:
    record = Mailer.perform_later().refresh()
    assert (record.queue, record.priority) == ("mailers", 5)


# -- set(...) ----------------------------------------------------------------------------------


def test_set_overrides_queue_and_priority(store: Store) -> None:
    record = Mailer.set(queue="urgent", priority=-3).perform_later().refresh()
    assert (record.queue, record.priority) == ("urgent", -3)


def test_set_returns_an_object_with_perform_later_and_perform_now(store: Store) -> None:
    configured = Echo.set(queue="other")
    assert configured.perform_now(1) == {"args": [1], "kwargs": {}, "types": ["int"]}
    handle = configured.perform_later(2)
    assert handle.refresh().queue == "other"


@pytest.mark.parametrize("wait", [timedelta(minutes=5), 300, 300.0])
def test_wait_schedules_the_job_later(store: Store, wait: timedelta | float) -> None:
    before = datetime.now(UTC)
    record = Echo.set(wait=wait).perform_later().refresh()
    after = datetime.now(UTC)
    assert record.state == "enqueued"
    assert before + timedelta(seconds=299) <= record.scheduled_at <= after + timedelta(seconds=301)
    assert record.scheduled_at - record.enqueued_at == pytest.approx(timedelta(seconds=300), abs=timedelta(seconds=1))


def test_wait_until_schedules_the_job_at_an_absolute_time(store: Store) -> None:
    when = datetime.now(timezone(timedelta(hours=-5))).replace(microsecond=0) + timedelta(hours=2)
    record = Echo.set(wait_until=when).perform_later().refresh()
    assert record.scheduled_at == when
    assert record.scheduled_at.tzinfo is not None


def test_a_naive_wait_until_raises_value_error(store: Store) -> None:
    with pytest.raises(ValueError, match="aware"):
        Echo.set(wait_until=datetime(2030, 1, 1, 12, 0))


def test_a_job_scheduled_for_later_does_not_run_before_its_time(store: Store) -> None:
    later = Echo.set(wait=3600).perform_later("later")
    past = Echo.set(wait_until=datetime.now(UTC) - timedelta(minutes=1)).perform_later("past")
    now = Echo.perform_later("now")
    assert drain() == 2
    assert later.refresh().state == "enqueued"
    assert past.refresh().state == "succeeded"
    assert now.refresh().state == "succeeded"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"wait": -1}, "wait"),
        ({"wait": "soon"}, "wait"),
        ({"queue": ""}, "queue"),
        ({"priority": "high"}, "priority"),
        ({"wait": 1, "wait_until": datetime.now(UTC)}, "wait_until"),
    ],
)
def test_bad_options_raise_value_error(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Echo.set(**options)  # type: ignore[arg-type]


# -- arguments and serialization ------------------------------------------------------------

TYPED = {
    "at": datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "utc": datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
    "naive": datetime(2026, 3, 4, 5, 6, 7),
    "day": date(2026, 3, 4),
    "id": UUID("0194fdc2-fa2f-4cc0-81d3-ff12045b73c8"),
    "amount": Decimal("12.50"),
    "pair": (1, 2),
    "nested": {"list": [Decimal("0.1"), {"when": date(2000, 1, 1)}], "none": None, "f": 1.5, "b": True},
}


def test_typed_values_round_trip_through_the_store_and_a_worker(store: Store) -> None:
    handle = Echo.perform_later(TYPED["at"], TYPED["id"], **TYPED)
    record = handle.refresh()
    assert record.args == [TYPED["at"], TYPED["id"]]
    drain()
    result = handle.refresh().result
    assert result["types"] == ["datetime", "UUID"]
    kwargs = result["kwargs"]
    for key in ("at", "utc", "naive", "day", "id", "amount", "nested"):
        assert kwargs[key] == TYPED[key], key
        assert type(kwargs[key]) is type(TYPED[key]), key
    assert kwargs["at"].utcoffset() == timedelta(hours=5, minutes=30)
    assert kwargs["naive"].tzinfo is None
    assert kwargs["pair"] == [1, 2]  # tuples come back as lists
    assert str(kwargs["amount"]) == "12.50"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"when": {1, 2}}, "kwargs['when']: set is not serializable"),
        ((b"raw",), {}, "args[0]: bytes is not serializable"),
        ((1, [object()]), {}, "args[1][0]: object is not serializable"),
        ((), {"m": {1: "a"}}, "kwargs['m']: dict key 1 (int) is not serializable"),
        ((float("nan"),), {}, "args[0]: float nan is not serializable"),
        ((), {"x": float("inf")}, "kwargs['x']: float inf is not serializable"),
    ],
)
def test_unserializable_arguments_are_refused_at_enqueue_naming_the_path(
    store: Store, args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(SerializationError) as info:
        Echo.perform_later(*args, **kwargs)
    assert message in str(info.value)
    assert store.list_jobs(_all()) == []  # nothing was stored


def test_unserializable_arguments_are_refused_by_perform_now_too(store: Store) -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['when'\]: set is not serializable"):
        Echo.perform_now(when={1})
    assert store.list_jobs(_all()) == []


def test_an_unserializable_result_fails_the_job_with_that_error(store: Store) -> None:
    handle = BadResult.perform_later()
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1  # not retried, although its policy allows 5 attempts
    last = record.error.splitlines()[-1] if record.error else ""
    assert last.startswith("onward.SerializationError: ")
    assert "result['ids']: set is not serializable" in last


def test_an_unserializable_cursor_is_refused_at_set_and_fails_the_job(store: Store) -> None:
    handle = BadCursor.perform_later()
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    assert "cursor['at']: bytes is not serializable" in (record.error or "")
    assert "'walk'" in (record.error or "")  # names the step


def test_an_unserializable_state_is_refused_at_checkpoint_and_fails_the_job(store: Store) -> None:
    handle = RaisesFatal.perform_later("SerializationError")
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    assert "self.state['bad']: set is not serializable" in (record.error or "")
    assert "RaisesFatal" in (record.error or "")


# -- class paths ----------------------------------------------------------------------------


def test_the_job_class_is_stored_by_import_path(store: Store) -> None:
    assert Echo.perform_later().refresh().job_class == "jobs_core:Echo"


def test_a_class_defined_inside_a_function_is_refused_at_perform_later(store: Store) -> None:
    class Local(Job):
        def perform(self) -> None:
            pass

    with pytest.raises(SerializationError) as info:
        Local.perform_later()
    assert "Local" in str(info.value)
    assert "module level" in str(info.value)
    assert store.list_jobs(_all()) == []


def test_a_class_the_worker_cannot_import_fails_only_that_job(store: Store) -> None:
    [missing] = store.enqueue([_raw_job("jobs_core_gone:Vanished")])
    [not_a_job] = store.enqueue([_raw_job("jobs_core:append_line")])
    good = Echo.perform_later("still runs")
    worker = onward.Worker(store=store)
    worker.run(burst=True)
    for job_id, name in ((missing, "jobs_core_gone:Vanished"), (not_a_job, "jobs_core:append_line")):
        record = store.get(job_id)
        assert record.state == "failed"
        last = (record.error or "").splitlines()[-1]
        assert last.startswith("onward.JobClassNotFound: ")
        assert name in last
    assert good.refresh().state == "succeeded"


def test_a_missing_attribute_in_a_known_module_is_job_class_not_found(store: Store) -> None:
    [job_id] = store.enqueue([_raw_job("jobs_core:NoSuchClass")])
    drain()
    record = store.get(job_id)
    assert record.state == "failed"
    assert record.attempts == 1
    assert "onward.JobClassNotFound: cannot import job class jobs_core:NoSuchClass" in (record.error or "")


# -- what a job sees ----------------------------------------------------------------------


def test_a_job_sees_its_id_attempt_resumptions_and_state(store: Store) -> None:
    handle = Context.perform_later()
    drain()
    assert handle.refresh().result == {"id": handle.id, "attempt": 1, "resumptions": 0, "state": {}}


def test_async_perform_runs_on_an_event_loop(store: Store) -> None:
    handle = AsyncAdd.perform_later(2, 3)
    drain()
    assert handle.refresh().result == 5


def test_async_jobs_await_steps_with_sync_or_async_step_functions(store: Store) -> None:
    handle = AsyncSteps.perform_later()
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.result == 3
    steps = [(s.name, s.status, s.cursor) for s in record.steps]
    assert steps == [("sync_fn", "completed", 1), ("async_fn", "completed", 3)]


# -- helpers ---------------------------------------------------------------------------------


def _all() -> JobFilter:
    return JobFilter(limit=1000)


def _raw_job(path: str) -> NewJob:
    """A stored job naming ``path``, as if enqueued by code the worker does not have."""
    from onward.job import new_id

    return NewJob(id=new_id(), job_class=path, queue="default", priority=0, args="[]", kwargs="{}", max_attempts=3)
