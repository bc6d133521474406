"""The worker: claims ready jobs, runs them on threads (async jobs on one event loop), keeps
their leases alive, takes back jobs of dead workers, and stops gracefully.

The main loop is the only thread that claims. Signal handlers only set a flag, which the loop
reads at least every ``SIGNAL_CHECK`` seconds.
"""

from __future__ import annotations

import asyncio
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
from concurrent.futures import Future
from types import FrameType
from typing import Any

from onward import stores
from onward.errors import LeaseLost, OnwardError
from onward.execution import Execution, Outcome
from onward.leases import LeaseKeeper
from onward.steps import StopSignal
from onward.stores.base import Claimed, Store

log = logging.getLogger("onward.worker")

SIGNAL_CHECK = 0.05
MAX_ERROR_BACKOFF = 5.0


class _Threads:
    """``size`` daemon threads running submitted calls: a job thread stuck past the shutdown
    timeout cannot keep the process from exiting."""

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"onward-job-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._queue.put(call)
        return future

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
                free = self.concurrency - len(self._running)
                if free > 0:
                    claimed = store.claim(self.worker_id, self.queues, self.lease_timeout, free)
                    for job in claimed:
                        self._dispatch(store, job)
                    if claimed:
                        backoff = 0.0
                        continue
                    if burst and not self._running:
                        return
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
        assert self._keeper is not None
        assert self._threads is not None
        with self._lock:
            self._running[claimed.id] = execution
        self._keeper.add(claimed.id, claimed.lease_token, execution.signal)
        future: Future[Any]
        if not execution.prepare():
            future = Future()
            future.set_result(execution.outcome)
        elif execution.is_async:
            if self._loop is None:
                self._loop = _Loop()
            future = asyncio.run_coroutine_threadsafe(execution.run_async(), self._loop.loop)
        else:
            future = self._threads.submit(execution.run)
        future.add_done_callback(lambda f: self._finished(execution, f))

    def _finished(self, execution: Execution, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("job %s: unexpected error in the worker", execution.job_id, exc_info=future.exception())
        assert self._keeper is not None
        self._keeper.remove(execution.job_id)
        with self._lock:
            self._running.pop(execution.job_id, None)
            self.executions += 1
            self.outcomes[str(execution.outcome or Outcome.LOST)] += 1
        self._wake.set()

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
        for execution in left:
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
