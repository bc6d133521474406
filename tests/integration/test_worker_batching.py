"""How a busy worker saves commits without changing what users see: successes committed in
batches (``complete_many``), and short jobs prefetched in one claim and given back unstarted,
with no attempt used, when the worker stops."""

from __future__ import annotations

import dataclasses
import functools
import threading

import pytest

import waiting
from jobs_core import Echo, WaitsForEvent, event, unique_names
from onward import Store, Worker, lanes
from onward.completions import Completer
from onward.execution import Execution
from onward.stores.base import Checkpoint, Claimed, Completion, JobFilter, NewJob
from onward.testing import drain

NO_PROGRESS = Checkpoint(None, None, False)


poll = functools.partial(waiting.poll, timeout=20.0, interval=0.005)


def new_job(n: int) -> NewJob:
    return NewJob(id=f"job-{n}", job_class="jobs_core:Echo", queue="default", priority=0, args=f"[{n}]",
                  kwargs="{}", max_attempts=3)  # fmt: skip


def test_many_successes_in_one_commit_are_each_recorded(store: Store) -> None:
    handles = Echo.perform_all_later([(i,) for i in range(200)])
    assert drain() == 200
    records = [h.refresh() for h in handles]
    assert {r.state for r in records} == {"succeeded"}
    assert [r.result["args"] for r in records] == [[i] for i in range(200)]
    assert all(r.finished_at is not None and r.attempts == 1 for r in records)


def test_complete_many_refuses_a_job_whose_lease_was_taken(store: Store) -> None:
    store.enqueue([new_job(1), new_job(2)])
    first, second = store.claim("w", None, 30.0, 2)
    lost = store.complete_many(  # type: ignore[attr-defined]
        [
            Completion(first.id, first.lease_token, '"done"', NO_PROGRESS),
            Completion(second.id, "not-the-token", '"done"', NO_PROGRESS),
        ]
    )
    assert lost == {second.id}
    assert store.get(first.id).state == "succeeded"
    assert store.get(first.id).result == "done"
    assert store.get(second.id).state == "running"  # untouched: its real owner still runs it


def test_complete_many_inserts_the_continuations_of_written_successes_only(store: Store) -> None:
    store.enqueue([new_job(1), new_job(2)])
    first, second = store.claim("w", None, 30.0, 2)
    later = dataclasses.replace(new_job(11), delay=3600.0)
    lost = store.complete_many(
        [
            Completion(first.id, first.lease_token, '"done"', NO_PROGRESS, None, [new_job(10), later]),
            Completion(second.id, "not-the-token", '"done"', NO_PROGRESS, None, [new_job(20)]),
        ]
    )
    assert lost == {second.id}
    children = store.list_jobs(JobFilter(parent_id=first.id))
    assert sorted(c.id for c in children) == ["job-10", "job-11"]
    assert all(c.state == "enqueued" for c in children)
    success = store.get(first.id).finished_at
    assert success is not None
    delayed = store.get("job-11")
    assert abs((delayed.scheduled_at - success).total_seconds() - 3600.0) < 1.0  # counted from the success
    assert store.list_jobs(JobFilter(parent_id=second.id)) == []  # a lost success adds nothing


def test_chains_run_by_a_batching_worker_enqueue_each_continuation_once(store: Store) -> None:
    from jobs_core import ChainLink

    ChainLink.perform_all_later([(chain, 0) for chain in range(30)])
    Worker(store=store, concurrency=2).run(burst=True)
    records = store.list_jobs(JobFilter(limit=1000))
    assert len(records) == 30 * 5
    assert {r.state for r in records} == {"succeeded"}
    links = sorted((r.args[0], r.args[1]) for r in records)
    assert links == sorted((chain, step) for chain in range(30) for step in range(5))


def test_unclaim_puts_a_job_back_as_if_never_claimed(store: Store) -> None:
    store.enqueue([new_job(1)])
    [claimed] = store.claim("w", None, 30.0, 1)
    assert store.get(claimed.id).attempts == 1
    store.unclaim([(claimed.id, claimed.lease_token)])  # type: ignore[attr-defined]
    record = store.get(claimed.id)
    assert record.state == "enqueued"
    assert record.attempts == 0
    [again] = store.claim("w", None, 30.0, 1)
    assert again.id == claimed.id
    assert again.attempts == 1


def test_prefetched_jobs_go_back_unstarted_when_the_worker_stops(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lanes, "PREFETCH_BELOW", 1e9)  # prefetch whatever the jobs' duration
    started, go = unique_names("started", "go")
    Echo.perform_later("first")  # once it has run, the worker knows its jobs are short
    waiting = WaitsForEvent.perform_later(started, go)
    queued = Echo.perform_all_later([(i,) for i in range(6)])
    w = Worker(concurrency=1, store=store, shutdown_timeout=30)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        assert event(started).wait(20)
        running = lambda: store.list_jobs(JobFilter(state="running", limit=100))  # noqa: E731
        poll(lambda: len(running()) >= 3, what="jobs prefetched behind the running one")
    finally:
        w.stop()
        event(go).set()
        thread.join(30)
    assert not thread.is_alive()
    assert waiting.refresh().state == "succeeded"
    records = [h.refresh() for h in queued]
    assert "running" not in {r.state for r in records}
    given_back = [r for r in records if r.state == "enqueued"]
    assert len(given_back) >= 2
    assert all(r.attempts == 0 for r in given_back)  # never started: no attempt used
    drain()
    assert {h.refresh().attempts for h in queued} == {1}


@pytest.mark.parametrize("queues", [None, ["default"], ["other", "default"]])
def test_a_claim_after_one_that_found_nothing_sees_new_jobs(store: Store, queues: list[str] | None) -> None:
    assert store.claim("w", queues, 30.0, 5) == []  # idle: the next claim looks before locking
    store.enqueue([new_job(1), new_job(2)])
    claimed = store.claim("w", queues, 30.0, 5)
    assert sorted(c.id for c in claimed) == ["job-1", "job-2"]
    assert store.claim("w", queues, 30.0, 5) == []


def test_successes_committed_from_several_threads_at_once_are_each_reported_once(store: Store) -> None:
    store.enqueue([new_job(n) for n in range(200)])
    claimed = store.claim("w", None, 30.0, 200)
    reported: list[tuple[str, bool]] = []
    completer = Completer(store, lambda batch, lost: reported.extend((c.id, c.id in lost) for _, c in batch))
    try:

        def hand_over(part: list[Claimed]) -> None:
            for job in part:
                completer.add(Execution(store, job), '"ok"', NO_PROGRESS, None, [])
                completer.commit_here()  # as a worker thread does before it claims

        threads = [threading.Thread(target=hand_over, args=(claimed[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert completer.flush(30)
    finally:
        completer.close()
    assert sorted(reported) == sorted((job.id, False) for job in claimed)
    assert {store.get(job.id).state for job in claimed} == {"succeeded"}
