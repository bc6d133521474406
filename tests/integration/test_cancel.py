"""Cancellation (API §12) on both stores: enqueued jobs at once, running jobs at their next
safe point, async jobs through their task, and the races with completion, retries and
reclaims."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import onward
import waiting
from jobs_cancel import FailsOnce, Keyed, Looping, Polling, Quick, Sleeping
from onward import Store, Worker, lifecycle
from onward.admin import Admin
from onward.lifecycle import CancelEffect
from onward.stores.base import Checkpoint, JobFilter
from onward.testing import drain

poll = functools.partial(waiting.poll, timeout=30.0, interval=0.005)


@pytest.fixture
def worker(store: Store) -> Iterator[Worker]:
    """A worker running in a thread of this process, stopped after the test."""
    w = Worker(store=store, lease_timeout=3.0, shutdown_timeout=5.0)
    thread = threading.Thread(target=w.run)
    thread.start()
    yield w
    w.stop()
    thread.join(30)
    assert not thread.is_alive()


# -- jobs that are not running ---------------------------------------------------------------


def test_an_enqueued_job_is_cancelled_at_once_and_never_runs(store: Store, tmp_path: Path) -> None:
    handle = Looping.perform_later(str(tmp_path))
    record = handle.cancel()
    assert record.state == "cancelled"
    assert record.finished
    assert record.cancel_requested_at is not None
    assert record.finished_at is not None
    Worker(store=store).run(burst=True)
    assert not (tmp_path / "started").exists()
    assert handle.refresh().state == "cancelled"


def test_a_scheduled_job_and_one_waiting_for_its_retry_are_cancelled_at_once(store: Store) -> None:
    later = Keyed.set(wait=3600).perform_later("later")
    retrying = FailsOnce.perform_later()
    Worker(store=store).run(burst=True)  # the first try fails; the retry waits 600 s
    assert (retrying.refresh().state, retrying.refresh().attempts) == ("enqueued", 1)
    assert onward.cancel(later.id).state == "cancelled"
    record = onward.cancel(retrying.id)
    assert (record.state, record.attempts) == ("cancelled", 1)
    assert "ConnectionError" in (record.error or "")  # the last error stays for the record
    drain(until=timedelta(hours=2))
    assert retrying.refresh().state == "cancelled"
    assert later.refresh().state == "cancelled"


def test_cancelling_a_finished_job_changes_nothing(store: Store) -> None:
    handle = Quick.perform_later(1)
    Worker(store=store).run(burst=True)
    before = handle.refresh()
    after = handle.cancel()
    assert (after.state, after.result, after.finished_at, after.cancel_requested_at) == (
        "succeeded",
        1,
        before.finished_at,
        None,
    )


def test_cancelling_an_unknown_job_raises_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        onward.cancel("no-such-job")


def test_a_cancelled_unique_job_frees_its_key(store: Store) -> None:
    first = Keyed.perform_later("k")
    assert Keyed.perform_later("k") == first  # live: the same job
    first.cancel()
    second = Keyed.perform_later("k")
    assert second.id != first.id
    Worker(store=store).run(burst=True)
    assert (first.refresh().state, second.refresh().state) == ("cancelled", "succeeded")


# -- running jobs ------------------------------------------------------------------------------


def test_a_running_stepped_job_stops_at_its_next_advance_keeping_progress(
    store: Store, tmp_path: Path, worker: Worker
) -> None:
    handle = Looping.perform_later(str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    requested = handle.cancel()
    assert requested.cancel_requested_at is not None
    assert requested.state in ("running", "cancelled")  # it may already have noticed
    record = handle.wait(10)
    assert record.state == "cancelled"
    assert record.steps[0].name == "loop"
    assert record.steps[0].status == "interrupted"
    assert record.steps[0].cursor >= 1  # progress kept
    assert record.error is None
    assert record.attempts == 1
    assert not (tmp_path / "after").exists()
    assert not (tmp_path / "continued").exists()
    assert record.children == ()


def test_a_job_without_steps_sees_self_cancelled_and_ends_cancelled(
    store: Store, tmp_path: Path, worker: Worker
) -> None:
    handle = Polling.perform_later(str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    handle.cancel()
    record = handle.wait(10)
    assert (tmp_path / "noticed").exists()
    assert (record.state, record.result) == ("cancelled", None)


def test_an_async_job_s_task_is_cancelled(store: Store, tmp_path: Path, worker: Worker) -> None:
    handle = Sleeping.perform_later(str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    handle.cancel()
    record = handle.wait(10)
    assert (tmp_path / "cancelled-error").exists()
    assert record.state == "cancelled"
    assert record.error is None


def test_retrying_a_cancelled_job_resumes_its_progress(store: Store, tmp_path: Path, worker: Worker) -> None:
    handle = Looping.perform_later(str(tmp_path))
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    handle.cancel()
    cursor = handle.wait(10).steps[0].cursor
    (tmp_path / "started").unlink()
    retried = Admin(store).retry(handle.id)
    assert (retried.state, retried.cancel_requested_at) in (("enqueued", None), ("running", None))
    poll(lambda: (tmp_path / "started").exists(), what="the job to run again")
    record = handle.refresh()
    assert record.resumptions >= 0
    assert record.steps[0].cursor >= cursor
    handle.cancel()
    assert handle.wait(10).state == "cancelled"


# -- races, decided by the guarded transition ---------------------------------------------------


def test_a_success_committed_while_a_cancel_arrives_stands(store: Store) -> None:
    handle = Quick.perform_later(7)
    [claimed] = store.claim("w", None, 30.0, 1)
    assert store.cancel_job(handle.id) == CancelEffect.REQUEST  # the worker has not noticed yet
    store.complete(claimed.id, claimed.lease_token, "7", Checkpoint(None, None, False), [], None)
    record = handle.refresh()
    assert (record.state, record.result) == ("succeeded", 7)
    assert record.cancel_requested_at is not None  # kept, for the record
    assert store.cancel_job(handle.id) == CancelEffect.NONE


def test_a_job_given_back_while_a_cancel_is_pending_is_cancelled_instead(store: Store) -> None:
    jobs = [Quick.perform_later(n) for n in range(3)]
    claimed = store.claim("w", None, 30.0, 3)
    for job in jobs:
        store.cancel_job(job.id)
    by_id = {c.id: c for c in claimed}
    first, second, third = (by_id[j.id] for j in jobs)
    store.retry(first.id, first.lease_token, Checkpoint(None, None, False), "boom", 0.0, False)
    store.release(second.id, second.lease_token)
    store.unclaim([(third.id, third.lease_token)])
    assert [j.refresh().state for j in jobs] == ["cancelled"] * 3
    Worker(store=store).run(burst=True)
    assert [j.refresh().state for j in jobs] == ["cancelled"] * 3


def test_a_job_whose_lease_expired_with_a_cancel_pending_is_cancelled_by_the_reaper(store: Store) -> None:
    handle = Quick.perform_later(1)
    assert len(store.claim("dead-worker", None, 0.05, 1)) == 1
    store.cancel_job(handle.id)
    poll(lambda: store.reap_expired() > 0, what="the lease to expire")
    record = handle.refresh()
    assert (record.state, record.result) == ("cancelled", None)


def test_perform_now_of_a_job_cancelled_while_it_runs_raises_job_cancelled(store: Store, tmp_path: Path) -> None:
    raised: list[BaseException] = []

    def call() -> None:
        try:
            Polling.perform_now(str(tmp_path))
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    [record] = store.list_jobs(JobFilter(state="running"))
    onward.cancel(record.id)
    thread.join(10)
    assert len(raised) == 1
    assert isinstance(raised[0], onward.JobCancelled)
    assert onward.get_job(record.id).state == "cancelled"


def test_the_lifecycle_table_of_cancellation() -> None:
    assert lifecycle.cancel_effect("enqueued") == CancelEffect.CANCEL
    assert lifecycle.cancel_effect("running") == CancelEffect.REQUEST
    for state in ("succeeded", "failed", "discarded", "cancelled"):
        assert lifecycle.cancel_effect(state) == CancelEffect.NONE
    assert lifecycle.allows("cancelled", "retry")
    assert not lifecycle.allows("cancelled", "cancel")
    decided = lifecycle.after_lost_lease(
        progressed=True, attempts=1, max_attempts=3, resumptions=0, max_resumptions=None, cancel_requested=True
    )
    assert decided.verdict == lifecycle.Verdict.CANCEL
