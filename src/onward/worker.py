"""The worker: claims ready jobs, runs them on threads (async jobs on one event loop), keeps
their leases alive, takes back jobs of dead workers, and stops gracefully.

The main loop is the only thread that claims. Signal handlers only set a flag, which the loop
reads at least every ``SIGNAL_CHECK`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import secrets
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from onward import completions, stores
from onward.completions import Completer
from onward.errors import LeaseLost, OnwardError
from onward.execution import Execution, Outcome
from onward.leases import LeaseKeeper
from onward.steps import StopSignal
from onward.stores.base import Claimed, Store

log = logging.getLogger("onward.worker")

SIGNAL_CHECK = 0.05
MAX_ERROR_BACKOFF = 5.0
# Prefetch: while jobs take less than PREFETCH_BELOW seconds on average, claim up to
# PREFETCH_FACTOR * concurrency jobs ahead, in one transaction, so that claiming costs a
# fraction of a commit per job. Long jobs are never prefetched: a prefetched job waits
# behind the running ones, and other workers cannot take it.
PREFETCH_FACTOR = 16
PREFETCH_BELOW = 0.02


class _Threads:
    """``size`` daemon threads running submitted calls: a job thread stuck past the shutdown
    timeout cannot keep the process from exiting."""

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"onward-job-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on a free thread; ``fn`` handles its own errors."""
        self._queue.put(fn)

    def _serve(self) -> None:
        while (call := self._queue.get()) is not None:
            call()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


