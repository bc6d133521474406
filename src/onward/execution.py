"""Running one claimed job to an outcome: succeeded, failed (maybe to retry) or interrupted.

An execution never holds a transaction while user code runs. Its writes are guarded by its
lease token; if the lease was taken back, the store refuses them (``LeaseLost``) and the
execution ends as ``lost`` having changed nothing. Success, the result, the final checkpoint
and every continuation are one transaction (``Store.complete``). What a failure leads to is
decided by :mod:`onward.lifecycle`; every step of the way is announced through
:mod:`onward.events`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from onward import events, lifecycle, serialization
from onward.cancelling import perform_cancellable
from onward.checkpoints import CheckpointWriter, open_runner
from onward.continuing import Continued, run_continuations, run_continuations_async
from onward.errors import (
    FATAL_ERRORS,
    Interrupt,
    JobCancelled,
    LeaseLost,
    OnwardError,
    ResumeLimitExceeded,
    SerializationError,
    format_error,
)
from onward.lifecycle import Outcome, Verdict
from onward.registry import load_job_class
from onward.steps import StepRunner, StopSignal, encode_state
from onward.stores.base import Checkpoint, Claimed, NewJob, Store
from onward.time_limits import perform_within, timeout_error

if TYPE_CHECKING:
    from onward.job import Job

__all__ = ["Execution", "Outcome", "format_error"]

# Whether a job class's perform is ``async def``, asked once per class.
_async_classes: weakref.WeakKeyDictionary[type[Job], bool] = weakref.WeakKeyDictionary()


class Execution:
    """One run of a claimed job. ``caller=True`` is ``perform_now``: no retries, errors raise."""

    def __init__(
        self,
        store: Store,
        claimed: Claimed,
        signal: StopSignal | None = None,
        *,
        caller: bool = False,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.claimed = claimed
        self.signal = signal or StopSignal()
        self.caller = caller
        self.worker_id = worker_id
        self.job_class: type[Job] | None = None
        self.job: Job | None = None
        self.runner: StepRunner | None = None
        self.outcome: Outcome | None = None
        self.result: Any = None
        self.exception: BaseException | None = None
        self.started = 0.0
        self._state_json = claimed.job_state
        self._async_mode = False
        self._checkpoints: CheckpointWriter | None = None
        # Set by a worker that batches completions: a success (with its continuations, when
        # none has a unique key) is handed to it instead of being committed here (see
        # ``onward.completions``).
        self.defer_completion: Callable[[Execution, str, Checkpoint, str | None, list[NewJob]], None] | None = None
        self._deferred_children: list[NewJob] = []

    @property
    def job_id(self) -> str:
        return self.claimed.id

    @property
    def name(self) -> str:
        return self.job_class.__qualname__ if self.job_class else self.claimed.job_class

    # -- events ---------------------------------------------------------------------------
    def emit(self, kind: str, **data: Any) -> None:
        """Announce ``kind`` for this execution (see :mod:`onward.events`)."""
        if kind in events.wanted:
            c = self.claimed
            if kind not in events.built:  # only counters listen: the event is not built
                return events.count(kind, c.queue, c.job_class, data.get("duration"))
            events.emit(events.event(kind, c.id, c.job_class, c.queue, c.attempts, c.resumptions, self.worker_id, data))

    def _saved(self) -> None:
        if events.CHECKPOINTED in events.wanted:
            step = self.runner.current if self.runner is not None else None
            self.emit(events.CHECKPOINTED, step=step.name if step else None, cursor=step.cursor if step else None)

    @property
    def writer(self) -> CheckpointWriter:
        """What saves this execution's checkpoints, made on first use (most jobs save none)."""
        if self._checkpoints is None:
            self._checkpoints = CheckpointWriter(self.store, self.claimed, self.signal, self.checkpoint, self._saved)
        return self._checkpoints

    def _save(self, force: bool) -> None:
        self.writer.save(force)

    def duration(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

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
    def timeout(self) -> float | None:
        """Seconds this execution may run: ``set(timeout=...)``, else the class's."""
        if self.claimed.timeout is not None:
            return float(self.claimed.timeout)
        return self.job_class.timeout if self.job_class is not None else None

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
        job.scheduled_for = claimed.scheduled_for
        job.batch_id = claimed.batch_id
        job.parent_batch_id = claimed.parent_batch_id
        job._store = self.store
        self._async_mode = async_mode
        if async_mode:
            _ = self.writer  # made now: an async job's saves go through it from the start
        job._open_runner = self._open_runner
        job._stop = self.signal
        self.job = job
        self.started = time.monotonic()
        if events.STARTED in events.built:
            where = None
            if claimed.resumed:
                records = serialization.from_json(claimed.steps) or []
                where = next((s["name"] for s in records if s["status"] != "completed"), None)
            self.emit(events.STARTED, resumed=claimed.resumed, step=where, trace=claimed.trace_context)
        elif events.STARTED in events.wanted:  # only counters listen
            events.count(events.STARTED, claimed.queue, claimed.job_class, None)
        return job, args, kwargs

    def _open_runner(self) -> StepRunner:
        """The job's step runner, made when it first calls ``step``: most jobs never do, and
        those save their step records unchanged."""
        assert self.job is not None
        writer = self.writer if self._async_mode else None
        runner = open_runner(self.job, self.claimed, self.signal, self._save, writer, self.emit, self.started)
        self.job._runner = self.runner = runner
        return runner

    # -- checkpoints --------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """The progress to save now. A ``self.state`` that cannot be stored raises; the
        last good one is kept for the failure record."""
        runner, job = self.runner, self.job
        if job is None:
            return Checkpoint(self.claimed.steps, self.claimed.job_state, False)
        self._state_json = encode_state(job, self._state_json)
        if runner is None:  # no step ran: the records are as stored
            steps = self.claimed.steps
            return Checkpoint("[]" if steps is None else steps, self._state_json, False)
        return Checkpoint(runner.steps_json(), self._state_json, runner.progressed())

    def final_checkpoint(self) -> Checkpoint:
        """The progress to record with an outcome; a ``self.state`` that cannot be stored
        is replaced by the last good one."""
        try:
            return self.checkpoint()
        except (SerializationError, RuntimeError):  # RuntimeError: read while an abandoned thread changes it
            runner = self.runner
            steps = serialization.to_json(runner.snapshot_steps(), "steps") if runner else self.claimed.steps
            return Checkpoint(steps, self._state_json, bool(runner and runner.progressed()))

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
            continued = run_continuations(job, self.store, args, kwargs, result, self._continuation_failed)
        except BaseException as exc:
            return self._ended(self._on_exception(exc))
        return self._ended(self._finish_success(result, result_json, continued))

    async def run_async(self) -> Outcome:
        """Run an async job on the current event loop; store writes go to threads."""
        if self.job_class is None and not self.prepare():
            assert self.outcome is not None
            return self.outcome
        try:
            job, args, kwargs = self._start(async_mode=True)
            perform = perform_within(job.perform(*args, **kwargs), self.timeout, self.name)
            result = await perform_cancellable(self.signal, perform)
            self._runner_done()
            await self.writer.settle()
            result_json = self._encode_result(result)
            continued = await run_continuations_async(job, self.store, args, kwargs, result, self._continuation_failed)
        except BaseException as exc:
            return self._ended(await asyncio.to_thread(self._on_exception, exc))
        return self._ended(await asyncio.to_thread(self._finish_success, result, result_json, continued))

    def time_out(self, limit: float) -> Outcome:
        """(From the worker's watchdog, while the job's thread is still in ``perform``.) The
        execution ran past its ``timeout``: stop it from writing anything more, and fail this
        try with :class:`JobTimeout` (retried by the job's policy)."""
        self.signal.stop("timed out", lost=True)
        return self._ended(self._finish_error(timeout_error(self.name, limit), abandoned=True))

    def _ended(self, outcome: Outcome) -> Outcome:
        if events.EXECUTION_ENDED in events.built:
            self.emit(events.EXECUTION_ENDED, outcome=outcome.value)
        elif events.EXECUTION_ENDED in events.wanted:  # only counters listen
            events.count(events.EXECUTION_ENDED, self.claimed.queue, self.claimed.job_class, None)
        return outcome

    def _runner_done(self) -> None:
        if self.runner is not None:
            self.runner.finish()

    def _encode_result(self, result: Any) -> str:
        assert self.job_class is not None
        try:
            return serialization.to_json(result, "result")
        except SerializationError as exc:
            raise SerializationError(f"{self.job_class.__qualname__}: {exc}") from None

    def _continuation_failed(self, exc: Exception) -> str:
        text = format_error(exc)
        self.emit(events.CONTINUATION_ERROR, error=text)
        return text

    # -- outcomes -------------------------------------------------------------------------
    def _finish_success(self, result: Any, result_json: str, continued: Continued) -> Outcome:
        pending, cont_error = continued
        children = pending.jobs if pending is not None else []
        batches = pending.batches if pending is not None else []
        if self.signal.lost:
            return self._lost()
        if self.signal.cancelled:  # perform returned after the job was cancelled
            return self._finish_cancel(None)
        try:
            checkpoint = self.checkpoint()
        except SerializationError as exc:
            return self._finish_error(exc)
        # (A continuation with a unique key has its id only once its key is looked up: not deferred.)
        keyed = any(c.unique_key is not None for c in children)
        if self.defer_completion is not None and not batches and not keyed:
            # The worker commits this success (and its continuations, whose ids are already
            # final) with others in one transaction, after this thread has moved on; it
            # announces the success (or the lost lease) once committed. Batches opened in
            # ``continuations`` are committed here, with the success.
            self.result = result
            self._deferred_children = children
            self.defer_completion(self, result_json, checkpoint, cont_error, children)
            return self._set(Outcome.SUCCEEDED)
        try:
            ids = self.store.complete(
                self.claimed.id,
                self.claimed.lease_token,
                result_json,
                checkpoint,
                children,
                cont_error,
                batches,
                member=self.claimed.batch_id is not None,
            )
        except LeaseLost:
            return self._lost()
        if pending is not None:
            pending.resolve(ids)
            events.enqueued(children + pending.members, ids)
        self.result = result
        self.succeeded(len(children))
        return self._set(Outcome.SUCCEEDED)

    def succeeded(self, continuations: int = 0) -> None:
        """Announce the committed success."""
        if events.SUCCEEDED in events.built:
            self.emit(events.SUCCEEDED, continuations=continuations, duration=self.duration())
        elif events.SUCCEEDED in events.wanted:  # only counters listen
            events.count(events.SUCCEEDED, self.claimed.queue, self.claimed.job_class, self.duration())

    def deferred_committed(self) -> int:
        """Announce a success committed by the worker's completer, with its continuations;
        returns how many continuations it enqueued."""
        children = self._deferred_children
        if children:
            self._deferred_children = []
            events.enqueued(children, [c.id for c in children])
        self.succeeded(len(children))
        return len(children)

    def lost(self) -> None:
        """Announce that this execution's lease was taken back (nothing it did is kept)."""
        self.emit(events.LOST, duration=self.duration())

    def _on_exception(self, exc: BaseException) -> Outcome:
        interrupt = Interrupt.found_in(exc)
        if self.signal.cancelled and not self.signal.lost:
            quiet = interrupt is not None or isinstance(exc, asyncio.CancelledError)
            return self._finish_cancel(None if quiet else format_error(exc))
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
                ResumeLimitExceeded(f"{self.name}: interrupted more than max_resumptions={limit} times")
            )
        checkpoint = self.final_checkpoint()
        try:
            if self.caller:
                self.store.save_checkpoint(self.claimed.id, self.claimed.lease_token, checkpoint, resumption=True)
            else:
                self.store.interrupt(self.claimed.id, self.claimed.lease_token, checkpoint)
        except LeaseLost:
            return self._lost()
        self.exception = interrupt
        self.emit(events.INTERRUPTED, reason=interrupt.reason, where=interrupt.where, duration=self.duration())
        return self._set(Outcome.INTERRUPTED)

    def _finish_cancel(self, error: str | None) -> Outcome:
        """The job was cancelled and this execution noticed: it ends as cancelled, progress kept."""
        checkpoint = self.final_checkpoint()
        try:
            self.store.cancel_running(self.claimed.id, self.claimed.lease_token, checkpoint, error)
        except LeaseLost:
            return self._lost()
        self.exception = JobCancelled(f"{self.name}: job {self.claimed.id} was cancelled")
        self.emit(events.CANCELLED, duration=self.duration())
        return self._set(Outcome.CANCELLED)

    def _finish_error(self, exc: BaseException, *, abandoned: bool = False) -> Outcome:
        self.exception = exc
        if self.signal.lost and not abandoned:
            return self._lost()
        cls = self.job_class
        claimed = self.claimed
        checkpoint = self.final_checkpoint()
        decision = lifecycle.after_error(
            fatal=cls is None or isinstance(exc, FATAL_ERRORS),
            discard=cls is not None and isinstance(exc, cls.discard_on),
            retryable=(cls is not None and not self.caller and isinstance(exc, Exception) and cls.retry.retries(exc)),
            progressed=checkpoint.progressed,
            resume_after_progress=cls is not None and cls.resume_errors_after_advancing,
            attempts=claimed.attempts,
            max_attempts=cls.retry.attempts if cls is not None else 1,
            resumptions=claimed.resumptions,
            max_resumptions=cls.max_resumptions if cls is not None else None,
        )
        error = format_error(exc)
        if decision.resume_limit:
            assert cls is not None
            try:
                raise ResumeLimitExceeded(
                    f"{self.name}: failed after progress more than max_resumptions={cls.max_resumptions} times"
                ) from exc
            except ResumeLimitExceeded as limited:
                self.exception = limited
                error = format_error(limited)
        if decision.verdict in (Verdict.RESUME, Verdict.RETRY):
            assert cls is not None
            delay = cls.retry.delay(claimed.attempts)
            return self._write_retry(checkpoint, error, delay, resumption=decision.verdict == Verdict.RESUME)
        return self._write_failure(checkpoint, error, discard=decision.verdict == Verdict.DISCARD)

    def _write_failure(self, checkpoint: Checkpoint, error: str, discard: bool) -> Outcome:
        try:
            claimed = self.claimed
            member = claimed.batch_id is not None
            self.store.fail(claimed.id, claimed.lease_token, checkpoint, error, discard=discard, member=member)
        except LeaseLost:
            return self._lost()
        outcome = Outcome.DISCARDED if discard else Outcome.FAILED
        self.emit(outcome.value, error=error, duration=self.duration(), exception=self.exception)
        return self._set(outcome)

    def _write_retry(self, checkpoint: Checkpoint, error: str, delay: float, resumption: bool) -> Outcome:
        try:
            self.store.retry(self.claimed.id, self.claimed.lease_token, checkpoint, error, delay, resumption)
        except LeaseLost:
            return self._lost()
        self.emit(
            events.RETRIED,
            error=error,
            delay=delay,
            resumption=resumption,
            duration=self.duration(),
            exception=self.exception,
        )
        return self._set(Outcome.RESUMING if resumption else Outcome.RETRYING)

    def _lost(self) -> Outcome:
        self.lost()
        return self._set(Outcome.LOST)

    def _set(self, outcome: Outcome) -> Outcome:
        self.outcome = outcome
        return outcome
