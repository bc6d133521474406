"""Running one claimed job to an outcome: succeeded, failed (maybe to retry) or interrupted.

An execution never holds a transaction while user code runs. Its writes are guarded by its
lease token; if the lease was taken back, the store refuses them (``LeaseLost``) and the
execution ends as ``lost`` having changed nothing. Success, the result, the final checkpoint
and every continuation are one transaction (``Store.complete``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import threading
import traceback
import weakref
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from onward import serialization, stores
from onward.errors import FATAL_ERRORS, Interrupt, LeaseLost, OnwardError, ResumeLimitExceeded, SerializationError
from onward.job import Collector, Job, JobHandle, collector, load_job_class
from onward.leases import LeaseKeeper
from onward.steps import StepRunner, StopSignal, encode_state
from onward.stores.base import Checkpoint, Claimed, NewJob, Store

log = logging.getLogger("onward.worker")

PERFORM_NOW_LEASE = 30.0

# Whether a job class's perform is ``async def``, asked once per class.
_async_classes: weakref.WeakKeyDictionary[type[Job], bool] = weakref.WeakKeyDictionary()


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISCARDED = "discarded"
    RETRYING = "retrying"
    RESUMING = "resuming"
    INTERRUPTED = "interrupted"
    LOST = "lost"


def format_error(exc: BaseException) -> str:
    """The traceback of ``exc``, its last line ``module.Type: message``."""
    te = traceback.TracebackException.from_exception(exc)
    text = "".join(te.format())
    only = "".join(te.format_exception_only())
    if text.endswith(only):
        text = text[: -len(only)]
    cls = type(exc)
    message = str(exc)
    last = f"{cls.__module__}.{cls.__qualname__}" + (f": {message}" if message else "")
    return text + last


def _interrupt_in(exc: BaseException) -> Interrupt | None:
    """The Interrupt carried by ``exc``, unwrapping exception groups (asyncio.TaskGroup)."""
    if isinstance(exc, Interrupt):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _interrupt_in(inner)
            if found is not None:
                return found
    return None


class Execution:
    """One run of a claimed job. ``caller=True`` is ``perform_now``: no retries, errors raise."""

    def __init__(
        self, store: Store, claimed: Claimed, signal: StopSignal | None = None, *, caller: bool = False
    ) -> None:
        self.store = store
        self.claimed = claimed
        self.signal = signal or StopSignal()
        self.caller = caller
        self.job_class: type[Job] | None = None
        self.job: Job | None = None
        self.runner: StepRunner | None = None
        self.outcome: Outcome | None = None
        self.result: Any = None
        self.exception: BaseException | None = None
        self._state_json = claimed.job_state
        self._pending_save: asyncio.Future[None] | None = None
        self._save_again = False
        # Set by a worker that batches completions: a success without continuations is
        # handed to it instead of being committed here (see ``onward.completions``).
        self.defer_completion: Callable[[Execution, str, Checkpoint, str | None], None] | None = None

    @property
    def job_id(self) -> str:
        return self.claimed.id

    # -- setting up ---------------------------------------------------------------------
    def prepare(self) -> bool:
        """Import the job class; a class that cannot be imported fails this job alone."""
        try:
            self.job_class = load_job_class(self.claimed.job_class)
            return True
        except OnwardError as exc:
            self._finish_error(exc)
            return False

    @property
    def is_async(self) -> bool:
        cls = self.job_class
        if cls is None:
            return False
        try:
            return _async_classes[cls]
        except KeyError:
            answer = _async_classes[cls] = inspect.iscoroutinefunction(cls.perform)
            return answer

    def _start(self, async_mode: bool) -> tuple[Job, list[Any], dict[str, Any]]:
        cls = self.job_class
        assert cls is not None
        claimed = self.claimed
        args = serialization.from_json(claimed.args)
        kwargs = serialization.from_json(claimed.kwargs)
        job = cls()
        job.id = claimed.id
        job.attempt = claimed.attempts
        job.resumptions = claimed.resumptions
        job.state = serialization.from_json(claimed.job_state) or {}
        job.result = None
        runner = StepRunner(
            job,
            serialization.from_json(claimed.steps) or [],
            self.signal,
            self._save_async if async_mode else self._save,
            interval=float(cls.checkpoint_interval),
            max_run_time=cls.max_run_time,
            flush=self._flush if async_mode else None,
        )
        job._runner = runner
        self.job, self.runner = job, runner
        if claimed.resumed:
            where = next((s["name"] for s in runner.records if s["status"] != "completed"), None)
            log.info(
                "%s %s resumed%s (attempt %d, resumption %d)",
                cls.__qualname__,
                claimed.id,
                f" at step {where!r}" if where else "",
                claimed.attempts,
                claimed.resumptions,
                extra={"job_id": claimed.id, "event": "resumed"},
            )
        else:
            log.info(
                "%s %s started (attempt %d)",
                cls.__qualname__,
                claimed.id,
                claimed.attempts,
                extra={"job_id": claimed.id, "event": "started"},
            )
        return job, args, kwargs

    # -- checkpoints --------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """The progress to save now. A ``self.state`` that cannot be stored raises; the
        last good one is kept for the failure record."""
        runner, job = self.runner, self.job
        if runner is None or job is None:
            return Checkpoint(self.claimed.steps, self.claimed.job_state, False)
        steps = runner.steps_json()
        self._state_json = encode_state(job, self._state_json)
        return Checkpoint(steps, self._state_json, runner.progressed())

    def _final_checkpoint(self) -> Checkpoint:
        try:
            return self.checkpoint()
        except SerializationError:
            runner = self.runner
            steps = serialization.to_json(runner.snapshot_steps(), "steps") if runner else self.claimed.steps
            return Checkpoint(steps, self._state_json, bool(runner and runner.progressed()))

    def _save(self, force: bool) -> None:
        try:
            self.store.save_checkpoint(self.claimed.id, self.claimed.lease_token, self.checkpoint())
        except LeaseLost:
            self.signal.stop("lease lost", lost=True)
            raise Interrupt("lease lost") from None

    def _save_async(self, force: bool) -> None:
        """From the event loop: hand the save to a thread; at most one in flight, in order."""
        if self.signal.lost:
            raise Interrupt("lease lost")
        if self._pending_save is not None and not self._pending_save.done():
            self._save_again = True
            return
        checkpoint = self.checkpoint()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            None, self.store.save_checkpoint, self.claimed.id, self.claimed.lease_token, checkpoint
        )
        self._pending_save = future
        future.add_done_callback(self._saved)

    def _saved(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        if isinstance(future.exception(), LeaseLost):
            self.signal.stop("lease lost", lost=True)
        elif future.exception() is not None:
            log.error("checkpoint save failed for job %s: %s", self.claimed.id, future.exception())
        if self._save_again and not self.signal.lost:
            self._save_again = False
            with contextlib.suppress(Interrupt, SerializationError):
                self._save_async(True)

    async def _flush(self) -> None:
        """Wait for the save in flight, then save now, without blocking the event loop."""
        while self._pending_save is not None and not self._pending_save.done():
            await asyncio.wait([self._pending_save])
        self._save_again = False
        if self.signal.lost:
            raise Interrupt("lease lost")
        checkpoint = self.checkpoint()
        try:
            await asyncio.to_thread(self.store.save_checkpoint, self.claimed.id, self.claimed.lease_token, checkpoint)
        except LeaseLost:
            self.signal.stop("lease lost", lost=True)
            raise Interrupt("lease lost") from None

    # -- running ------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Run a sync job (or an async one on a fresh event loop) to its outcome."""
        if self.job_class is None and not self.prepare():
            assert self.outcome is not None
            return self.outcome
        if self.is_async:
            return asyncio.run(self.run_async())
        try:
            job, args, kwargs = self._start(async_mode=False)
            result = job.perform(*args, **kwargs)
            if result is not None and inspect.isawaitable(result):
                raise TypeError(f"{type(job).__qualname__}.perform returned an awaitable; define it with async def")
            self._runner_done()
            result_json = self._encode_result(result)
            handles, children, cont_error = self._run_continuations(args, kwargs, result)
        except BaseException as exc:
            return self._on_exception(exc)
        return self._finish_success(result, result_json, children, handles, cont_error)

    async def run_async(self) -> Outcome:
        """Run an async job on the current event loop; store writes go to threads."""
        if self.job_class is None and not self.prepare():
            assert self.outcome is not None
            return self.outcome
        try:
            job, args, kwargs = self._start(async_mode=True)
            result = await job.perform(*args, **kwargs)
            self._runner_done()
            while self._pending_save is not None and not self._pending_save.done():
                await asyncio.wait([self._pending_save])
            result_json = self._encode_result(result)
            handles, children, cont_error = await self._run_continuations_async(args, kwargs, result)
        except BaseException as exc:
            return await asyncio.to_thread(self._on_exception, exc)
        return await asyncio.to_thread(self._finish_success, result, result_json, children, handles, cont_error)

    def _runner_done(self) -> None:
        if self.runner is not None:
            self.runner.finish()

    def _encode_result(self, result: Any) -> str:
        assert self.job_class is not None
        try:
            return serialization.to_json(result, "result")
        except SerializationError as exc:
            raise SerializationError(f"{self.job_class.__qualname__}: {exc}") from None

    def _run_continuations(
        self, args: list[Any], kwargs: dict[str, Any], result: Any
    ) -> tuple[list[JobHandle], list[NewJob], str | None]:
        job = self.job
        assert job is not None
        if not type(job).has_continuations():
            return [], [], None
        job.result = result
        pending = Collector(self.store)
        token = collector.set(pending)
        try:
            outcome = job.continuations(*args, **kwargs)
            if inspect.isawaitable(outcome):
                raise TypeError("continuations returned an awaitable but perform is not async def")
        except Exception as exc:
            return [], [], self._continuation_failed(exc)
        finally:
            collector.reset(token)
        return pending.handles, pending.jobs, None

    async def _run_continuations_async(
        self, args: list[Any], kwargs: dict[str, Any], result: Any
    ) -> tuple[list[JobHandle], list[NewJob], str | None]:
        job = self.job
        assert job is not None
        if not type(job).has_continuations():
            return [], [], None
        job.result = result
        pending = Collector(self.store)
        token = collector.set(pending)
        try:
            outcome = job.continuations(*args, **kwargs)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            return [], [], self._continuation_failed(exc)
        finally:
            collector.reset(token)
        return pending.handles, pending.jobs, None

    def _continuation_failed(self, exc: BaseException) -> str:
        text = format_error(exc)
        log.error(
            "%s %s: continuations raised; none of them was enqueued: %s",
            self._name,
            self.claimed.id,
            text.splitlines()[-1],
            extra={"job_id": self.claimed.id, "event": "continuation_error"},
        )
        return text

    @property
    def _name(self) -> str:
        return self.job_class.__qualname__ if self.job_class else self.claimed.job_class

    # -- outcomes -------------------------------------------------------------------------
    def _finish_success(
        self, result: Any, result_json: str, children: list[NewJob], handles: list[JobHandle], cont_error: str | None
    ) -> Outcome:
        if self.signal.lost:
            return self._lost()
        try:
            checkpoint = self.checkpoint()
        except SerializationError as exc:
            return self._finish_error(exc)
        if not children and self.defer_completion is not None:
            # The worker commits this success with others in one transaction, after this
            # thread has moved on; it logs the success (or the lost lease) once committed.
            self.result = result
            self.defer_completion(self, result_json, checkpoint, cont_error)
            return self._set(Outcome.SUCCEEDED)
        try:
            ids = self.store.complete(
                self.claimed.id, self.claimed.lease_token, result_json, checkpoint, children, cont_error
            )
        except LeaseLost:
            return self._lost()
        for handle, child_id in zip(handles, ids, strict=True):
            handle._id = child_id
        self.result = result
        self.log_success(len(ids))
        return self._set(Outcome.SUCCEEDED)

    def log_success(self, continuations: int = 0) -> None:
        log.info(
            "%s %s succeeded%s",
            self._name,
            self.claimed.id,
            f" ({continuations} continuations)" if continuations else "",
            extra={"job_id": self.claimed.id, "event": "succeeded"},
        )

    def log_lost(self) -> None:
        log.warning(
            "%s %s: lease lost; this execution's result is dropped",
            self._name,
            self.claimed.id,
            extra={"job_id": self.claimed.id, "event": "lease_lost"},
        )

    def _on_exception(self, exc: BaseException) -> Outcome:
        interrupt = _interrupt_in(exc)
        if interrupt is not None:
            return self._finish_interrupt(interrupt)
        return self._finish_error(exc)

    def _finish_interrupt(self, interrupt: Interrupt) -> Outcome:
        if self.signal.lost:
            return self._lost()
        cls = self.job_class
        limit = cls.max_resumptions if cls else None
        if limit is not None and self.claimed.resumptions + 1 > limit:
            return self._finish_error(
                ResumeLimitExceeded(f"{self._name}: interrupted more than max_resumptions={limit} times")
            )
        checkpoint = self._final_checkpoint()
        try:
            if self.caller:
                self.store.save_checkpoint(self.claimed.id, self.claimed.lease_token, checkpoint, resumption=True)
            else:
                self.store.interrupt(self.claimed.id, self.claimed.lease_token, checkpoint)
        except LeaseLost:
            return self._lost()
        self.exception = interrupt
        log.info(
            "%s %s interrupted (%s) %s",
            self._name,
            self.claimed.id,
            interrupt.reason,
            interrupt.where,
            extra={"job_id": self.claimed.id, "event": "interrupted"},
        )
        return self._set(Outcome.INTERRUPTED)

    def _finish_error(self, exc: BaseException) -> Outcome:
        self.exception = exc
        if self.signal.lost:
            return self._lost()
        cls = self.job_class
        claimed = self.claimed
        checkpoint = self._final_checkpoint()
        error = format_error(exc)
        if isinstance(exc, FATAL_ERRORS) or cls is None:
            return self._write_failure(checkpoint, error, discard=False)
        if isinstance(exc, cls.discard_on):
            return self._write_failure(checkpoint, error, discard=True)
        if self.caller or not isinstance(exc, Exception) or not cls.retry.retries(exc):
            return self._write_failure(checkpoint, error, discard=False)
        delay = cls.retry.delay(claimed.attempts)
        if checkpoint.progressed and cls.resume_errors_after_advancing:
            limit = cls.max_resumptions
            if limit is not None and claimed.resumptions + 1 > limit:
                try:
                    raise ResumeLimitExceeded(
                        f"{self._name}: failed after progress more than max_resumptions={limit} times"
                    ) from exc
                except ResumeLimitExceeded as limited:
                    self.exception = limited
                    return self._write_failure(checkpoint, format_error(limited), discard=False)
            return self._write_retry(checkpoint, error, delay, resumption=True)
        if claimed.attempts < cls.retry.attempts:
            return self._write_retry(checkpoint, error, delay, resumption=False)
        return self._write_failure(checkpoint, error, discard=False)

    def _write_failure(self, checkpoint: Checkpoint, error: str, discard: bool) -> Outcome:
        try:
            self.store.fail(self.claimed.id, self.claimed.lease_token, checkpoint, error, discard=discard)
        except LeaseLost:
            return self._lost()
        outcome = Outcome.DISCARDED if discard else Outcome.FAILED
        log.warning(
            "%s %s %s: %s",
            self._name,
            self.claimed.id,
            outcome.value,
            error.splitlines()[-1],
            extra={"job_id": self.claimed.id, "event": outcome.value},
        )
        return self._set(outcome)

    def _write_retry(self, checkpoint: Checkpoint, error: str, delay: float, resumption: bool) -> Outcome:
        try:
            self.store.retry(self.claimed.id, self.claimed.lease_token, checkpoint, error, delay, resumption)
        except LeaseLost:
            return self._lost()
        what = "resume from its checkpoint" if resumption else "retry"
        log.warning(
            "%s %s failed (%s); %s in %.1f s",
            self._name,
            self.claimed.id,
            error.splitlines()[-1],
            what,
            delay,
            extra={"job_id": self.claimed.id, "event": "resume_scheduled" if resumption else "retry_scheduled"},
        )
        return self._set(Outcome.RESUMING if resumption else Outcome.RETRYING)

    def _lost(self) -> Outcome:
        self.log_lost()
        return self._set(Outcome.LOST)

    def _set(self, outcome: Outcome) -> Outcome:
        self.outcome = outcome
        return outcome


