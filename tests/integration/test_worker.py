"""API §7: the embedded worker: burst mode, queues, priority, concurrency, async jobs,
graceful stop, signals, shutdown timeout, and leases (dead workers and zombies)."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import onward
import waiting
from jobs_core import (
    AppendLine,
    AsyncMeet,
    AsyncParent,
    Child,
    Echo,
    FailsUntilAttempt,
    Mailer,
    MeetAtBarrier,
    ObservesSignalHandler,
    Parent,
    SignalsOwnProcess,
    SteppedParent,
    StepWaitsForEvent,
    TracksOverlap,
    WaitsForEvent,
    ZombieParent,
    ZombieStepper,
    event,
    unique_names,
)
from onward import LeaseLost, Store, Worker
from onward.execution import Execution, Outcome
from onward.stores.base import Checkpoint, JobFilter
from onward.testing import drain, interrupt_after_step

poll = functools.partial(waiting.poll, timeout=20.0, interval=0.005)


@pytest.fixture
def background() -> Iterator[Callable[[Worker, bool], threading.Thread]]:
    """Start ``worker.run(burst)`` in a thread; every such worker is stopped after the test."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(worker: Worker, burst: bool = False) -> threading.Thread:
        thread = threading.Thread(target=worker.run, kwargs={"burst": burst}, daemon=True)
        thread.start()
        started.append((worker, thread))
        return thread

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(30)


def all_jobs(store: Store, cls: type[onward.Job]) -> list[onward.JobRecord]:
    return store.list_jobs(JobFilter(job_class=f"jobs_core:{cls.__qualname__}", limit=1000))


# -- burst mode ----------------------------------------------------------------------------


def test_burst_runs_continuations_and_zero_backoff_retries_in_the_same_burst(store: Store) -> None:
    parent = Parent.perform_later(2)
    flaky = FailsUntilAttempt.perform_later(3)
    later = Child.set(wait=3600).perform_later("tomorrow")
    worker = Worker(store=store)
    worker.run(burst=True)  # returns: the job scheduled for later is not waited for
    assert parent.refresh().state == "succeeded"
    assert [store.get(c).state for c in parent.refresh().children] == ["succeeded", "succeeded"]
    assert (flaky.refresh().state, flaky.refresh().attempts) == ("succeeded", 3)
    assert later.refresh().state == "enqueued"
    assert worker.executions == 1 + 2 + 3


def test_burst_runs_resumptions_in_the_same_burst(store: Store) -> None:
    handle = SteppedParent.perform_later()
    with interrupt_after_step(SteppedParent, "first"):
        Worker(store=store).run(burst=True)
    record = handle.refresh()
    assert (record.state, record.resumptions) == ("succeeded", 1)
    assert [store.get(c).state for c in record.children] == ["succeeded"]


def test_burst_waits_for_its_own_running_jobs_and_runs_what_they_enqueue(
    store: Store, background: Callable[[Worker, bool], threading.Thread]
) -> None:
    started, go = unique_names("started", "go")
    handle = ZombieParent.perform_later(started, go)  # waits for "go", then enqueues a child
    worker = Worker(store=store, concurrency=2)
    thread = background(worker, True)
    assert event(started).wait(10)
    assert thread.is_alive()  # nothing else is ready, but its own job is still running
    event(go).set()
    thread.join(30)
    assert not thread.is_alive()
    [child] = handle.refresh().children
    assert store.get(child).state == "succeeded"


def test_burst_with_nothing_to_do_returns_at_once(store: Store) -> None:
    worker = Worker(store=store)
    worker.run(burst=True)
    assert worker.executions == 0


# -- queues, priority, concurrency ---------------------------------------------------------


def test_a_worker_serves_only_its_queues(store: Store) -> None:
    mail = Mailer.perform_later()
    other = Echo.set(queue="reports").perform_later()
    default = Echo.perform_later()
    Worker(queues=["mailers", "reports"], store=store).run(burst=True)
    assert mail.refresh().state == "succeeded"
    assert other.refresh().state == "succeeded"
    assert default.refresh().state == "enqueued"


def test_queues_none_serves_every_queue(store: Store) -> None:
    handles = [Mailer.perform_later(), Echo.set(queue="x").perform_later(), Echo.perform_later()]
    Worker(queues=None, store=store).run(burst=True)
    assert [h.refresh().state for h in handles] == ["succeeded"] * 3