class _Loop:
    """One event loop in a daemon thread, shared by the async jobs of a worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="onward-asyncio", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs jobs from a store until stopped (or, in burst mode, until none is ready).

    ``queues=None`` serves every queue; ``concurrency`` jobs run at once. ``lease_timeout``
    is how long a job stays claimed without a heartbeat before another worker may take it;
    ``shutdown_timeout`` is how long running jobs get to finish when the worker stops.
    """

    def __init__(
        self,
        queues: Sequence[str] | None = None,
        concurrency: int = 1,
        lease_timeout: float = 30.0,
        shutdown_timeout: float = 25.0,
        *,
        store: Store | None = None,
        poll_interval: float = 1.0,
        worker_id: str | None = None,
    ) -> None:
        if isinstance(queues, str):
            queues = [q for q in queues.split(",") if q]
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if lease_timeout <= 0:
            raise ValueError(f"lease_timeout must be > 0 seconds, got {lease_timeout!r}")
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be >= 0 seconds, got {shutdown_timeout!r}")
        self.queues = list(queues) if queues else None
        self.concurrency = concurrency
        self.lease_timeout = float(lease_timeout)
        self.shutdown_timeout = float(shutdown_timeout)
        self.store = store
        self.poll_interval = poll_interval
        self.worker_id = worker_id or default_worker_id()
        self.executions = 0
        self.outcomes: Counter[str] = Counter()
        self._running: dict[str, Execution] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._signalled = False
        self._threads: _Threads | None = None
        self._loop: _Loop | None = None
        self._keeper: LeaseKeeper | None = None
        self._completer: Completer | None = None
        self._unclaim: Callable[[Sequence[tuple[str, str]]], None] | None = None
        # By execution, not job id: a job retried at once is claimed again before the
        # callback of its previous execution has run.
        self._started: set[Execution] = set()  # claimed jobs whose execution began
        self._given_back: set[Execution] = set()  # returned unstarted; never start them
        self._avg_run: float | None = None  # moving average of execution seconds
        self._async_gate: asyncio.Semaphore | None = None

    # -- control --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop gracefully: no new claims; running jobs finish or checkpoint. Thread-safe."""
        self._stop.set()
        with self._lock:  # stepped jobs stop at their very next checkpoint, not a poll later
            running = list(self._running.values())
        for execution in running:
            execution.signal.stop("worker stopping")
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self._signalled

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signalled = True  # the loop notices within SIGNAL_CHECK seconds

    # -- running ----------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        """Claim and run jobs until stopped; with ``burst=True``, until none is ready and
        none of this worker's jobs is still running."""
        store = self.store if self.store is not None else stores.default()
        self.store = store
        previous = self._install_signals()
        self._threads = _Threads(self.concurrency)
        self._keeper = LeaseKeeper(store, self.lease_timeout)
        self._unclaim = getattr(store, "unclaim", None)
        batch_store = completions.batching(store)
        if batch_store is not None:
            self._completer = Completer(batch_store, self._committed)
        store.add_listener(self._wake)
        log.info(
            "worker %s started (queues: %s, concurrency %d, store %s)",
            self.worker_id,
            ",".join(self.queues) if self.queues else "all",
            self.concurrency,
            store.url,
            extra={"event": "worker_started"},
        )
        try:
            self._loop_until_done(store, burst)
        finally:
            try:
                self._shutdown(store)
            finally:
                if self._completer is not None:
                    self._completer.close()
                store.remove_listener(self._wake)
                self._keeper.close()
                self._threads.close()
                if self._loop is not None:
                    self._loop.close()
                self._restore_signals(previous)
                log.info("worker %s stopped", self.worker_id, extra={"event": "worker_stopped"})

    def _loop_until_done(self, store: Store, burst: bool) -> None:
        reap_every = min(1.0, self.lease_timeout / 4.0)
        next_reap = 0.0
        backoff = 0.0
        while not self.stopping:
            self._wake.clear()
            try:
                now = time.monotonic()
                if now >= next_reap:
                    store.reap_expired()
                    next_reap = now + reap_every
                free = self._room()
                if free > 0:
                    # Idle *before* the claim: a job finishing during the claim may have
                    # re-enqueued itself (a retry) after the claim looked.
                    idle = not self._running
                    claimed = store.claim(self.worker_id, self.queues, self.lease_timeout, free)
                    for job in claimed:
                        self._dispatch(store, job)
                    if claimed:
                        backoff = 0.0
                        continue
                    if burst and idle:
                        if self._completer is None or self._completer.idle:
                            return
                        self._completer.flush()
                        continue
                    timeout = min(self.poll_interval, next_reap - time.monotonic(), SIGNAL_CHECK)
                    store.wait_for_jobs(self.queues, max(timeout, 0.0), self._wake)
                else:
                    self._wake.wait(SIGNAL_CHECK)
                backoff = 0.0
            except OnwardError as exc:
                if "closed" in str(exc):
                    raise
                backoff = self._back_off(exc, backoff)
            except Exception as exc:
                backoff = self._back_off(exc, backoff)

    def _room(self) -> int:
        """How many jobs to claim now: free slots, plus prefetch while jobs are short."""
        in_flight = len(self._running)
        avg = self._avg_run
        if self._unclaim is None or avg is None or avg >= PREFETCH_BELOW:
            return self.concurrency - in_flight
        ahead = PREFETCH_FACTOR * self.concurrency
        if in_flight >= self.concurrency + ahead // 2:
            return 0  # enough queued here; claim again in a batch once half of it ran
        return self.concurrency + ahead - in_flight

    def _back_off(self, exc: Exception, backoff: float) -> float:
        backoff = min(MAX_ERROR_BACKOFF, backoff * 2 or 0.05)
        log.error(
            "worker %s: store error, retrying in %.2f s: %s",
            self.worker_id,
            backoff,
            exc,
            extra={"event": "store_error"},
        )
        self._stop.wait(backoff)
        return backoff

    def _dispatch(self, store: Store, claimed: Claimed) -> None:
        execution = Execution(store, claimed, StopSignal())
        if self._completer is not None:
            execution.defer_completion = self._completer.add
        assert self._keeper is not None
        assert self._threads is not None
        with self._lock:
            self._running[claimed.id] = execution
        self._keeper.add(claimed.id, claimed.lease_token, execution.signal)
        if not execution.prepare():
            self._finished(execution, None)
        elif execution.is_async:
            if self._loop is None:
                self._loop = _Loop()
            future = asyncio.run_coroutine_threadsafe(self._run_async(execution), self._loop.loop)
            future.add_done_callback(lambda f: self._finished(execution, None if f.cancelled() else f.exception()))
        else:
            self._threads.submit(lambda: self._run_then_finish(execution))

    def _run_then_finish(self, execution: Execution) -> None:
        error: BaseException | None = None
        try:
            self._run(execution)
        except BaseException as exc:
            error = exc
        self._finished(execution, error)

    def _begin(self, execution: Execution) -> bool:
        """Whether a claimed job may start now (not when stopping: it goes back unstarted)."""
        with self._lock:
            if self.stopping or execution.signal.stopping or execution in self._given_back:
                return False
            self._started.add(execution)
            return True

    def _run(self, execution: Execution) -> Outcome | None:
        if not self._begin(execution):
            return None
        started = time.monotonic()
        try:
            return execution.run()
        finally:
            self._ran_for(time.monotonic() - started)

    async def _run_async(self, execution: Execution) -> Outcome | None:
        if self._async_gate is None:  # prefetched async jobs still run at most `concurrency` at once
            self._async_gate = asyncio.Semaphore(self.concurrency)
        async with self._async_gate:
            if not self._begin(execution):
                return None
            started = time.monotonic()
            try:
                return await execution.run_async()
            finally:
                self._ran_for(time.monotonic() - started)

    def _ran_for(self, seconds: float) -> None:
        avg = self._avg_run
        self._avg_run = seconds if avg is None else avg + (seconds - avg) * 0.2

    def _finished(self, execution: Execution, error: BaseException | None) -> None:
        if error is not None:
            log.error("job %s: unexpected error in the worker", execution.job_id, exc_info=error)
        assert self._keeper is not None
        job_id = execution.job_id
        with self._lock:
            unstarted = execution.outcome is None and execution not in self._started
            self._started.discard(execution)
            given_back = execution in self._given_back
        if unstarted and not given_back:
            self._give_back([execution])
        with self._lock:
            if self._running.get(job_id) is execution:  # not a newer execution of the same job
                del self._running[job_id]
                self._keeper.remove(job_id)
            self._given_back.discard(execution)
            if not unstarted:
                self.executions += 1
                self.outcomes[str(execution.outcome or Outcome.LOST)] += 1
            wake = self._room() > 0 or not self._running or self.stopping
        if wake:  # the loop sleeps while it has no room; a job ending below that changes nothing
            self._wake.set()

    def _give_back(self, executions: list[Execution]) -> None:
        """Return claimed jobs that never started to the queue, using no attempt."""
        leases = [(e.job_id, e.claimed.lease_token) for e in executions]
        try:
            if self._unclaim is not None:
                self._unclaim(leases)
            else:
                assert self.store is not None
                for job_id, token in leases:
                    with contextlib.suppress(LeaseLost):
                        self.store.release(job_id, token)
        except Exception:
            log.exception("could not return %d unstarted job(s); their leases will expire", len(leases))

    def _committed(self, execution: Execution, lost: bool) -> None:
        """A success handed to the completer was committed (or refused: lease lost)."""
        if not lost:
            execution.log_success()
            return
        execution.log_lost()
        with self._lock:
            self.outcomes[str(Outcome.SUCCEEDED)] -= 1
            self.outcomes[str(Outcome.LOST)] += 1
        execution.outcome = Outcome.LOST

    def _shutdown(self, store: Store) -> None:
        with self._lock:
            running = list(self._running.values())
        if not running:
            return
        log.info(
            "worker %s stopping: %d job(s) running, waiting up to %.1f s",
            self.worker_id,
            len(running),
            self.shutdown_timeout,
            extra={"event": "worker_stopping"},
        )
        for execution in running:
            execution.signal.stop("worker stopping")
        deadline = time.monotonic() + self.shutdown_timeout
        while self._running and time.monotonic() < deadline:
            self._wake.clear()
            if self._running:
                self._wake.wait(min(SIGNAL_CHECK, max(0.0, deadline - time.monotonic())))
        with self._lock:
            left = list(self._running.values())
            unstarted = [e for e in left if e not in self._started and e.outcome is None]
            self._given_back.update(unstarted)
        if unstarted:
            self._give_back(unstarted)
        for execution in left:
            if execution in unstarted:
                continue
            execution.signal.stop("worker stopped: shutdown timeout", lost=True)
            try:
                store.release(execution.job_id, execution.claimed.lease_token)
                log.warning(
                    "job %s did not finish within the shutdown timeout; released to the queue",
                    execution.job_id,
                    extra={"job_id": execution.job_id, "event": "released"},
                )
            except LeaseLost:
                pass
            except Exception:
                log.exception("could not release job %s; its lease will expire", execution.job_id)

    # -- signals ----------------------------------------------------------------------------
    def _install_signals(self) -> dict[int, Any] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _restore_signals(self, previous: dict[int, Any] | None) -> None:
        if previous is None:
            return
        for signum, handler in previous.items():
            signal.signal(signum, handler)
