"""The worker: ``concurrency`` lanes, each a thread that claims jobs for itself (a batch at a
time while they are short), runs them one after another (async jobs on one shared event
loop) and hands their successes to a completer that commits them in batches. The main thread
keeps watch: it takes back the jobs of dead workers, waits for new jobs while a lane is idle,
and stops the worker gracefully. Heartbeats come from their own thread.

A lane does everything for its jobs on one thread: no hand-over between threads per job, and
with one lane per process (``--processes N --concurrency 1``) no thread competes for the GIL.
Signal handlers only set a flag, which the main thread reads at least every ``SIGNAL_CHECK``
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence

from onward import connecting, events
from onward.completions import Completer
from onward.duties import Duty
from onward.duties.reaper import Reaper
from onward.errors import LeaseLost, StoreClosed
from onward.execution import Execution, Outcome
from onward.leases import LeaseKeeper
from onward.retry import backoff as backoff_after
from onward.steps import StopSignal
from onward.stores.base import Claimed, Store
from onward.worker_signals import StopSignals

log = logging.getLogger("onward.worker")

SIGNAL_CHECK = 0.05
MAX_ERROR_BACKOFF = 5.0
# Prefetch: while jobs take less than PREFETCH_BELOW seconds on average, a lane claims jobs
# ahead of the one it runs next, in the same transaction, so that claiming costs a fraction
# of a commit per job: as many as run in about PREFETCH_HOLD seconds, at most
# PREFETCH_FACTOR. Long jobs are never prefetched: a prefetched job waits behind the running
# one, and other workers cannot take it.
PREFETCH_FACTOR = 32
PREFETCH_HOLD = 0.05
PREFETCH_BELOW = 0.02


class _Lane:
    """One of the worker's ``concurrency`` threads and the jobs it holds."""

    __slots__ = ("ahead", "current", "thread")

    def __init__(self) -> None:
        self.ahead: deque[Execution] = deque()  # claimed, not started yet
        self.current: Execution | None = None
        self.thread: threading.Thread | None = None


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
        self._running: dict[str, Execution] = {}  # every claimed job: started or held ahead
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # idle lanes wait on it
        self._wake = threading.Event()  # set by the store when jobs may be ready; the poller waits on it
        self._stop = threading.Event()
        self._signals = StopSignals()
        self._lanes: list[_Lane] = []
        self._loop: _Loop | None = None
        self._keeper: LeaseKeeper | None = None
        self._completer: Completer | None = None
        self._duties: list[Duty] = []
        self._avg_run: float | None = None  # moving average of execution seconds
        self._generation = 0  # bumped by the main thread: idle lanes look for jobs again
        self._idle_lanes = 0  # lanes that found nothing, the poller included
        self._poller: _Lane | None = None  # the idle lane waiting on the store for new jobs
        self._tick = threading.Event()  # wakes the main thread
        self._finished_count = 0  # jobs ended so far; tells burst mode that nothing changed
        self._found_nothing_at = -1  # _finished_count when a claim last found nothing
        self._burst_done = False
        self._fatal: BaseException | None = None

    # -- control --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop gracefully: no new claims; running jobs finish or checkpoint. Thread-safe."""
        self._stop.set()
        with self._lock:  # stepped jobs stop at their very next checkpoint, not a poll later
            running = list(self._running.values())
            self._cond.notify_all()
        for execution in running:
            execution.signal.stop("worker stopping")
        self._wake.set()
        self._tick.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self._signals.received

    # -- running ----------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        """Claim and run jobs until stopped; with ``burst=True``, until none is ready and
        none of this worker's jobs is still running."""
        store = self.store if self.store is not None else connecting.default()
        self.store = store
        self._signals.install()
        self._keeper = LeaseKeeper(store, self.lease_timeout)
        self._completer = Completer(store, self._committed)
        self._duties = [Reaper(self.lease_timeout)]
        store.add_listener(self._wake)
        events.emit(events.Event(events.WORKER_STARTED, worker_id=self.worker_id))
        log.info(
            "worker %s started (queues: %s, concurrency %d, store %s)",
            self.worker_id,
            ",".join(self.queues) if self.queues else "all",
            self.concurrency,
            store.url,
            extra={"event": "worker_started"},
        )
        try:
            with contextlib.suppress(Exception):  # before the first claims; the main thread retries
                store.reap_expired()
            self._lanes = [_Lane() for _ in range(self.concurrency)]
            for i, lane in enumerate(self._lanes):
                lane.thread = threading.Thread(
                    target=self._lane_loop, args=(lane, store, burst), name=f"onward-job-{i}", daemon=True
                )
                lane.thread.start()
            self._watch(store, burst)
        finally:
            try:
                self._shutdown(store)
            finally:
                if self._completer is not None:
                    self._completer.close()
                store.remove_listener(self._wake)
                self._keeper.close()
                if self._loop is not None:
                    self._loop.close()
                self._signals.restore()
                log.info("worker %s stopped", self.worker_id, extra={"event": "worker_stopped"})
                events.emit(events.Event(events.WORKER_STOPPED, worker_id=self.worker_id))
        if self._fatal is not None:
            raise self._fatal

    def _watch(self, store: Store, burst: bool) -> None:
        """The main thread: do the duties (take back expired leases...), notice signals,
        end a burst."""
        due = [0.0] * len(self._duties)
        failures = 0
        while not self.stopping:
            try:
                self._do_duties(store, due)
                with self._lock:
                    if burst and self._burst_finished():
                        break
                self._tick.wait(min(SIGNAL_CHECK, max(0.0, min(due, default=SIGNAL_CHECK) - time.monotonic())))
                self._tick.clear()
                failures = 0
            except StoreClosed:
                raise
            except Exception as exc:
                failures = self._back_off(exc, failures)
        if burst and self._completer is not None:
            self._completer.flush()

    def _do_duties(self, store: Store, due: list[float]) -> None:
        for i, duty in enumerate(self._duties):
            now = time.monotonic()
            if now < due[i]:
                continue
            due[i] = now + duty.interval()
            if duty.run(store):
                with self._lock:  # jobs are ready again: look before a burst ends
                    self._found_nothing_at = -1
                    self._look_again()
                self._wake.set()

    def _burst_finished(self) -> bool:
        """Every lane is idle and a claim found nothing after the last job ended."""
        if self._fatal is not None:
            return True
        if self._idle_lanes < len(self._lanes) or self._found_nothing_at != self._finished_count:
            return False
        self._burst_done = True
        self._cond.notify_all()
        self._wake.set()  # the polling lane returns at once
        return True

    def _look_again(self) -> None:
        """(Under the lock.) Jobs may be ready: one idle lane claims; if it finds any, it
        wakes the next."""
        self._generation += 1
        if self._idle_lanes > (self._poller is not None):
            self._cond.notify()
        elif self._poller is not None:
            self._wake.set()  # the only idle lane is the one waiting on the store

    # -- lanes ------------------------------------------------------------------------------
    def _lane_loop(self, lane: _Lane, store: Store, burst: bool) -> None:
        self._signals.block_here()  # stop signals go to the main thread (see worker_signals)
        failures = 0
        while True:
            stop_signal = self._signals.arrived()  # before the next job or claim, not a tick later
            with self._lock:
                if stop_signal or self.stopping or self._burst_done:
                    break
                execution = lane.ahead.popleft() if lane.ahead else None
                lane.current = execution
                generation, finished = self._generation, self._finished_count
            if execution is not None:
                self._execute(lane, execution)
                continue
            if self._completer is not None:
                self._completer.commit_here()
            self._wake.clear()  # a notification from now on is seen by this claim or wakes the poller
            try:
                claimed = store.claim(self.worker_id, self.queues, self.lease_timeout, self._batch_size())
                failures = 0
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
            self._idle(lane, store, burst, generation, finished)
        self._give_back_held(lane)

    def _idle(self, lane: _Lane, store: Store, burst: bool, generation: int, finished: int) -> None:
        """Nothing was ready. One idle lane (the poller) waits on the store for new jobs and
        claims as soon as one is announced; the others sleep until a lane finds jobs."""
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
                return
        try:
            if generation == self._generation:
                store.wait_for_jobs(self.queues, min(self.poll_interval, SIGNAL_CHECK), self._wake)
        except Exception as exc:
            self._back_off(exc, 0)
        finally:
            with self._lock:
                self._poller = None
                self._idle_lanes -= 1

    def _batch_size(self) -> int:
        """How many jobs to claim: one, plus prefetch while jobs are short."""
        avg = self._avg_run
        if avg is None or avg >= PREFETCH_BELOW:
            return 1
        return 1 + (min(PREFETCH_FACTOR, int(PREFETCH_HOLD / avg)) if avg > 0 else PREFETCH_FACTOR)

    def _hold(self, lane: _Lane, store: Store, claimed: list[Claimed]) -> None:
        assert self._keeper is not None
        executions = []
        for job in claimed:
            execution = Execution(store, job, StopSignal(), worker_id=self.worker_id)
            if self._completer is not None:
                execution.defer_completion = self._completer.add
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

    def _execute(self, lane: _Lane, execution: Execution) -> None:
        if execution.signal.stopping:  # stopped or lease lost before it started: never start it
            if execution.signal.lost:
                self._forget([execution])
            else:
                self._give_back([execution])
            with self._lock:
                lane.current = None
            return
        error: BaseException | None = None
        started = time.monotonic()
        try:
            if not execution.prepare():
                pass  # failed alone: its class cannot be imported
            elif execution.is_async:
                future = asyncio.run_coroutine_threadsafe(execution.run_async(), self._event_loop())
                future.result()
            else:
                execution.run()
        except BaseException as exc:
            error = exc
        seconds = time.monotonic() - started
        avg = self._avg_run
        self._avg_run = seconds if avg is None else avg + (seconds - avg) * 0.2
        if error is not None:
            log.error("job %s: unexpected error in the worker", execution.job_id, exc_info=error)
        assert self._keeper is not None
        with self._lock:
            lane.current = None
            if self._running.get(execution.job_id) is execution:  # not a newer execution of the job
                del self._running[execution.job_id]
                self._keeper.remove(execution.job_id)
            self.executions += 1
            self.outcomes[str(execution.outcome or Outcome.LOST)] += 1
            self._finished_count += 1
            if self._idle_lanes:
                self._look_again()  # a retry or a continuation may be ready now

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = _Loop()
            return self._loop.loop

    def _give_back_held(self, lane: _Lane) -> None:
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

    def _back_off(self, exc: Exception, failures: int) -> int:
        """Wait after a store error (longer after each in a row); returns the new count."""
        failures += 1
        delay = backoff_after(failures, 0.05, MAX_ERROR_BACKOFF)
        log.error(
            "worker %s: store error, retrying in %.2f s: %s",
            self.worker_id,
            delay,
            exc,
            extra={"event": "store_error"},
        )
        self._stop.wait(delay)
        return failures

    def _give_back(self, executions: Sequence[Execution]) -> None:
        """Return claimed jobs that never started to the queue, using no attempt."""
        leases = [(e.job_id, e.claimed.lease_token) for e in executions]
        try:
            assert self.store is not None
            self.store.unclaim(leases)
        except Exception:
            log.exception("could not return %d unstarted job(s); their leases will expire", len(leases))
        self._forget(executions)

    def _committed(self, execution: Execution, lost: bool) -> None:
        """A success handed to the completer was committed (or refused: lease lost)."""
        if not lost:
            execution.succeeded()
            return
        execution.lost()
        with self._lock:
            self.outcomes[str(Outcome.SUCCEEDED)] -= 1
            self.outcomes[str(Outcome.LOST)] += 1
        execution.outcome = Outcome.LOST

    def _shutdown(self, store: Store) -> None:
        self.stop()
        with self._lock:
            running = [lane.current for lane in self._lanes if lane.current is not None]
        deadline = time.monotonic() + self.shutdown_timeout
        if running:
            log.info(
                "worker %s stopping: %d job(s) running, waiting up to %.1f s",
                self.worker_id,
                len(running),
                self.shutdown_timeout,
                extra={"event": "worker_stopping"},
            )
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = [lane for lane in self._lanes if lane.thread is not None and lane.thread.is_alive()]
            left = [lane.current for lane in stuck if lane.current is not None]
            unstarted = [e for lane in stuck for e in lane.ahead]
            for lane in stuck:
                lane.ahead.clear()
        if unstarted:
            self._give_back(unstarted)
        for execution in left:
            execution.signal.stop("worker stopped: shutdown timeout", lost=True)
            try:
                store.release(execution.job_id, execution.claimed.lease_token)
                execution.emit(events.RELEASED, duration=execution.duration())
            except LeaseLost:
                pass
            except Exception:
                log.exception("could not release job %s; its lease will expire", execution.job_id)
