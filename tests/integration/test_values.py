"""API §9: values Onward refuses. Times out of range, priorities, queue names, nesting, huge
ints: each refused at enqueue with ``ValueError``/``SerializationError`` naming it, the same
answer on every store, and nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import onward
from jobs_core import Echo
from onward import Job, SerializationError, Store
from onward.stores.base import JobFilter


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


PLUS_14 = timezone(timedelta(hours=14))

BAD_OPTIONS = [
    ({"wait": float("inf")}, "wait"),
    ({"wait": 1e300}, "wait"),
    ({"wait": float("nan")}, "wait"),
    ({"wait": timedelta.max}, "wait"),
    ({"wait": 10**400}, "wait"),
    ({"wait_until": datetime.max.replace(tzinfo=UTC)}, "wait_until"),
    ({"wait_until": datetime.min.replace(tzinfo=PLUS_14)}, "wait_until"),
    ({"priority": 2**63}, "priority"),
    ({"priority": 2**31}, "priority"),
    ({"priority": -(2**31) - 1}, "priority"),
    ({"queue": "a\x00b"}, "queue"),
    ({"queue": "line\nbreak"}, "queue"),
    ({"queue": "a\udc80"}, "queue"),
    ({"queue": "q" * 1_000_000}, "queue"),
    ({"queue": "q" * 201}, "queue"),
]


def _count(store: Store) -> int:
    return len(store.list_jobs(JobFilter(limit=1000)))


@pytest.mark.parametrize(("options", "field"), BAD_OPTIONS, ids=[f"{o}"[:40] for o, _ in BAD_OPTIONS])
def test_out_of_range_options_are_refused_at_enqueue_naming_the_field(
    store: Store, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=rf"Echo\.set: {field}\b") as caught:
        Echo.set(**options).perform_later()
    assert not isinstance(caught.value, SerializationError)
    assert _count(store) == 0


def test_the_edges_of_the_limits_are_accepted(store: Store) -> None:
    Echo.set(priority=2**31 - 1, queue="q" * 200).perform_later()
    Echo.set(priority=-(2**31), queue="é-ü queue").perform_later()
    Echo.set(wait=timedelta(days=365 * 1000)).perform_later()
    Echo.set(wait_until=datetime(9999, 1, 1, tzinfo=UTC)).perform_later()
    Echo.set(wait_until=datetime(1, 1, 3, tzinfo=UTC)).perform_later()
    Echo.perform_later(nested(100), 10**4299, {"k": nested(99)})
    records = store.list_jobs(JobFilter(limit=10))
    assert len(records) == 6
    assert {r.priority for r in records} >= {2**31 - 1, -(2**31)}


BAD_ARGUMENTS = [
    ((10**5000,), {}, r"args\[0\]: int of about 5,000 digits"),
    ((-(10**4300),), {}, r"args\[0\]: int"),
    ((nested(900),), {}, r"args\[0\]\[0\].*nested deeper than 100 levels"),
    ((nested(101),), {}, r"args\[0\]\[0\].*nested deeper than 100 levels"),
    ((), {"deep": {"a": nested(100)}}, r"kwargs\['deep'\]\['a'\].*nested deeper than 100"),
    ((float("nan"),), {}, r"args\[0\]: float nan"),
    (("a\udc80",), {}, r"args\[0\]: str with a lone surrogate"),
]


@pytest.mark.parametrize(("args", "kwargs", "match"), BAD_ARGUMENTS, ids=[m[:30] for *_, m in BAD_ARGUMENTS])
def test_arguments_past_the_limits_are_refused_naming_class_and_argument(
    store: Store, args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(SerializationError, match=r"^Echo: " + match):
        Echo.perform_later(*args, **kwargs)
    assert _count(store) == 0


def test_a_self_referencing_argument_is_refused_not_a_recursion_error(store: Store) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="nested deeper than 100"):
        Echo.perform_later(loop)


def test_huge_arguments_are_refused_by_size(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from onward import serialization

    monkeypatch.setattr(serialization, "MAX_SIZE", 1000)
    with pytest.raises(SerializationError, match=r"args: 2,00\d characters once encoded"):
        Echo.perform_later("x" * 2000)
    assert _count(store) == 0


def test_class_level_queue_and_priority_follow_the_same_rules() -> None:
    with pytest.raises(ValueError, match=r"BadPriority\.priority must be between"):

        class BadPriority(Job):
            priority = 2**40

    with pytest.raises(ValueError, match=r"BadQueue\.queue .* control character"):

        class BadQueue(Job):
            queue = "tab\there"


def test_a_unique_key_with_a_nul_is_refused(store: Store) -> None:
    class KeyedByArgument(Echo):
        def unique_key(self, key: str) -> str:  # type: ignore[override]
            return key

    KeyedByArgument.__qualname__ = "KeyedByArgument"  # importable name is not needed to refuse
    with pytest.raises((ValueError, SerializationError), match="unique_key"):
        onward.job.Configured(KeyedByArgument, onward.job.NO_OPTIONS).new_job(("a\x00b",), {})


# -- readers survive any row ---------------------------------------------------------------


def test_a_row_with_times_out_of_range_reads_at_the_bounds(store: Store) -> None:
    import rawsql

    job_id = Echo.perform_later().id
    rawsql.poison_times(store, job_id)
    record = onward.get_job(job_id)
    assert record.scheduled_at == datetime(9999, 12, 30, tzinfo=UTC)
    assert record.enqueued_at == datetime(9999, 12, 30, tzinfo=UTC)
    assert record.finished_at == datetime(1, 1, 2, tzinfo=UTC)
    assert [r.id for r in store.list_jobs(JobFilter())] == [job_id]


def test_a_worker_claims_and_runs_a_due_job_whose_other_times_are_out_of_range(store: Store) -> None:
    import rawsql

    poisoned = Echo.perform_later("poisoned").id
    healthy = Echo.perform_later("healthy").id
    rawsql.poison_times(store, poisoned, due=True)
    onward.Worker(lease_timeout=5).run(burst=True)
    assert onward.get_job(poisoned).state == "succeeded"
    assert onward.get_job(healthy).state == "succeeded"


# -- job classes a worker could not import -----------------------------------------------

MAIN_CLASS = """
import sys
import onward
onward.connect(sys.argv[-1])
class FromMain(onward.Job):
    def perform(self):
        pass
