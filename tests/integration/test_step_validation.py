"""Step validation: every misuse fails the job at once with ``InvalidStep`` naming the step."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import jobs_step_rules as rules
import jobs_steps as js
import onward
from onward.testing import drain, interrupt_after_step, interrupt_during_step


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    js.reset()
    yield
    js.reset()


def failed_at_once(handle: onward.JobHandle, error_type: str = "onward.InvalidStep") -> str:
    """The last line of the job's error, after checking it failed without retry or resume."""
    record = handle.refresh()
    assert record.state == "failed"
    assert record.attempts == 1
    assert record.resumptions <= 1  # only the interruption the test itself caused
    assert record.error is not None
    last = record.error.splitlines()[-1]
    assert last.startswith(error_type + ":")
    assert "Shapes" in last  # names the job class
    return last


@pytest.mark.parametrize(
    ("shape", "names"),
    [
        ("duplicate", ["'a'", "already"]),
        ("nested", ["'inner'", "'outer'"]),
        ("empty_name", ["''", "non-empty str"]),
        ("name_not_str", ["5", "non-empty str"]),
        ("missing_method", ["'nothing_here'", "no method"]),
        ("two_params", ["'two'", "0 or 1 positional"]),
        ("keyword_only", ["'kw'", "0 or 1 positional"]),
        ("not_callable", ["'nc'", "not callable"]),
        ("async_in_sync", ["'asy'", "async def perform"]),
    ],
)
def test_invalid_step_fails_at_once_naming_the_step(store: onward.Store, shape: str, names: list[str]) -> None:
    handle = rules.Shapes.perform_later(shape)
    drain()
    last = failed_at_once(handle)
    for fragment in names:
        assert fragment in last
    assert handle.refresh().resumptions == 0


def test_invalid_step_after_progress_is_not_resumed(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("duplicate")  # "a" completes (progress), then "a" again
    drain()
    failed_at_once(handle)
    assert handle.refresh().resumptions == 0
    assert js.events("ran") == [("ran", "noop")]


def test_a_start_that_cannot_be_stored_names_the_step(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("bad_start")
    drain()
    last = failed_at_once(handle, "onward.SerializationError")
    assert "'st'" in last
    assert "set is not serializable" in last


def test_the_method_named_like_the_step_is_the_default_function(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("method_default")
    drain()
    assert handle.refresh().state == "succeeded"
    assert js.events("ran") == [("ran", "noop")]


def test_completed_step_reached_out_of_order(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("resume_swapped")
    with interrupt_after_step(rules.Shapes, "b"):
        drain()
    last = failed_at_once(handle)
    assert "completed step 'b' reached out of order" in last
    assert "fresh=True" in last  # the way out after a code change


def test_new_step_reached_before_a_completed_one(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("resume_new_before_completed")
    with interrupt_after_step(rules.Shapes, "a"):
        drain()
    last = failed_at_once(handle)
    assert "new step 'z' reached before completed step 'a'" in last


def test_different_step_reached_before_the_one_in_progress(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("resume_other_before_in_progress")
    with interrupt_during_step(rules.Shapes, "b", cursor=2):
        drain()
    last = failed_at_once(handle)
    assert "step 'c' reached before step 'b', which is in progress" in last
    assert handle.refresh().steps[1].cursor == 2  # progress kept for a fixed deploy


def test_steps_added_after_the_last_completed_one_are_allowed(store: onward.Store) -> None:
    handle = rules.Shapes.perform_later("resume_added_after_completed")
    with interrupt_after_step(rules.Shapes, "a"):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert [s.name for s in record.steps] == ["a", "x", "b", "c"]
    assert all(s.status == "completed" for s in record.steps)


def test_step_outside_a_running_job_is_refused() -> None:
    with pytest.raises(RuntimeError, match="while the job runs"):
        rules.Shapes().step("a", rules.Shapes().noop)
