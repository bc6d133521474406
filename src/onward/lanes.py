"""The lanes of a worker: ``concurrency`` threads, each claiming jobs for itself (a batch at a
time while they are short), running them one after another (async jobs on one shared event
loop) and handing their successes to the completer.

A lane does everything for its jobs on one thread: no hand-over between threads per job, and
with one lane per process (``--processes N --concurrency 1``) no thread competes for the GIL.
Idle lanes sleep; one of them (the poller) waits on the store for new jobs. This is a part of
:class:`onward.worker.Worker`, which owns the state used here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

from onward.completions import Completer, completion
from onward.errors import StoreClosed
from onward.execution import Execution, Outcome
from onward.journal import Journal
from onward.leases import LeaseKeeper
from onward.steps import StopSignal
from onward.stores.base import Checkpoint, Claimed, Completion, NewJob, Store
from onward.wakeups import Wakeup
from onward.worker_signals import StopSignals

__all__ = ["Lane", "Lanes", "SharedLoop"]

log = logging.getLogger("onward.worker")

SIGNAL_CHECK = 0.05
# Prefetch: while jobs take less than PREFETCH_BELOW seconds on average, a lane claims jobs
# ahead of the one it runs next, in the same transaction, so that claiming costs a fraction
# of a commit per job: as many as run in about PREFETCH_HOLD seconds, at most
# PREFETCH_FACTOR. Long jobs are never prefetched: a prefetched job waits behind the running
# one, and other workers cannot take it.
PREFETCH_FACTOR = 32
PREFETCH_HOLD = 0.05
PREFETCH_BELOW = 0.02


class Lane:
    """One of the worker's ``concurrency`` threads and the jobs it holds."""

    __slots__ = ("ahead", "current", "deadline", "deferred", "retired", "thread")

    def __init__(self) -> None:
        self.ahead: deque[Execution] = deque()  # claimed, not started yet
        self.current: Execution | None = None
        # The success of the job it ran last, not journaled yet: written with the next job's
        # start line in one ``write``, then handed to the completer (see ``_hand_over``).
        self.deferred: tuple[Execution, Completion] | None = None
        self.deadline: float | None = None  # when the current job's timeout passes (monotonic)
        self.retired = False  # its thread was abandoned in a job that timed out; a new lane took its place
        self.thread: threading.Thread | None = None