try:
    FromMain.perform_later()
except onward.SerializationError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_class_from_python_c_or_stdin_is_refused_at_enqueue_with_the_reason(
    store: Store, store_url: str, subprocess_env: dict[str, str], how: str
) -> None:
    import subprocess
    import sys

    if how == "-c":
        command, given = [sys.executable, "-c", MAIN_CLASS, store_url], None
    else:
        command, given = [sys.executable, "-", store_url], MAIN_CLASS
    done = subprocess.run(command, input=given, env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: __main__:FromMain: a job class defined in code run from" in done.stdout
    assert "define it in a module" in done.stdout
    assert _count(store) == 0


def test_a_class_from_a_script_is_still_stored_by_the_script_name(
    store: Store, store_url: str, subprocess_env: dict[str, str], tmp_path: Any
) -> None:
    import subprocess
    import sys

    script = tmp_path / "enqueue_from_script.py"
    script.write_text(MAIN_CLASS.replace('print("refused:", exc)', "raise"), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), store_url], env=subprocess_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    [record] = store.list_jobs(JobFilter())
    assert record.job_class == "enqueue_from_script:FromMain"


@pytest.mark.parametrize("queues", [["ok", "a\x00b"], ["q" * 201], [""]])
def test_a_worker_refuses_queue_names_no_job_could_have(queues: list[str]) -> None:
    with pytest.raises(ValueError, match="queues"):
        onward.Worker(queues=queues)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"lease_timeout": float("nan")}, "lease_timeout"),
        ({"lease_timeout": float("inf")}, "lease_timeout"),
        ({"shutdown_timeout": 1e300}, "shutdown_timeout"),
        ({"concurrency": 10**6}, "concurrency"),
    ],
)
def test_a_worker_refuses_timeouts_and_concurrency_out_of_range(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        onward.Worker(**options)


def test_a_row_with_values_that_cannot_be_decoded_still_reads(store: Store) -> None:
    import rawsql

    job_id = Echo.perform_later(1).id
    rawsql.execute(
        store,
        "UPDATE onward_jobs SET args = ?, kwargs = ?, steps = ?, job_state = ? WHERE id = ?",
        ("[1,", '{"$t": "nope", "v": 1}', '{"not": "a list"}', "[[[", job_id),
    )
    record = onward.get_job(job_id)
    assert record.args == "[1,"  # the raw text
    assert record.kwargs == '{"$t": "nope", "v": 1}'
    assert record.steps == []
    assert [r.id for r in store.list_jobs(JobFilter())] == [job_id]