def test_among_ready_jobs_lower_priority_runs_first(store: Store, tmp_path: Path) -> None:
    log = str(tmp_path / "order.log")
    for text, priority in [("p5", 5), ("p-1a", -1), ("p3", 3), ("p0", 0), ("p-1b", -1)]:
        AppendLine.set(priority=priority).perform_later(log, text)
    Worker(store=store, concurrency=1).run(burst=True)
    assert Path(log).read_text().split() == ["p-1a", "p-1b", "p0", "p3", "p5"]


def test_concurrency_runs_that_many_jobs_at_once(store: Store) -> None:
    [name] = unique_names("barrier")
    handles = [MeetAtBarrier.perform_later(name, 3) for _ in range(3)]
    worker = Worker(store=store, concurrency=3)
    worker.run(burst=True)
    records = [h.refresh() for h in handles]
    assert [r.state for r in records] == ["succeeded"] * 3, [r.error for r in records]
    assert len({r.result for r in records}) == 3  # three threads


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_worker_never_runs_more_than_concurrency_jobs_at_once(store: Store, concurrency: int) -> None:
    [name] = unique_names("overlap")
    handles = [TracksOverlap.perform_later(name) for _ in range(12)]
    Worker(store=store, concurrency=concurrency).run(burst=True)
    assert [h.refresh().state for h in handles] == ["succeeded"] * 12
    assert TracksOverlap.peak[name] <= concurrency


def test_async_jobs_run_at_once_on_one_shared_event_loop(store: Store) -> None:
    [name] = unique_names("meet")
    handles = [AsyncMeet.perform_later(name, 3) for _ in range(3)]
    Worker(store=store, concurrency=3).run(burst=True)
    records = [h.refresh() for h in handles]
    assert [r.state for r in records] == ["succeeded"] * 3, [r.error for r in records]
    assert len({r.result["loop"] for r in records}) == 1
    assert len({r.result["thread"] for r in records}) == 1
    AsyncMeet.arrived.pop(name, None)


def test_async_continuations_run_under_a_worker(store: Store) -> None:
    handle = AsyncParent.perform_later(3)
    Worker(store=store, concurrency=2).run(burst=True)
    [child] = handle.refresh().children
    assert store.get(child).result == "async-3"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"lease_timeout": 0}, "lease_timeout"),
        ({"shutdown_timeout": -1}, "shutdown"),
    ],
)
def test_bad_worker_settings_raise_value_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Worker(**kwargs)


def test_a_worker_without_a_store_uses_the_default_store(store: Store) -> None:
    handle = Echo.perform_later()
    Worker().run(burst=True)
    assert handle.refresh().state == "succeeded"


# -- graceful stop ---------------------------------------------------------------------------


def test_stop_from_another_thread_lets_the_running_job_finish_and_claims_nothing_more(
    store: Store, background: Callable[[Worker, bool], threading.Thread]
) -> None:
    started, go = unique_names("started", "go")
    running = WaitsForEvent.perform_later(started, go)
    waiting = Echo.set(priority=10).perform_later("not claimed")
    worker = Worker(store=store, concurrency=1, shutdown_timeout=30)
    thread = background(worker, False)
    assert event(started).wait(10)
    worker.stop()
    event(go).set()
    thread.join(30)
    assert not thread.is_alive()
    assert running.refresh().state == "succeeded"
    assert waiting.refresh().state == "enqueued"


def test_stop_interrupts_a_stepped_job_at_its_next_checkpoint(
    store: Store, background: Callable[[Worker, bool], threading.Thread]
) -> None:
    started, go = unique_names("started", "go")
    handle = StepWaitsForEvent.perform_later(started, go)
    worker = Worker(store=store, shutdown_timeout=30)
    thread = background(worker, False)
    assert event(started).wait(10)
    worker.stop()
    event(go).set()
    thread.join(30)
    assert not thread.is_alive()
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 1, 1)
    assert (record.steps[0].status, record.steps[0].cursor) == ("interrupted", 2)  # the updated cursor was saved
    drain()
    record = handle.refresh()
    assert (record.state, record.attempts, record.result) == ("succeeded", 1, 2)  # two executions in all
    assert record.steps[0].advanced == 3  # nothing ran twice


