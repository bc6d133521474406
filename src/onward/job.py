"""The ``Job`` base class: defining, enqueuing and running jobs in the caller.

A job class is stored by import path (``package.module:ClassName``); arguments are encoded
by :mod:`onward.serialization` when the job is enqueued, so a bad argument is refused there
and then. Inside ``continuations``, ``perform_later`` calls are collected and committed with
the parent's success (see :mod:`onward.execution`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from onward import collecting, connecting, events, perform_now, serialization, tracing
from onward.errors import SerializationError
from onward.handles import JobHandle
from onward.ids import new_id, new_ids
from onward.limits import Throttle, check_class_limits, check_limit_key
from onward.options import NO_OPTIONS, Options, check_priority, check_queue, time_limit
from onward.registry import job_path, load_job_class
from onward.retry import Retry
from onward.stores.base import NewJob, Store

if TYPE_CHECKING:
    from onward.steps import StepRunner, StopSignal

__all__ = ["Args", "Configured", "Job", "JobHandle", "job_path", "load_job_class", "new_id", "new_ids"]


class Args:
    """Positional and keyword arguments of one job, for ``perform_all_later``."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class Configured:
    """A job class with options from ``Job.set(...)``; same ``perform_*`` methods."""

    __slots__ = ("job_class", "options")

    def __init__(self, job_class: type[Job], options: Options) -> None:
        self.job_class = job_class
        self.options = options

    def __repr__(self) -> str:
        return f"<{self.job_class.__qualname__} with {self.options}>"

    def new_job(self, args: Sequence[Any], kwargs: dict[str, Any], job_id: str | None = None) -> NewJob:
        return _new_job(self.job_class, self.options, args, kwargs, job_id)

    def perform_later(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Store the job and return at once (inside ``continuations``: on the parent's success)."""
        return _perform_later(self.job_class, self.options, args, kwargs)

    def perform_all_later(self, calls: Iterable[Sequence[Any] | Args]) -> list[JobHandle]:
        """Enqueue many jobs in one transaction. Each call is a tuple of positional arguments
        or an :class:`Args`; a bad argument anywhere refuses the whole batch."""
        calls = calls if isinstance(calls, (list, tuple)) else list(calls)
        ids = new_ids(len(calls))
        jobs = []
        for i, call in enumerate(calls):
            if isinstance(call, Args):
                args, kwargs = call.args, call.kwargs
            elif isinstance(call, (tuple, list)):
                args, kwargs = tuple(call), {}
            else:
                raise TypeError(f"calls[{i}]: expected a tuple of arguments or onward.Args, got {call!r}")
            try:
                jobs.append(self.new_job(args, kwargs, ids[i]))
            except SerializationError as exc:
                raise SerializationError(f"calls[{i}]: {exc}") from None
        collected = collecting.gather(jobs)
        if collected is not None:
            return collected
        store = connecting.default()
        return [JobHandle(i, store) for i in (_store_jobs(store, jobs) if jobs else [])]

    def perform_now(self, *args: Any, **kwargs: Any) -> Any:
        """Run the job here, recorded in the store; returns ``perform``'s result."""
        return perform_now.perform_now(self.new_job(args, kwargs))


def _new_job(
    cls: type[Job], opts: Options, args: Sequence[Any], kwargs: dict[str, Any], job_id: str | None = None
) -> NewJob:
    """The row to insert for ``cls(*args, **kwargs)`` enqueued with ``opts``; a bad argument,
    unique key or limit key is refused here. Only what the class uses is looked at: its
    ``unique_key`` when it defines one, its ``limit_key`` when it has limits, the tracing
    hook when one is installed."""
    path = job_path(cls)
    try:
        encoded_args, encoded_kwargs = serialization.encode_args(args, kwargs)
    except SerializationError as exc:
        raise SerializationError(f"{cls.__qualname__}: {exc}") from None
    key = None if cls.unique_key is Job.unique_key else _unique_key(cls, cls().unique_key(*args, **kwargs))
    job_id = job_id or new_id()
    queue = opts.queue or cls.queue
    limit_key = concurrency = throttle_limit = throttle_per = None
    if cls.concurrency is not None or cls.throttle is not None:
        limit_key = check_limit_key(cls, cls().limit_key(*args, **kwargs))
        concurrency = cls.concurrency
        throttle = cls.throttle
        if throttle is not None:
            throttle_limit, throttle_per = throttle.limit, throttle.per
    inject = tracing.inject
    return NewJob(
        id=job_id,
        job_class=path,
        queue=queue,
        priority=cls.priority if opts.priority is None else opts.priority,
        args=encoded_args,
        kwargs=encoded_kwargs,
        max_attempts=cls.retry.attempts,
        max_resumptions=cls.max_resumptions,
        delay=opts.delay,
        run_at=opts.run_at,
        unique_key=key,
        fresh=opts.fresh,
        trace_context=None if inject is None else inject(queue, path, job_id),
        timeout=opts.timeout,
        limit_key=limit_key,
        concurrency=concurrency,
        throttle_limit=throttle_limit,
        throttle_per=throttle_per,
    )


def _unique_key(cls: type[Job], key: object) -> str | None:
    """``key`` as ``cls.unique_key`` returned it, if it is one a store can keep."""
    if key is not None and not isinstance(key, str):
        raise TypeError(f"{cls.__qualname__}.unique_key must return a str or None, got {key!r}")
    if key is not None and ("\x00" in key or not key.isascii()):
        serialization.check(key, f"{cls.__qualname__}.unique_key")  # a lone surrogate
        if "\x00" in key:
            raise ValueError(f"{cls.__qualname__}.unique_key must not hold a NUL character, got {key!r}")
    return key


def _perform_later(cls: type[Job], opts: Options, args: Sequence[Any], kwargs: dict[str, Any]) -> JobHandle:
    """``perform_later``: one job, stored now in a transaction of its own (or in the
    framework transaction it joins), or collected by the enclosing block."""
    job = _new_job(cls, opts, args, kwargs)
    collected = collecting.gather((job,))
    if collected is not None:
        return collected[0]
    store = connecting.default()
    [job_id] = _store_jobs(store, (job,))
    return JobHandle(job_id, store)


def _store_jobs(store: Store, jobs: Sequence[NewJob]) -> list[str]:
    """Insert ``jobs`` now: inside a framework transaction when one is open for ``store``
    (see :func:`onward.collecting.joined`), else in a transaction of their own."""
    insert = collecting.joined(store) if collecting.joiners else None
    ids = insert(jobs) if insert is not None else store.enqueue(jobs)
    events.enqueued(jobs, ids)
    return ids


# -- the base class ----------------------------------------------------------------------


class Job:
    """Base class of background jobs. Subclass it and define ``perform``."""

    __onward_job__: ClassVar[bool] = True  # what the registry checks before running a class

    queue: ClassVar[str] = "default"
    priority: ClassVar[int] = 0
    retry: ClassVar[Retry] = Retry()
    discard_on: ClassVar[tuple[type[BaseException], ...]] = ()
    checkpoint_interval: ClassVar[float] = 1.0
    max_run_time: ClassVar[float | None] = None
    max_resumptions: ClassVar[int | None] = None
    timeout: ClassVar[float | None] = None  # seconds an execution may run before it is abandoned
    resume_errors_after_advancing: ClassVar[bool] = True
    concurrency: ClassVar[int | None] = None  # running at once, per limit key
    throttle: ClassVar[Throttle | None] = None  # started per sliding window, per limit key

    # set on the instance that runs
    id: str
    attempt: int
    resumptions: int
    state: dict[str, Any]
    result: Any
    scheduled_for: datetime | None = None  # the tick, when a schedule enqueued this job (UTC)
    batch_id: str | None = None  # the batch this job is a member of (onward.batch)
    parent_batch_id: str | None = None  # the batch whose callback this job is
    _runner: StepRunner | None = None
    # Makes ``_runner`` on first use (set by the execution): most jobs never call ``step``.
    _open_runner: Callable[[], StepRunner] | None = None
    _stop: StopSignal | None = None  # what stops this execution (set by the execution)
    _store: Store | None = None  # the store this execution runs in (set by the execution)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__qualname__
        if not isinstance(cls.queue, str) or not cls.queue:
            raise TypeError(f"{name}.queue must be a non-empty str, got {cls.queue!r}")
        if isinstance(cls.priority, bool) or not isinstance(cls.priority, int):
            raise TypeError(f"{name}.priority must be an int, got {cls.priority!r}")
        check_queue(cls.queue, f"{name}.queue")
        check_priority(cls.priority, f"{name}.priority")
        if not isinstance(cls.retry, Retry):
            raise TypeError(f"{name}.retry must be an onward.Retry, got {cls.retry!r}")
        if isinstance(cls.discard_on, type):
            cls.discard_on = (cls.discard_on,)
        if not isinstance(cls.discard_on, tuple):
            raise TypeError(f"{name}.discard_on must be a tuple of exception classes, got {cls.discard_on!r}")
        if not isinstance(cls.checkpoint_interval, (int, float)) or cls.checkpoint_interval < 0:
            raise TypeError(f"{name}.checkpoint_interval must be seconds >= 0, got {cls.checkpoint_interval!r}")
        try:
            cls.timeout = time_limit(cls.timeout, f"{name}.timeout")
        except ValueError as exc:
            raise TypeError(str(exc)) from None
        check_class_limits(cls, cls.concurrency, cls.throttle)

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must define perform()")

    def continuations(self, *args: Any, **kwargs: Any) -> Any:
        """Enqueue follow-up jobs; runs only after ``perform`` succeeded (see docs)."""
        return None

    def unique_key(self, *args: Any, **kwargs: Any) -> str | None:
        """A key making this job unique while enqueued or running; ``None``: not unique."""
        return None

    @property
    def cancelled(self) -> bool:
        """True once this job was cancelled while it runs: a loop without steps can look at it
        and return (the job then ends as cancelled). Steps stop by themselves at their next
        ``advance``/``set``/``checkpoint`` or step boundary."""
        stop = self._stop
        return stop is not None and stop.cancelled

    def limit_key(self, *args: Any, **kwargs: Any) -> str:
        """The key ``concurrency`` and ``throttle`` count per (default: the class's path);
        jobs of different classes with the same key share the count."""
        return job_path(type(self))

    def _step_runner(self) -> StepRunner | None:
        runner = self._runner
        if runner is None and self._open_runner is not None:
            runner = self._open_runner()
        return runner

    def step(
        self, name: str, fn: Callable[..., Any] | None = None, *, start: Any = None, isolated: bool = False
    ) -> Any:
        """Run a named, checkpointed step (``await`` it in ``async def perform``)."""
        runner = self._step_runner()
        if runner is None:
            raise RuntimeError(f"{type(self).__qualname__}.step() can only be called while the job runs")
        if runner.async_mode:
            return runner.run_async(name, fn, start, isolated)
        return runner.run(name, fn, start, isolated)

    # -- class-level API ---------------------------------------------------------------
    @classmethod
    def set(
        cls,
        wait: timedelta | float | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        fresh: bool = False,
        timeout: timedelta | float | None = None,
    ) -> Configured:
        """Options for the next ``perform_later``/``perform_now``."""
        try:
            return Configured(cls, Options.build(wait, wait_until, queue, priority, fresh, timeout))
        except ValueError as exc:
            raise ValueError(f"{cls.__qualname__}.set: {exc}") from None

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> JobHandle:
        """Store the job and return at once."""
        return _perform_later(cls, NO_OPTIONS, args, kwargs)

    @classmethod
    def perform_all_later(cls, calls: Iterable[Sequence[Any] | Args]) -> list[JobHandle]:
        """Enqueue many jobs in one transaction (tuples of arguments or ``onward.Args``)."""
        return Configured(cls, NO_OPTIONS).perform_all_later(calls)

    @classmethod
    def perform_now(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the job in this process, recorded in the store; returns ``perform``'s result."""
        return Configured(cls, NO_OPTIONS).perform_now(*args, **kwargs)

    @classmethod
    def has_continuations(cls) -> bool:
        return cls.continuations is not Job.continuations
