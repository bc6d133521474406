"""Per-job ``timeout`` (API §5): a job running longer is abandoned, fails that try with
``JobTimeout`` (retried by its policy), gives its slot back at once, and whatever the
abandoned code writes later is refused. Async jobs have their task cancelled."""

from __future__ import annotations

import math
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from jobs_reliability import HangsFirstTime, Sleeps, SleepsAsync
from onward import Job, JobTimeout, Store, Worker
from onward.execution import Outcome


def test_a_job_past_its_timeout_fails_that_try_and_its_slot_is_given_back_at_once(store: Store, tmp_path: Path) -> None:
    handle = HangsFirstTime.perform_later(str(tmp_path))
    worker = Worker(store=store, concurrency=1)
    started = time.monotonic()
    worker.run(burst=True)  # one lane: attempt 2 can only run if the stuck lane was replaced
    assert time.monotonic() - started < 15
    record = handle.refresh()
    assert (record.state, record.attempts, record.result) == ("succeeded", 2, 2)
    assert record.error is not None
    assert "onward.JobTimeout: HangsFirstTime ran longer than its timeout of 0.5 s" in record.error
    assert worker.outcomes[Outcome.RETRYING] == 1
    (tmp_path / "go").touch()  # the abandoned thread goes on now, and must change nothing
    abandoned = [t for t in threading.enumerate() if t.name == "onward-job-0"]
    for thread in abandoned:
        thread.join(10)
    assert not any(t.is_alive() for t in abandoned)
    assert "abandoned code ran on" not in (handle.refresh().job_state or {})
    assert handle.refresh().steps == []


def test_set_timeout_applies_to_one_job_and_the_policy_decides(store: Store) -> None:
    quick = Sleeps.set(timeout=timedelta(seconds=0.3)).perform_later(30)
    unlimited = Sleeps.perform_later(0.5)
    Worker(store=store, concurrency=2).run(burst=True)
    record = quick.refresh()
    assert (record.state, record.attempts) == ("failed", 1)  # Retry(attempts=1): no other try
    assert record.error is not None
    assert record.error.rstrip().endswith(
        "onward.JobTimeout: Sleeps ran longer than its timeout of 0.3 s and was abandoned"
    )
    assert unlimited.refresh().state == "succeeded"


def test_an_async_job_is_cancelled_at_its_timeout(store: Store) -> None:
    handle = SleepsAsync.perform_later(30)
    started = time.monotonic()
    Worker(store=store).run(burst=True)
    assert time.monotonic() - started < 10
    record = handle.refresh()
    assert record.state == "failed"
    assert record.error is not None
    assert "onward.JobTimeout: SleepsAsync ran longer than its timeout of 0.3 s" in record.error


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "5", True, timedelta(0)])
def test_a_bad_timeout_is_refused_when_given(store: Store, bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Sleeps.set(timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"BadTimeout\.timeout"):
        type("BadTimeout", (Job,), {"timeout": bad, "perform": lambda self: None})
    assert store.count_jobs() == []  # nothing was stored
    assert JobTimeout.__module__ == "onward"