def test_after_shutdown_timeout_a_running_job_is_released_and_run_returns(
    store: Store, background: Callable[[Worker, bool], threading.Thread]
) -> None:
    started, go = unique_names("started", "go")
    handle = WaitsForEvent.perform_later(started, go)
    worker = Worker(store=store, shutdown_timeout=0.2)
    thread = background(worker, False)
    assert event(started).wait(10)
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()  # run() returned although the job's thread is still stuck
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 1, 0)
    assert worker.executions == 0
    event(go).set()  # the stuck thread finishes now, but it no longer owns the job
    poll(lambda: worker.executions == 1, what="the stuck execution to end")
    assert worker.outcomes[Outcome.LOST] == 1
    record = handle.refresh()
    assert (record.state, record.result) == ("enqueued", None)
    drain()
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("succeeded", 2, 0)  # the next run was an attempt


def test_a_released_job_that_saved_progress_is_resumed(
    store: Store, background: Callable[[Worker, bool], threading.Thread]
) -> None:
    started, go = unique_names("started", "go")
    handle = ZombieStepper.perform_later(started, go)  # advances (saved), then hangs in the step
    worker = Worker(store=store, shutdown_timeout=0.2)
    thread = background(worker, False)
    assert event(started).wait(10)
    worker.stop()
    thread.join(30)
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 1, 1)
    event(go).set()
    poll(lambda: worker.executions == 1, what="the stuck execution to end")
    drain()
    record = handle.refresh()
    assert (record.state, record.attempts, record.steps[0].cursor) == ("succeeded", 1, 3)
    assert "zombie" not in record.job_state


# -- signals ---------------------------------------------------------------------------------


def _marked_handler(signum: int, frame: Any) -> None:
    pass


_marked_handler.onward_test = True  # type: ignore[attr-defined]


@pytest.fixture
def own_sigterm_handler() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _marked_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_run_on_the_main_thread_installs_signal_handlers_and_restores_them(
    store: Store, own_sigterm_handler: None
) -> None:
    sigint_before = signal.getsignal(signal.SIGINT)
    handle = ObservesSignalHandler.perform_later()
    Worker(store=store).run(burst=True)
    assert handle.refresh().result == {"is_default": False, "is_test_handler": False}  # the worker's own
    assert signal.getsignal(signal.SIGTERM) is _marked_handler
    assert signal.getsignal(signal.SIGINT) is sigint_before


def test_run_on_another_thread_leaves_signal_handlers_alone(store: Store, own_sigterm_handler: None) -> None:
    handle = ObservesSignalHandler.perform_later()
    thread = threading.Thread(target=Worker(store=store).run, kwargs={"burst": True})
    thread.start()
    thread.join(30)
    assert handle.refresh().result == {"is_default": False, "is_test_handler": True}
    assert signal.getsignal(signal.SIGTERM) is _marked_handler


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_a_worker_running_on_the_main_thread_gracefully(
    store: Store, own_sigterm_handler: None, signum: int
) -> None:
    signalling = SignalsOwnProcess.perform_later(int(signum))
    waiting = Echo.set(priority=10).perform_later("not claimed")
    worker = Worker(store=store, concurrency=1)
    guard = threading.Timer(60, worker.stop)  # if the signal were ignored, fail instead of hanging
    guard.start()
    try:
        worker.run()  # not burst: only the signal ends it
    finally:
        guard.cancel()
    assert signalling.refresh().state == "succeeded"  # the running job finished
    assert waiting.refresh().state == "enqueued"  # and nothing more was claimed
    assert signal.getsignal(signal.SIGTERM) is _marked_handler


# -- leases: dead workers and zombies -------------------------------------------------------


def test_a_worker_takes_back_a_job_whose_lease_expired_at_once(store: Store) -> None:
    handle = Child.perform_later("orphan")
    assert len(store.claim("dead-worker", None, 0.05, 1)) == 1
    poll(lambda: handle.refresh().lease_expires_at < datetime.now(UTC), what="the lease to expire")  # type: ignore[operator]
    worker = Worker(store=store, lease_timeout=30)
    worker.run(burst=True)
    record = handle.refresh()
    assert (record.state, record.attempts) == ("succeeded", 2)
    assert "worker lost: lease expired" in (record.error or "")


