"""Worker reliability: a graceful stop applies the retry policy (API §5, §7)."""

from __future__ import annotations

import threading

from jobs_core import event, unique_names
from jobs_reliability import WaitsOnceForEvent
from onward import Store, Worker, lifecycle
from onward.stores.base import NewJob


def test_a_job_released_at_the_shutdown_timeout_with_no_attempt_left_fails(store: Store) -> None:
    started, go = unique_names("started", "go")
    handle = WaitsOnceForEvent.perform_later(started, go)
    worker = Worker(store=store, shutdown_timeout=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert event(started).wait(10)
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()
    record = handle.refresh()
    assert (record.state, record.attempts) == ("failed", 1)  # not "attempt 2 of 1" after the stop
    assert record.error == lifecycle.STOPPED_ERROR
    assert record.error.endswith("worker stopped before the job finished")
    event(go).set()


def test_a_released_job_with_attempts_left_goes_back_as_the_next_attempt(store: Store) -> None:
    store.enqueue([NewJob("j1", "jobs_core:Echo", "default", 0, "[]", "{}", 2)])
    [claimed] = store.claim("w", None, 30.0, 1)
    store.release(claimed.id, claimed.lease_token)
    assert store.get("j1").state == "enqueued"
    [again] = store.claim("w", None, 30.0, 1)
    assert again.attempts == 2
    store.release(again.id, again.lease_token)
    record = store.get("j1")
    assert (record.state, record.error) == ("failed", lifecycle.STOPPED_ERROR)
