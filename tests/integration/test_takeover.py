"""Taking over a dead worker process's jobs at once (``Store.take_over``, ``onward.journal``):
on both stores, what it started is decided as after a lost lease, its uncommitted successes
are committed, what it only held goes back without using an attempt, and no other worker's
job is touched."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onward import Store, lifecycle
from onward.journal import Journal, read_journal
from onward.stores.base import Checkpoint, Completion, NewJob
from onward.takeover import TakeOver


def new_job(job_id: str, max_attempts: int = 3) -> NewJob:
    return NewJob(job_id, "jobs_core:Echo", "default", 0, "[]", "{}", max_attempts)


def test_a_dead_workers_jobs_are_taken_over_by_what_they_were(store: Store) -> None:
    store.enqueue([new_job(i) for i in ("ran", "succeeded", "held", "last-try")])
    store.enqueue([new_job("other")])
    claimed = {c.id: c for c in store.claim("dead-worker", None, 30.0, 4)}
    [other] = store.claim("live-worker", None, 30.0, 1)
    assert other.id == "other"
    assert set(claimed) == {"ran", "succeeded", "held", "last-try"}
    store.release(claimed["last-try"].id, claimed["last-try"].lease_token)  # attempt 1 back
    [again] = store.claim("dead-worker", None, 30.0, 1)
    claimed["last-try"] = again
    nothing = Checkpoint(None, None, False)
    done = Completion("succeeded", claimed["succeeded"].lease_token, '"the result"', nothing, None)
    ran = [("ran", claimed["ran"].lease_token)]

    assert store.take_over("dead-worker", ran, [done]) == 4

    assert store.get("succeeded").state == "succeeded"
    assert store.get("succeeded").result == "the result"
    ran_record = store.get("ran")
    assert (ran_record.state, ran_record.attempts, ran_record.error) == ("enqueued", 1, lifecycle.PROCESS_DIED_ERROR)
    held = store.get("held")
    assert (held.state, held.attempts) == ("enqueued", 0)  # never started: no attempt used
    assert store.get("last-try").state == "enqueued"  # claimed a second time, not started
    assert store.get("last-try").attempts == 1
    assert store.get("other").state == "running"  # a live worker's job is never touched
    next_claims = {c.id: c.attempts for c in store.claim("w", None, 30.0, 10)}
    assert next_claims == {"ran": 2, "held": 1, "last-try": 2}


def test_a_started_job_with_no_attempt_left_fails_and_a_stale_lease_is_ignored(store: Store) -> None:
    store.enqueue([new_job("once", max_attempts=1), new_job("moved")])
    claimed = {c.id: c for c in store.claim("dead", None, 30.0, 2)}
    # "moved" was started by the dead worker, then (say) reclaimed under another lease.
    store.unclaim([("moved", claimed["moved"].lease_token)])
    [moved] = store.claim("live", None, 30.0, 1)
    ran = [("once", claimed["once"].lease_token), ("moved", claimed["moved"].lease_token)]
    assert store.take_over("dead", ran, []) == 1
    record = store.get("once")
    assert (record.state, record.error) == ("failed", lifecycle.PROCESS_DIED_ERROR)
    assert store.get("moved").state == "running"
    assert store.take_over("dead", ran, []) == 0  # nothing left: taking over twice changes nothing
    store.complete(moved.id, moved.lease_token, "null", Checkpoint(None, None, False), [], None)


def test_the_journal_names_what_ran_and_what_succeeded_through_rotation(tmp_path: Path, store: Store) -> None:
    import onward.journal as journal_module

    path = str(tmp_path / "1.journal")
    saved = journal_module.ROTATE_AT
    journal_module.ROTATE_AT = 200  # (the file is made this long up front, and rewritten when full)
    try:
        journal = Journal(path, "w-1")
        journal.started("a", "ta")
        journal.started("b", "tb")
        journal.succeeded(Completion("b", "tb", '{"n": 1}', Checkpoint("[]", '{"k": 2}', True), None))
        journal.started("c", "tc")
        journal.ended("c")
        journal.ended("b")  # a queued success stays until committed
        for i in range(20):
            journal.started(f"x{i}", f"t{i}")
            journal.ended(f"x{i}")
    finally:
        journal_module.ROTATE_AT = saved
    with open(path, "rb") as f:
        lines = f.read().rstrip(b"\0").split(b"\n")
    assert len(lines) < 12  # rewritten with the live lines only (not 25 start lines and more)
    with open(path, "r+b") as f:
        f.seek(sum(len(line) + 1 for line in lines[:-1]))
        f.write(b'["s","cut')  # the crash cut the last line short
    contents = read_journal(path)
    assert contents is not None
    assert contents.worker_id == "w-1"
    assert ("a", "ta") in contents.ran
    assert "b" not in [i for i, _ in contents.ran]
    [b] = contents.succeeded
    assert (b.id, b.token, b.result, b.checkpoint) == ("b", "tb", '{"n": 1}', Checkpoint("[]", '{"k": 2}', True))
    journal.committed("b")
    journal.close()
    assert not os.path.exists(path)
    assert read_journal(path) is None


def test_take_over_reads_a_journal_and_removes_it(tmp_path: Path, store: Store) -> None:
    store.enqueue([new_job("a"), new_job("b")])
    a, _ = sorted(store.claim("dead", None, 30.0, 2), key=lambda c: c.id)
    path = str(tmp_path / "9.journal")
    journal = Journal(path, "dead")
    journal.started(a.id, a.lease_token)
    take_over = TakeOver(lambda: store)
    assert take_over(path) == 2
    assert not os.path.exists(path)
    assert (store.get("a").attempts, store.get("b").attempts) == (1, 0)
    assert take_over(path) == 0  # no journal: nothing to do


def test_a_journaled_success_is_taken_over_with_its_continuations(store: Store, tmp_path: Path) -> None:
    store.enqueue([new_job("parent")])
    [parent] = store.claim("dead-worker", None, 30.0, 1)
    journal = Journal(str(tmp_path / "w.journal"), "dead-worker")
    journal.started("parent", parent.lease_token)
    later = NewJob("child-later", "jobs_core:Echo", "default", 0, "[2]", "{}", 3, delay=3600.0)
    children = [NewJob("child-now", "jobs_core:Echo", "default", 0, "[1]", "{}", 3), later]
    journal.succeeded(Completion("parent", parent.lease_token, "null", Checkpoint(None, None, False), None, children))
    contents = read_journal(journal.path)  # the process died here: nothing was committed
    assert contents is not None
    [done] = contents.succeeded
    assert [c.id for c in done.children] == ["child-now", "child-later"]

    store.take_over(contents.worker_id, contents.ran, contents.succeeded)

    assert store.get("parent").state == "succeeded"
    assert [store.get(i).state for i in ("child-now", "child-later")] == ["enqueued", "enqueued"]
    assert store.get("child-now").parent_id == "parent"
    finished = store.get("parent").finished_at
    assert finished is not None
    assert abs((store.get("child-later").scheduled_at - finished).total_seconds() - 3600.0) < 1.0


def test_a_job_taken_back_after_its_lease_expired_is_logged_with_the_worker_that_had_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from jobs_core import Echo
    from onward import Worker

    handle = Echo.perform_later(1)
    [claimed] = store.claim("gone-worker", None, 0.05, 1)
    while store.get(claimed.id).lease_expires_at > datetime.now(UTC):  # the lease runs out
        time.sleep(0.01)
    with caplog.at_level(logging.INFO, logger="onward"):
        Worker(store=store, worker_id="w-next").run(burst=True)
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "taken_over"]
    assert line.getMessage() == (
        f"Echo {handle.id} taken over from worker gone-worker after its lease expired; it will be retried"
    )
    assert (line.job_id, line.worker_id, line.from_worker_id) == (handle.id, "w-next", "gone-worker")  # type: ignore[attr-defined]
    record = handle.refresh()
    assert (record.state, record.attempts) == ("succeeded", 2)