def test_a_live_worker_keeps_its_lease_with_heartbeats(store: Store) -> None:
    started, go = unique_names("started", "go")
    handle = WaitsForEvent.perform_later(started, go)
    worker = Worker(store=store, lease_timeout=0.3)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    assert event(started).wait(10)
    first = handle.refresh().lease_expires_at
    poll(lambda: handle.refresh().lease_expires_at != first, what="a heartbeat")
    assert store.reap_expired() == 0
    event(go).set()
    thread.join(30)
    record = handle.refresh()
    assert (record.state, record.attempts, record.error) == ("succeeded", 1, None)


def take_back(store: Store, lease: float = 0.2) -> onward.stores.base.Claimed:
    """Claim the next job with a short lease and no heartbeat, as a worker about to freeze."""
    [claimed] = store.claim("frozen-worker", None, lease, 1)
    return claimed


def test_a_stale_lease_token_cannot_write_anything(store: Store) -> None:
    handle = Child.perform_later("x")
    stale = take_back(store, 0.05)
    poll(lambda: store.reap_expired() > 0, what="the lease to be taken back")
    [fresh] = store.claim("live-worker", None, 30.0, 1)
    assert fresh.id == stale.id
    assert fresh.lease_token != stale.lease_token
    checkpoint = Checkpoint('[{"name":"s","status":"running","cursor":7,"advanced":7,"total":null}]', "{}", True)
    child = Child.set().new_job(("orphan",), {})  # type: ignore[attr-defined]
    for write in (
        lambda: store.save_checkpoint(stale.id, stale.lease_token, checkpoint),
        lambda: store.complete(stale.id, stale.lease_token, '"zombie"', checkpoint, [child], None),
        lambda: store.fail(stale.id, stale.lease_token, checkpoint, "zombie error"),
        lambda: store.retry(stale.id, stale.lease_token, checkpoint, "zombie error", 0.0, False),
        lambda: store.interrupt(stale.id, stale.lease_token, checkpoint),
        lambda: store.release(stale.id, stale.lease_token),
    ):
        with pytest.raises(LeaseLost):
            write()
    assert store.heartbeat([(stale.id, stale.lease_token)], 30.0) == {stale.id}
    record = handle.refresh()
    assert (record.state, record.result, record.steps, record.children) == ("running", None, [], ())
    with pytest.raises(KeyError):
        store.get(child.id)
    store.complete(fresh.id, fresh.lease_token, '"live"', checkpoint, [], None)
    assert handle.refresh().result == "live"


def test_a_zombie_execution_cannot_write_its_result_or_continuations(store: Store) -> None:
    started, go = unique_names("started", "go")
    handle = ZombieParent.perform_later(started, go)
    zombie = Execution(store, take_back(store))
    thread = threading.Thread(target=zombie.run)
    thread.start()
    assert event(started).wait(10)
    poll(lambda: store.reap_expired() > 0, what="the frozen worker's lease to be taken back")
    drain()  # another worker runs the job to success: attempt 2
    event(go).set()  # the zombie wakes up, returns, and tries to commit its result and child
    thread.join(30)
    assert zombie.outcome == Outcome.LOST
    record = handle.refresh()
    assert (record.state, record.attempts, record.result) == ("succeeded", 2, "execution 2")
    children = all_jobs(store, Child)
    assert [c.args for c in children] == [["from execution 2"]]
    assert record.children == (children[0].id,)


def test_a_zombie_execution_cannot_write_its_checkpoint(store: Store) -> None:
    started, go = unique_names("started", "go")
    handle = ZombieStepper.perform_later(started, go)
    zombie = Execution(store, take_back(store))
    thread = threading.Thread(target=zombie.run)
    thread.start()
    assert event(started).wait(10)
    poll(lambda: store.reap_expired() > 0, what="the frozen worker's lease to be taken back")
    record = handle.refresh()
    assert (record.state, record.resumptions, record.steps[0].cursor) == ("enqueued", 1, 1)  # it saved progress
    drain()
    event(go).set()  # the zombie sets self.state and advances: its checkpoint must be refused
    thread.join(30)
    assert zombie.outcome == Outcome.LOST
    record = handle.refresh()
    assert (record.state, record.result, record.steps[0].cursor) == ("succeeded", 1, 3)
    assert "zombie" not in record.job_state