# -- perform_now -------------------------------------------------------------------------

_keepers: dict[int, LeaseKeeper] = {}
_keepers_lock = threading.Lock()


def _keeper(store: Store) -> LeaseKeeper:
    with _keepers_lock:
        keeper = _keepers.get(id(store))
        if keeper is None or keeper.store is not store:
            keeper = _keepers[id(store)] = LeaseKeeper(store, PERFORM_NOW_LEASE)
        return keeper


def caller_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:caller"


def perform_now(job: NewJob) -> Any:
    """Run ``job`` in the calling thread, recorded in the default store (see ``Job.perform_now``)."""
    store = stores.default()
    claimed = store.start_now(job, caller_id(), PERFORM_NOW_LEASE)
    signal = StopSignal()
    keeper = _keeper(store)
    keeper.add(claimed.id, claimed.lease_token, signal)
    token = collector.set(None)  # a perform_now inside continuations is not part of that block
    try:
        while True:
            execution = Execution(store, claimed, signal, caller=True)
            outcome = _run_here(execution)
            if outcome == Outcome.INTERRUPTED:
                claimed = _resumed(claimed, execution)
                continue
            if outcome == Outcome.SUCCEEDED:
                return execution.result
            if outcome == Outcome.LOST:
                raise LeaseLost(f"job {claimed.id} lost its lease while running in perform_now")
            assert execution.exception is not None
            raise execution.exception
    finally:
        collector.reset(token)
        keeper.remove(claimed.id)


def _run_here(execution: Execution) -> Outcome:
    if execution.job_class is None and not execution.prepare():
        assert execution.outcome is not None
        return execution.outcome
    if not execution.is_async:
        return execution.run()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(execution.run_async())
    # Called from inside an event loop: run the job on a loop of its own, in a thread.
    box: list[Outcome] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(execution.run_async())))
    thread.start()
    thread.join()
    return box[0]


def _resumed(claimed: Claimed, execution: Execution) -> Claimed:
    """The same claim, continuing in place from the checkpoint just saved (``perform_now``)."""
    checkpoint = execution._final_checkpoint()
    return dataclasses.replace(
        claimed,
        resumptions=claimed.resumptions + 1,
        steps=checkpoint.steps,
        job_state=checkpoint.job_state,
        resumed=True,
    )
