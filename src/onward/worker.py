"""The worker: ``concurrency`` lanes, each a thread that claims jobs for itself (a batch at a
time while they are short), runs them one after another (async jobs on one shared event
loop) and hands their successes to a completer that commits them in batches. The main thread
keeps watch: it takes back the jobs of dead workers, waits for new jobs while a lane is idle,
and stops the worker gracefully. Heartbeats come from their own thread.

A lane does everything for its jobs on one thread: no hand-over between threads per job, and
with one lane per process (``--processes N --concurrency 1``) no thread competes for the GIL.
Signal handlers only set a flag and wake the main thread. An idle worker sleeps: the main
thread until its next duty, the lane waiting on the store until a job may be ready
(:mod:`onward.wakeups`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from onward import connecting, events
from onward.completions import Completer
from onward.duties import Duty
from onward.duties.reaper import Reaper
from onward.duties.scheduler import Scheduler
from onward.errors import LeaseLost, StoreClosed, describe
from onward.execution import Execution
from onward.journal import Journal, default_dir, journal_path
from onward.lanes import SIGNAL_CHECK, Lane, Lanes, SharedLoop
from onward.leases import LeaseKeeper
from onward.options import MAX_CONCURRENCY, MAX_TIMEOUT, check_queue
from onward.retry import backoff as backoff_after
from onward.stores.base import Store
from onward.wakeups import Wakeup
from onward.worker_signals import StopSignals

log = logging.getLogger("onward.worker")

MAX_ERROR_BACKOFF = 5.0
MEMORY_CHECK = 1.0  # seconds between looks at the process's memory (max_memory_mb)
WATCH_MAX = 5.0  # longest the main thread sleeps with nothing due (it is woken for anything sooner)


def resident_mb() -> float | None:
    """This process's resident memory in MB (Linux ``/proc``; ``None`` where unknown)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _positive(value: float | None, what: str, kind: type[int] | type[float]) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} must be a number > 0, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ValueError(f"{what} must be an int, got {value!r}")
    return kind(value)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker(Lanes):
    """Runs jobs from a store until stopped (or, in burst mode, until none is ready).

    ``queues=None`` serves every queue; ``concurrency`` jobs run at once. ``lease_timeout``
    is how long a job stays claimed without a heartbeat before another worker may take it;
    ``shutdown_timeout`` is how long running jobs get to finish when the worker stops.
    ``schedules`` runs the schedules declared in this process (``onward.schedule``).
    ``journal_dir``: where to keep the journal of the jobs it starts (default: a directory of
    this machine's workers of the same store), so that its jobs are taken over at once if its
    process dies (:mod:`onward.journal`). ``poll_interval``: the longest an idle worker sleeps
    before it looks for jobs on its own; it is woken at once when a job is enqueued (by this
    process, or by another through ``NOTIFY`` or SQLite's WAL file) and when a scheduled job
    comes due.
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
        schedules: bool = True,
        journal_dir: str | None = None,
        max_jobs: int | None = None,
        max_memory_mb: float | None = None,
        replace_when_stuck: bool = False,
    ) -> None:
        if isinstance(queues, str):
            queues = [q for q in queues.split(",") if q]
        for name in queues or ():
            check_queue(name, "queues")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be an int from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
        if not 0 < lease_timeout <= MAX_TIMEOUT:  # NaN included
            raise ValueError(f"lease_timeout must be > 0 and at most {MAX_TIMEOUT:g} seconds, got {lease_timeout!r}")
        if not 0 <= shutdown_timeout <= MAX_TIMEOUT:
            raise ValueError(
                f"shutdown_timeout must be >= 0 and at most {MAX_TIMEOUT:g} seconds, got {shutdown_timeout!r}"
            )
        self.queues = list(queues) if queues else None
        self.concurrency = concurrency
        self.lease_timeout = float(lease_timeout)
        self.shutdown_timeout = float(shutdown_timeout)
        self.store = store
        self.poll_interval = poll_interval
        self.worker_id = worker_id or default_worker_id()
        self.schedules = bool(schedules)  # run the schedules declared in this process
        self.journal_dir = journal_dir  # None: journal.default_dir(store.url)
        self._journal: Journal | None = None
        # Recycling (``onward worker --processes N --max-jobs-per-child ...``): stop gracefully
        # after this many executions, or once the process's memory grows past this many MB, or
        # once a timed-out job leaves a thread behind; ``recycled`` then says why.
        self.max_jobs = _positive(max_jobs, "max_jobs", int)
        self.max_memory_mb = _positive(max_memory_mb, "max_memory_mb", float)
        self.replace_when_stuck = bool(replace_when_stuck)
        self.recycled: str | None = None
        self._burst = False
        self.executions = 0
        self.outcomes: Counter[str] = Counter()
        self._running: dict[str, Execution] = {}  # every claimed job: started or held ahead
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # idle lanes wait on it
        self._wake = Wakeup()  # set by the store when jobs may be ready; the poller waits on it
        self._stop = threading.Event()
        self._signals = StopSignals()
        self._lanes: list[Lane] = []
        self._loop: SharedLoop | None = None
        self._keeper: LeaseKeeper | None = None
        self._completer: Completer | None = None
        self._duties: list[Duty] = []
        self._avg_run: float | None = None  # moving average of execution seconds
        self._generation = 0  # bumped by the main thread: idle lanes look for jobs again
        self._idle_lanes = 0  # lanes that found nothing, the poller included
        self._poller: Lane | None = None  # the idle lane waiting on the store for new jobs
        self._tick = Wakeup()  # wakes the main thread (poked by the stop signals' handler)
        self._watch_until = 0.0  # when the sleeping main thread wakes on its own (monotonic)
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

    def recycle(self, reason: str) -> None:
        """Stop gracefully so that a supervisor starts a fresh process in this one's place."""
        if self.recycled is None:
            self.recycled = reason
            log.info(
                "worker %s stopping to be replaced: %s",
                self.worker_id,
                reason,
                extra={"event": "worker_recycled", "worker_id": self.worker_id},
            )
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self._signals.received

    # -- running ----------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        """Claim and run jobs until stopped; with ``burst=True``, until none is ready and
        none of this worker's jobs is still running."""
        store = self.store if self.store is not None else connecting.default()
        self.store = store
        self._burst = burst
        self._signals.install(self._tick.poke)
        self._keeper = LeaseKeeper(store, self.lease_timeout)
        self._completer = Completer(store, self._committed)
        self._journal = self._open_journal(store)
        journal_dir = os.path.dirname(self._journal.path) if self._journal else None
        reaper = Reaper(self.lease_timeout, journal_dir, self.worker_id)
        self._duties = [reaper]
        if self.schedules:
            self._duties.append(Scheduler(self.worker_id))
        store.add_listener(self._wake)
        events.emit(events.Event(events.WORKER_STARTED, worker_id=self.worker_id))
        log.info(
            "worker %s started (queues: %s, concurrency %d, store %s)",
            self.worker_id,
            ",".join(self.queues) if self.queues else "all",
            self.concurrency,
            store.url,
            extra={"event": "worker_started", "worker_id": self.worker_id},
        )
        try:
            with contextlib.suppress(Exception):  # before the first claims; the main thread retries
                reaper.run(store)
            self._lanes = [Lane() for _ in range(self.concurrency)]
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
                self._close_duties(store)
                if self._completer is not None:
                    self._completer.close()
                if self._journal is not None:
                    self._journal.close()
                store.remove_listener(self._wake)
                self._keeper.close()
                if self._loop is not None:
                    self._loop.close()
                self._signals.restore()
                stopped = {"event": "worker_stopped", "worker_id": self.worker_id}
                log.info("worker %s stopped", self.worker_id, extra=stopped)
                events.emit(events.Event(events.WORKER_STOPPED, worker_id=self.worker_id))
        if self._fatal is not None:
            raise self._fatal

    def _open_journal(self, store: Store) -> Journal | None:
        try:
            directory = self.journal_dir or default_dir(store.url)
            return Journal(journal_path(directory, os.getpid()), self.worker_id)
        except OSError as exc:
            log.warning(
                "worker %s keeps no journal (%s): if its process dies, its jobs wait for their leases",
                self.worker_id,
                exc,
            )
            return None

    def _watch(self, store: Store, burst: bool) -> None:
        """The main thread: do the duties (take back expired leases...), notice signals,
        end a burst."""
        due = [0.0] * len(self._duties)
        failures = 0
        memory_due = 0.0
        while not self.stopping:
            try:
                self._time_out(store)
                if self.max_memory_mb is not None and time.monotonic() >= memory_due:
                    memory_due = time.monotonic() + MEMORY_CHECK
                    self._check_memory(self.max_memory_mb)
                self._do_duties(store, due)
                with self._lock:
                    if burst and self._burst_finished():
                        break
                self._tick.sleep(self._sleep_for(due, memory_due, burst))
                self._tick.clear()
                failures = 0
            except StoreClosed:
                raise
            except Exception as exc:
                failures = self._back_off(exc, failures)
        if burst and self._completer is not None:
            self._completer.flush()

    def _sleep_for(self, due: list[float], memory_due: float, burst: bool) -> float:
        """How long the main thread may sleep: until the next duty, memory check or job
        timeout (a lane that starts a job ending sooner wakes it; see ``_execute``). A burst
        also looks every ``SIGNAL_CHECK`` seconds whether it is over."""
        now = time.monotonic()
        until = min(due, default=now + WATCH_MAX)
        until = min(until, now + (SIGNAL_CHECK if burst else WATCH_MAX))
        if self.max_memory_mb is not None:
            until = min(until, memory_due)
        with self._lock:
            for lane in self._lanes:
                if lane.deadline is not None:
                    until = min(until, lane.deadline)
            self._watch_until = until
        return max(0.0, until - now)

    def _do_duties(self, store: Store, due: list[float]) -> None:
        for i, duty in enumerate(self._duties):
            if time.monotonic() < due[i]:
                continue
            try:
                ready = duty.run(store)
            finally:
                due[i] = time.monotonic() + duty.interval()  # asked after the run (the scheduler's next tick)
            if ready:
                with self._lock:  # jobs are ready again: look before a burst ends
                    self._found_nothing_at = -1
                    self._look_again()
                self._wake.set()

    def _check_memory(self, limit_mb: float) -> None:
        used = resident_mb()
        if used is not None and used > limit_mb:
            self.recycle(f"it uses {used:.0f} MB (--max-memory-per-child {limit_mb:g})")

    def _close_duties(self, store: Store) -> None:
        for duty in self._duties:
            try:
                duty.close(store)
            except Exception as exc:  # the store may be gone: a stopping worker goes on stopping
                log.warning("worker %s: %s could not close: %s", self.worker_id, duty.name, describe(exc))

    def _burst_finished(self) -> bool:
        """Every lane is idle and a claim found nothing after the last job ended."""
        if self._fatal is not None:
            return True
        if self._idle_lanes < len(self._lanes) or self._found_nothing_at != self._finished_count:
            return False
        if self._completer is not None and not self._completer.idle:
            return False  # successes still to commit may bring continuations or a batch's callbacks
        self._burst_done = True
        self._cond.notify_all()
        self._wake.set()  # the polling lane returns at once
        return True

    def _back_off(self, exc: Exception, failures: int) -> int:
        """Wait after a store error (longer after each in a row); returns the new count."""
        failures += 1
        delay = backoff_after(failures, 0.05, MAX_ERROR_BACKOFF)
        log.error(
            "worker %s: store error, retrying in %.2f s: %s",
            self.worker_id,
            delay,
            describe(exc),
            extra={"event": "store_error"},
        )
        self._stop.wait(delay)
        return failures

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
                extra={"event": "worker_stopping", "worker_id": self.worker_id},
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