class SharedLoop:
    """One event loop in a daemon thread, shared by the async jobs of a worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="onward-asyncio", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class Lanes:
    """The lanes' side of a worker (see the module's docstring)."""

    worker_id: str
    queues: list[str] | None
    lease_timeout: float
    poll_interval: float
    store: Store | None
    executions: int
    outcomes: Counter[str]
    _running: dict[str, Execution]
    _lock: threading.Lock
    _cond: threading.Condition
    _wake: Wakeup
    _signals: StopSignals
    _lanes: list[Lane]
    _loop: SharedLoop | None
    _keeper: LeaseKeeper | None
    _completer: Completer | None
    _journal: Journal | None
    _avg_run: float | None
    _generation: int
    _idle_lanes: int
    _poller: Lane | None
    _tick: Wakeup
    _watch_until: float
    _finished_count: int
    _found_nothing_at: int
    _burst_done: bool
    _fatal: BaseException | None
    _burst: bool
    max_jobs: int | None
    replace_when_stuck: bool

    @property
    def stopping(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _back_off(self, exc: Exception, failures: int) -> int:
        raise NotImplementedError

    def recycle(self, reason: str) -> None:
        raise NotImplementedError

    def _look_again(self) -> None:
        """(Under the lock.) Jobs may be ready: one idle lane claims; if it finds any, it
        wakes the next."""
        self._generation += 1
        if self._idle_lanes > (self._poller is not None):
            self._cond.notify()
        elif self._poller is not None:
            self._wake.set()  # the only idle lane is the one waiting on the store

    # -- lanes ------------------------------------------------------------------------------
    def _lane_loop(self, lane: Lane, store: Store, burst: bool) -> None:
        self._signals.block_here()  # stop signals go to the main thread (see worker_signals)
        failures = 0
        woken = False  # this lane has just waited on the store: claim the first job alone
        while True:
            # Before the next job or claim, not a tick later (before a claim, a signal still
            # pending for the process counts too).
            stop_signal = self._signals.arrived(claiming=not lane.ahead)
            with self._lock:
                if stop_signal or self.stopping or self._burst_done or lane.retired:
                    break
                execution = lane.ahead.popleft() if lane.ahead else None
                lane.current = execution
                generation, finished = self._generation, self._finished_count
            if execution is not None:
                self._execute(lane, execution)
                continue
            if lane.deferred is not None:
                self._hand_over(lane)
            if self._completer is not None:
                self._completer.commit_here()
            self._wake.clear()  # a notification from now on is seen by this claim or wakes the poller
            try:
                limit = 1 if woken else self._batch_size()
                claimed = store.claim(self.worker_id, self.queues, self.lease_timeout, limit)
                failures = 0
                woken = False
            except StoreClosed as exc:
                self._fatal = exc
                self.stop()
                break
            except Exception as exc:
                failures = self._back_off(exc, failures)
                continue
            if claimed:
                self._hold(lane, store, claimed)
                continue
            woken = self._idle(lane, store, burst, generation, finished)
        if lane.deferred is not None:
            self._hand_over(lane)
        self._give_back_held(lane)

    def _idle(self, lane: Lane, store: Store, burst: bool, generation: int, finished: int) -> bool:
        """Nothing was ready. One idle lane (the poller) waits on the store for new jobs and
        claims as soon as one is announced; the others sleep until a lane finds jobs.
        ``True`` when this lane waited on the store: its next claim takes one job, the
        quickest claim (on SQLite, a claim that finds fewer jobs than it asked for also looks
        for jobs held by limits), and more are claimed once it holds that one."""
        with self._lock:
            self._found_nothing_at = max(self._found_nothing_at, finished)
            self._idle_lanes += 1
            if burst and self._idle_lanes == len(self._lanes):
                self._tick.set()  # the main thread may end the burst
            poll = self._poller is None
            if poll:
                self._poller = lane
            else:
                while generation == self._generation and not (self.stopping or self._burst_done):
                    self._cond.wait()
                self._idle_lanes -= 1
                return False
        try:
            if generation == self._generation:
                store.wait_for_jobs(self.queues, self.poll_interval, self._wake)
                return True
        except Exception as exc:
            self._back_off(exc, 0)
        finally:
            with self._lock:
                self._poller = None
                self._idle_lanes -= 1
        return False

    def _batch_size(self) -> int:
        """How many jobs to claim: one, plus prefetch while jobs are short."""
        avg = self._avg_run
        if avg is None or avg >= PREFETCH_BELOW:
            return 1
        return 1 + (min(PREFETCH_FACTOR, int(PREFETCH_HOLD / avg)) if avg > 0 else PREFETCH_FACTOR)

    def _hold(self, lane: Lane, store: Store, claimed: list[Claimed]) -> None:
        assert self._keeper is not None
        executions = []
        defer: Callable[[Execution, str, Checkpoint, str | None, list[NewJob]], None] | None = None
        if self._completer is not None:
            defer = self._completer.add if self._journal is None else functools.partial(self._defer, lane)
        for job in claimed:
            execution = Execution(store, job, StopSignal(), worker_id=self.worker_id)
            execution.defer_completion = defer
            executions.append(execution)
            self._keeper.add(job.id, job.lease_token, execution.signal)
        with self._lock:
            for execution in executions:
                self._running[execution.job_id] = execution
            lane.ahead.extend(executions)
            self._look_again()  # more may be ready: another lane looks too
        if self.stopping:  # stop() may have run between the claim and now: signal these too
            for execution in executions:
                execution.signal.stop("worker stopping")

    def _execute(self, lane: Lane, execution: Execution) -> None:
        if execution.signal.stopping:  # stopped or lease lost before it started: never start it
            if lane.deferred is not None:
                self._hand_over(lane)
            if execution.signal.lost:
                self._forget([execution])
            else:
                self._give_back([execution])
            with self._lock:
                lane.current = None
            return
        error: BaseException | None = None
        journal = self._journal
        if journal is not None:  # from here on, a crash of this process costs this job a try
            deferred = lane.deferred
            if deferred is None:
                journal.started(execution.claimed.id, execution.claimed.lease_token)
            else:  # the last job's success first, in the same write; then it may be committed
                lane.deferred = None
                journal.started(execution.claimed.id, execution.claimed.lease_token, deferred[1])
                assert self._completer is not None
                self._completer.put(*deferred)
        started = time.monotonic()
        try:
            if not execution.prepare():
                pass  # failed alone: its class cannot be imported
            elif execution.is_async:
                future = asyncio.run_coroutine_threadsafe(execution.run_async(), self._event_loop())
                future.result()
            else:
                limit = execution.timeout
                if limit is not None:  # the main thread's watchdog abandons it after that long
                    with self._lock:
                        lane.deadline = time.monotonic() + limit
                        if lane.deadline < self._watch_until:
                            self._tick.set()  # the main thread sleeps longer: it has to end this one
                execution.run()
        except BaseException as exc:
            error = exc
        with self._lock:
            lane.deadline = None
            retired = lane.retired
        if retired:  # timed out: the watchdog has ended it, and a new lane took this one's place
            if lane.deferred is not None:  # it succeeded as it timed out: the lease guard decides
                self._hand_over(lane)
            return
        seconds = time.monotonic() - started
        avg = self._avg_run
        self._avg_run = seconds if avg is None else avg + (seconds - avg) * 0.2
        if error is not None:
            log.error("job %s: unexpected error in the worker", execution.job_id, exc_info=error)
        if journal is not None and lane.deferred is None:  # (a deferred success stays journaled)
            journal.ended(execution.job_id)
        assert self._keeper is not None
        with self._lock:
            lane.current = None
            if self._running.get(execution.job_id) is execution:  # not a newer execution of the job
                del self._running[execution.job_id]
                self._keeper.remove(execution.job_id)
            recycle = self._ended(str(execution.outcome or Outcome.LOST))
        if recycle:
            self.recycle(f"it ran {self.executions} jobs (--max-jobs-per-child {self.max_jobs})")

    def _ended(self, outcome: str) -> bool:
        """(Under the lock.) Count an execution that ended; ``True``: the worker has run
        ``max_jobs`` and is to be recycled (call :meth:`recycle` after the lock)."""
        self.executions += 1
        self.outcomes[outcome] += 1
        self._finished_count += 1
        if self._idle_lanes:
            self._look_again()  # a retry or a continuation may be ready now
        return self.max_jobs is not None and self.executions >= self.max_jobs

    # -- timeouts ---------------------------------------------------------------------------
    def _time_out(self, store: Store) -> None:
        """(The main thread.) Abandon each sync job that ran past its ``timeout``: its try
        fails with ``JobTimeout``, and a new lane takes its place at once (a thread cannot be
        stopped: the old one is left in ``perform``, its writes refused by the lease guard)."""
        now = time.monotonic()
        expired: list[tuple[Lane, Execution]] = []
        assert self._keeper is not None
        with self._lock:
            for i, lane in enumerate(self._lanes):
                execution = lane.current
                if lane.deadline is None or now < lane.deadline or execution is None:
                    continue
                lane.retired = True
                fresh = Lane()
                fresh.ahead, lane.ahead = lane.ahead, deque()
                self._lanes[i] = fresh
                if self._running.get(execution.job_id) is execution:
                    del self._running[execution.job_id]
                    self._keeper.remove(execution.job_id)
                expired.append((fresh, execution))
        for fresh, execution in expired:
            limit = execution.timeout or 0.0
            try:
                outcome = str(execution.time_out(limit))
            except Exception as exc:  # the store failed: the lease is no longer renewed and will expire
                log.error("job %s timed out; could not record it: %s", execution.job_id, exc)
                outcome = str(Outcome.LOST)
            if self._journal is not None:
                self._journal.ended(execution.job_id)
            with self._lock:
                recycle = self._ended(outcome)
            if recycle:
                self.recycle(f"it ran {self.executions} jobs (--max-jobs-per-child {self.max_jobs})")
            fresh.thread = threading.Thread(
                target=self._lane_loop, args=(fresh, store, self._burst), name="onward-job", daemon=True
            )
            fresh.thread.start()
            if self.replace_when_stuck:
                self.recycle(f"job {execution.job_id} timed out and its thread cannot be stopped")

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = SharedLoop()
            return self._loop.loop

    def _give_back_held(self, lane: Lane) -> None:
        with self._lock:
            held = list(lane.ahead)
            lane.ahead.clear()
        if held:
            self._give_back(held)

    def _forget(self, executions: Sequence[Execution]) -> None:
        assert self._keeper is not None
        with self._lock:
            for execution in executions:
                if self._running.get(execution.job_id) is execution:
                    del self._running[execution.job_id]
                    self._keeper.remove(execution.job_id)

    def _give_back(self, executions: Sequence[Execution]) -> None:
        """Return claimed jobs that never started to the queue, using no attempt."""
        leases = [(e.job_id, e.claimed.lease_token) for e in executions]
        try:
            assert self.store is not None
            self.store.unclaim(leases)
        except Exception:
            log.exception("could not return %d unstarted job(s); their leases will expire", len(leases))
        self._forget(executions)

    def _defer(
        self,
        lane: Lane,
        execution: Execution,
        result: str,
        checkpoint: Checkpoint,
        continuation_error: str | None,
        children: list[NewJob],
    ) -> None:
        """(The ``defer_completion`` of a worker with a journal.) Keep a success on its lane
        until it is journaled: with the lane's next start line, or alone before the lane
        claims, waits or stops (:meth:`_hand_over`). Until then a crash costs its job a try,
        as if it were still running; once journaled, a crash cannot lose it."""
        lane.deferred = (execution, completion(execution, result, checkpoint, continuation_error, children))

    def _hand_over(self, lane: Lane) -> None:
        """Journal the lane's deferred success on its own, then queue it for a batched commit."""
        deferred = lane.deferred
        assert deferred is not None
        assert self._journal is not None
        assert self._completer is not None
        lane.deferred = None
        self._journal.succeeded(deferred[1])
        self._completer.put(*deferred)

    def _committed(self, batch: list[tuple[Execution, Completion]], lost: set[str]) -> None:
        """Successes handed to the completer were committed, but those in ``lost`` (refused:
        their lease was lost)."""
        if self._journal is not None:
            self._journal.forget([item.id for _, item in batch])
        look = False
        for execution, item in batch:
            if lost and item.id in lost:
                execution.lost()
                with self._lock:
                    self.outcomes[str(Outcome.SUCCEEDED)] -= 1
                    self.outcomes[str(Outcome.LOST)] += 1
                execution.outcome = Outcome.LOST
            elif execution.deferred_committed() or item.member:
                look = True
        if look:  # continuations, or a batch's callbacks, may be ready: look before a burst ends
            with self._lock:
                self._found_nothing_at = -1
                self._look_again()
