"""Steps: named, checkpointed parts of a job, replayed and validated on resume.

This module knows nothing of storage: the execution gives the :class:`StepRunner` a
``save`` callback and reads :meth:`StepRunner.snapshot` when the execution ends.

The order of work at every ``advance``/``set``/``checkpoint`` is fixed: update the cursor,
then check whether to stop (raising :class:`~onward.errors.Interrupt`, after which the
execution saves the updated cursor), then save if ``checkpoint_interval`` has passed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from onward import events, serialization, step_hooks, trailing_saves
from onward.errors import Interrupt, InvalidStep, OnwardError, SerializationError, UnadvanceableCursor
from onward.step_json import StepsEncoder

if TYPE_CHECKING:
    from onward.iterate.core import Each, Source
    from onward.job import Job

log = logging.getLogger("onward.steps")

_MISSING: Any = object()
_T = TypeVar("_T")


def _ignore(kind: str, **data: Any) -> None:
    """The default ``notify``: nobody listens."""


class StopSignal:
    """Tells a running execution to end at its next interruption point.

    The worker sets ``stopping`` when it shuts down; the lease keeper sets it with
    ``lost=True`` when the lease was taken back (the execution must then write nothing), and
    with ``cancelled=True`` when the job was cancelled (it then ends as cancelled; an async
    execution also cancels its task through ``on_cancel``). A plain attribute, read on every
    ``advance``, so that the check costs next to nothing.
    """

    __slots__ = ("cancelled", "lost", "on_cancel", "reason", "stopping")

    def __init__(self) -> None:
        self.stopping = False
        self.lost = False
        self.cancelled = False
        self.reason = ""
        self.on_cancel: Callable[[], None] | None = None

    def stop(self, reason: str, lost: bool = False) -> None:
        self.reason = reason
        self.lost = self.lost or lost
        self.stopping = True

    def cancel(self) -> None:
        """The job was cancelled: stop at the next interruption point and end as cancelled."""
        if self.cancelled:
            return
        self.cancelled = True
        self.stop("cancelled")
        hook = self.on_cancel
        if hook is not None:
            hook()


class Step:
    """The handle a step function receives: its cursor, progress counters and controls."""

    __slots__ = ("_record", "_runner", "advanced", "cursor", "name", "resumed", "total")

    def __init__(self, runner: StepRunner, record: dict[str, Any], resumed: bool) -> None:
        self.name: str = record["name"]
        self.cursor: Any = record["cursor"]
        self.total: int | None = record["total"]
        self.advanced: int = record["advanced"]
        self.resumed = resumed
        self._runner = runner
        self._record = record

    def __repr__(self) -> str:
        return f"<Step {self.name!r} cursor={self.cursor!r} advanced={self.advanced} total={self.total}>"

    def advance(self, from_: Any = _MISSING) -> None:
        """Set the cursor to the successor of ``from_`` (default: of the cursor; None counts as 0)."""
        base = self.cursor if from_ is _MISSING else from_
        if base is None:
            base = 0
        if type(base) is not int:
            raise UnadvanceableCursor(
                f"{self._runner.job_name}: step {self.name!r}: cannot advance cursor {base!r} "
                f"({type(base).__name__}); only int cursors have a successor, use step.set(value)"
            )
        self.cursor = base + 1
        self.advanced += 1
        self._runner.tick(self, False)

    def set(self, value: Any) -> None:
        """Set the cursor to any serializable value (e.g. ``[page, row]``)."""
        serialization.check(value, f"{self._runner.job_name}: step {self.name!r}: cursor")
        self.cursor = value
        self.advanced += 1
        self._runner.tick(self, False)

    def checkpoint(self) -> None:
        """Save the cursor durably now; also a point where a stopping worker interrupts."""
        self._runner.tick(self, True)

    def each(self, source: Iterable[_T] | AsyncIterable[_T] | Source[_T]) -> Each[_T]:
        """Iterate ``source`` (a sequence or an :mod:`onward.iterate` source), advancing the
        cursor after the loop body finishes with each item; ``async for`` in async steps."""
        from onward.iterate.core import Each

        return Each(self, source)


#: Arity by ``(code object, bound)``: lambdas made afresh in every execution share their
#: code object, so the cache stays as small as the program (it never holds the functions).
_ARITY: dict[tuple[Any, bool], int] = {}


def _arity(fn: Callable[..., Any], job_name: str, name: str) -> int:
    """0 or 1: how many positional arguments ``fn`` takes; anything else is an InvalidStep."""
    bound = hasattr(fn, "__func__")
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    key = (code, bound)
    if code is not None and key in _ARITY:
        return _ARITY[key]
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise InvalidStep(f"{job_name}: step {name!r}: cannot inspect {fn!r}: {exc}") from exc
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    kw_required = [p for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if kw_required or len(required) > 1:
        raise InvalidStep(
            f"{job_name}: step {name!r}: the step function must take 0 or 1 positional parameter "
            f"(the Step), got {getattr(fn, '__qualname__', fn)}{inspect.signature(fn)}"
        )
    arity = 1 if (positional or variadic) else 0
    if code is not None:
        _ARITY[key] = arity
    return arity


class StepRunner:
    """Runs the steps of one execution and keeps their records."""

    def __init__(
        self,
        job: Job,
        records: list[dict[str, Any]],
        signal: StopSignal,
        save: Callable[[bool], None],
        *,
        interval: float,
        max_run_time: float | None,
        flush: Callable[[], Awaitable[None]] | None = None,
        notify: Callable[..., None] = _ignore,
        started: float | None = None,
    ) -> None:
        self.job = job
        self.notify = notify  # announces step events: notify(kind, **data)
        self.job_name = type(job).__qualname__
        self.records = records
        self.signal = signal
        self._save_now = save
        self._lock = threading.Lock()  # one save at a time: the job's own or a trailing one
        self._saved: tuple[Step | None, int] = (None, -1)  # (step, step.advanced) last saved
        self._trailing = False  # a trailing save is scheduled
        self.interval = interval
        if started is None:  # (monotonic) when the execution began: max_run_time counts from there
            started = time.monotonic()
        self.deadline = None if max_run_time is None else started + max_run_time
        self._next_save = started + interval
        self.current: Step | None = None
        self.seen: set[str] = set()
        self.position = 0  # how many stored records this execution has reached
        self.completed_here = 0
        self.touched: list[tuple[Step, Any]] = []  # steps entered here, with their starting cursor
        self.isolate_next = False
        self.after_hook: step_hooks.Hook | None = None
        self._encoder = StepsEncoder(self.job_name)
        self.async_mode = flush is not None
        self._flush = flush

    # -- progress -----------------------------------------------------------------------
    def progressed(self) -> bool:
        """A step completed here, or a cursor differs from its value when this execution began."""
        if self.completed_here:
            return True
        return any(step.cursor != initial for step, initial in self.touched)

    def snapshot_steps(self) -> list[dict[str, Any]]:
        step = self.current
        if step is not None:
            rec = step._record
            rec["cursor"], rec["advanced"], rec["total"] = step.cursor, step.advanced, step.total
        return self.records

    def steps_json(self) -> str:
        """The step records as JSON text, for a checkpoint (see :class:`StepsEncoder`)."""
        return self._encoder.encode(self.records, self.current)

    # -- saving ---------------------------------------------------------------------------
    def _save(self, force: bool) -> None:
        with self._lock:
            step = self.current
            self._saved = (step, step.advanced if step is not None else -1)
            self._save_now(force)

    def _schedule_trailing(self) -> None:
        self._trailing = True
        if not self.async_mode:
            trailing_saves.schedule(self, self._next_save)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # advanced from another thread: the next advance saves
            self._trailing = False
            return
        loop.call_later(max(0.0, self._next_save - time.monotonic()), self.trailing_save)

    def trailing_save(self) -> None:
        """Save a cursor left unsaved when ``checkpoint_interval`` ended (see
        :mod:`onward.trailing_saves`). Between two advances ``self.state`` may hold part of
        the next item's changes; a crash repeats that item anyway."""
        with self._lock:
            self._trailing = False
            step = self.current
            if step is None or self.signal.lost or self._saved == (step, step.advanced):
                return
            now = time.monotonic()
            if now < self._next_save:  # the job saved meanwhile: look again when this interval ends
                self._schedule_trailing()
                return
            self._next_save = now + self.interval
            self._saved = (step, step.advanced)
            try:
                self._save_now(False)
            except (Interrupt, OnwardError, RuntimeError) as exc:  # lease lost, or state changing
                log.debug("trailing save of job %s skipped: %r", self.job.id, exc)

    # -- the interruption point -----------------------------------------------------------
    def tick(self, step: Step, force: bool) -> None:
        if self.signal.stopping:
            self._interrupt(self.signal.reason or "worker stopping", step)
        if step_hooks.active and step_hooks.fire_during(self.job, step.name, step.cursor):
            self._interrupt("interrupt_during_step", step)
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline and self.progressed():
            self._interrupt("max_run_time reached", step)
        if force or now >= self._next_save:
            self._next_save = now + self.interval
            self._save(force)
        elif not self._trailing:
            self._schedule_trailing()

    def _interrupt(self, reason: str, step: Step | None, before: str | None = None) -> None:
        where = f"step {step.name!r} at cursor {step.cursor!r}" if step is not None else f"before step {before!r}"
        raise Interrupt(reason, where)

    # -- entering and leaving steps ---------------------------------------------------------
    def enter(
        self, name: Any, fn: Callable[..., Any] | None, start: Any, isolated: bool
    ) -> tuple[Step, Callable[..., Any], int] | None:
        """Validate and open a step; ``None`` when it completed in an earlier execution."""
        job_name = self.job_name
        if not isinstance(name, str) or not name:
            raise InvalidStep(f"{job_name}: a step name must be a non-empty str, got {name!r}")
        if self.current is not None:
            raise InvalidStep(f"{job_name}: step {name!r} started inside step {self.current.name!r}; steps cannot nest")
        if name in self.seen:
            raise InvalidStep(f"{job_name}: step {name!r} was already run in this execution; step names must be unique")
        if fn is None:
            fn = getattr(self.job, name, None)
            if fn is None or not callable(fn):
                raise InvalidStep(f"{job_name}: step {name!r} has no function and {job_name} has no method {name!r}")
        elif not callable(fn):
            raise InvalidStep(f"{job_name}: step {name!r}: {fn!r} is not callable")
        arity = _arity(fn, job_name, name)
        if start is not None:
            serialization.check(start, f"{job_name}: step {name!r}: start")
        record = self._match(name)
        self.seen.add(name)
        if record is not None and record["status"] == "completed":
            self.notify(events.STEP_SKIPPED, step=name)
            return None
        if self.signal.cancelled:
            self._interrupt("cancelled", None, name)
        if self.progressed():
            if self.signal.stopping:
                self._interrupt(self.signal.reason or "worker stopping", None, name)
            hook, self.after_hook = self.after_hook, None
            if hook is not None and step_hooks.claim(hook):
                self._interrupt("interrupt_after_step", None, name)
            if isolated or self.isolate_next:
                self._interrupt("isolated step", None, name)
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self._interrupt("max_run_time reached", None, name)
        self.isolate_next = False
        resumed = record is not None
        if record is None:
            record = {
                "name": name,
                "status": "running",
                "cursor": start,
                "advanced": 0,
                "total": None,
                "started_at": time.time(),
                "completed_at": None,
            }
            self.records.append(record)
            self.position += 1
        record["status"] = "running"
        step = Step(self, record, resumed)
        self.touched.append((step, step.cursor))
        with self._lock:
            self.current = step
            self._encoder.reset()
        self.notify(events.STEP_STARTED, step=name, cursor=step.cursor, resumed=resumed)
        return step, fn, arity

    def _match(self, name: str) -> dict[str, Any] | None:
        """The stored record for ``name``, checking that steps are reached in their order."""
        job_name = self.job_name
        if self.position < len(self.records):
            expected = self.records[self.position]
            if expected["name"] == name:
                self.position += 1
                return expected
            hint = " (if the job's steps changed, enqueue it with set(fresh=True) to start over)"
            later = next((r for r in self.records[self.position :] if r["name"] == name), None)
            if later is not None and later["status"] == "completed":
                raise InvalidStep(
                    f"{job_name}: completed step {name!r} reached out of order, before {expected['name']!r}{hint}"
                )
            if expected["status"] == "completed":
                raise InvalidStep(
                    f"{job_name}: new step {name!r} reached before completed step {expected['name']!r}{hint}"
                )
            raise InvalidStep(
                f"{job_name}: step {name!r} reached before step {expected['name']!r}, which is in progress{hint}"
            )
        return None

    def leave(self, step: Step, completed: bool, isolated: bool) -> None:
        with self._lock:  # a trailing save in progress finishes first; none starts after
            self.current = None
            self._encoder.reset()
        rec = step._record
        rec["cursor"], rec["advanced"], rec["total"] = step.cursor, step.advanced, step.total
        if not completed:
            return
        rec["status"] = "completed"
        rec["completed_at"] = time.time()
        self.completed_here += 1
        self.isolate_next = isolated
        if step_hooks.active:
            self.after_hook = step_hooks.after_step(self.job, step.name)
        self.notify(events.STEP_COMPLETED, step=step.name)

    def finish(self) -> None:
        """``perform`` returned: an ``interrupt_after_step`` pending on the last step never fires."""
        self.after_hook = None

    # -- running a step -------------------------------------------------------------------
    def run(self, name: Any, fn: Callable[..., Any] | None, start: Any, isolated: bool) -> Any:
        opened = self.enter(name, fn, start, isolated)
        if opened is None:
            return None
        step, func, arity = opened
        self._save(True)
        completed = False
        try:
            result = func(step) if arity else func()
            if inspect.isawaitable(result):
                _close(result)
                raise InvalidStep(
                    f"{self.job_name}: step {step.name!r} is async but perform is not async def; "
                    "use async def perform and await self.step(...)"
                )
            completed = True
        finally:
            self.leave(step, completed, isolated)
        self._save(True)
        return result

    async def run_async(self, name: Any, fn: Callable[..., Any] | None, start: Any, isolated: bool) -> Any:
        opened = self.enter(name, fn, start, isolated)
        if opened is None:
            return None
        step, func, arity = opened
        await self.flush()
        completed = False
        try:
            result = func(step) if arity else func()
            if inspect.isawaitable(result):
                result = await result
            completed = True
        finally:
            self.leave(step, completed, isolated)
        await self.flush()
        return result

    async def flush(self) -> None:
        """A durable save that does not block the event loop."""
        if self._flush is None:
            self._save(True)
        else:
            step = self.current
            self._saved = (step, step.advanced if step is not None else -1)
            await self._flush()


def _close(result: Awaitable[Any]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def encode_state(job: Job, fallback: str | None) -> str:
    """``self.state`` as JSON; a state that cannot be stored raises naming the path."""
    state = job.state
    if type(state) is dict and not state:
        return "{}"
    try:
        return serialization.to_json(job.state, "self.state")
    except SerializationError as exc:
        raise SerializationError(f"{type(job).__qualname__}: {exc}") from None
