"""The ``Job`` base class: defining, enqueuing and running jobs in the caller.

A job class is stored by import path (``package.module:ClassName``); arguments are encoded
by :mod:`onward.serialization` when the job is enqueued, so a bad argument is refused there
and then. Inside ``continuations``, ``perform_later`` calls are collected and committed with
the parent's success (see :mod:`onward.execution`).
"""

from __future__ import annotations

import contextvars
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from onward import serialization, stores
from onward.errors import JobClassNotFound, SerializationError
from onward.retry import Retry
from onward.stores.base import NewJob, Store

if TYPE_CHECKING:
    from onward.records import JobRecord
    from onward.steps import StepRunner


def new_id() -> str:
    """A time-ordered UUID (version 7 layout), so ids sort roughly by creation."""
    return new_ids(1)[0]


def new_ids(n: int) -> list[str]:
    """``n`` ids as :func:`new_id` makes them, with one call for the random bytes (bulk enqueue)."""
    stamp = (time.time_ns() // 1_000_000 & (2**48 - 1)).to_bytes(6, "big")
    pool = os.urandom(10 * n)
    ids = []
    for i in range(0, 10 * n, 10):
        rand = pool[i : i + 10]
        h = (stamp + bytes((0x70 | rand[0] & 0x0F, rand[1], 0x80 | rand[2] & 0x3F)) + rand[3:]).hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


# -- handles -----------------------------------------------------------------------------


class JobHandle:
    """A reference to a stored job: its ``id`` and the store it lives in."""

    __slots__ = ("_id", "store")

    def __init__(self, job_id: str, store: Store) -> None:
        self._id = job_id
        self.store = store

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<JobHandle {self._id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other._id == self._id and other.store is self.store

    def __hash__(self) -> int:
        return hash(self._id)

    def refresh(self) -> JobRecord:
        """The job's current record."""
        return self.store.get(self._id)

    def wait(self, timeout: float | None = None) -> JobRecord:
        """Block until the job is succeeded, failed or discarded; ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while True:
            record = self.store.get(self._id)
            if record.finished:
                return record
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {self._id} is still {record.state} after {timeout} s")
                pause = min(pause, remaining)
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)


# -- continuation collection -------------------------------------------------------------


@dataclass
class Collector:
    """``perform_later`` calls made inside ``continuations``, committed with the parent."""

    store: Store
    jobs: list[NewJob] = field(default_factory=list)
    handles: list[JobHandle] = field(default_factory=list)


collector: contextvars.ContextVar[Collector | None] = contextvars.ContextVar("onward_collector", default=None)


# -- class identity ----------------------------------------------------------------------

_paths: dict[type, str] = {}
_classes: dict[str, type[Job]] = {}
_classes_lock = threading.Lock()


def job_path(cls: type[Job]) -> str:
    """``module:QualName`` for ``cls``, or ``SerializationError`` if a worker could not import it."""
    try:
        return _paths[cls]
    except KeyError:
        pass
    module = cls.__module__
    if module == "__main__":
        main = sys.modules["__main__"]
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name.removesuffix(".__main__")
        elif getattr(main, "__file__", None):
            module = os.path.splitext(os.path.basename(main.__file__ or ""))[0]
    if "<locals>" in cls.__qualname__:
        raise SerializationError(
            f"{cls.__qualname__}: a job class defined inside a function cannot be imported by a worker; "
            "define it at module level"
        )
    path = f"{module}:{cls.__qualname__}"
    _paths[cls] = path
    return path


def load_job_class(path: str) -> type[Job]:
    """Import the job class stored as ``module:QualName``; ``JobClassNotFound`` if impossible."""
    try:
        return _classes[path]
    except KeyError:
        pass
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise JobClassNotFound(f"cannot import job class {path}: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Job)):
        raise JobClassNotFound(f"{path} is not an onward.Job subclass")
    with _classes_lock:
        _classes[path] = obj
    return obj


# -- options -----------------------------------------------------------------------------


def _seconds(wait: timedelta | float | int | None) -> float:
    if wait is None:
        return 0.0
    if isinstance(wait, timedelta):
        seconds = wait.total_seconds()
    elif isinstance(wait, (int, float)) and not isinstance(wait, bool):
        seconds = float(wait)
    else:
        raise ValueError(f"wait must be a timedelta or seconds, got {wait!r}")
    if seconds < 0:
        raise ValueError(f"wait must not be negative, got {wait!r}")
    return seconds


@dataclass(frozen=True)
class Options:
    """What ``Job.set(...)`` chose: schedule, queue, priority and ``fresh``."""

    delay: float = 0.0
    run_at: float | None = None
    queue: str | None = None
    priority: int | None = None
    fresh: bool = False

    @classmethod
    def build(
        cls,
        wait: timedelta | float | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        fresh: bool = False,
    ) -> Options:
        if wait is not None and wait_until is not None:
            raise ValueError("give wait or wait_until, not both")
        run_at = None
        if wait_until is not None:
            if not isinstance(wait_until, datetime):
                raise ValueError(f"wait_until must be an aware datetime, got {wait_until!r}")
            if wait_until.tzinfo is None or wait_until.utcoffset() is None:
                raise ValueError(f"wait_until must be an aware datetime (with a timezone), got naive {wait_until!r}")
            run_at = wait_until.timestamp()
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ValueError(f"queue must be a non-empty str, got {queue!r}")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise ValueError(f"priority must be an int, got {priority!r}")
        return cls(_seconds(wait), run_at, queue, priority, bool(fresh))


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
        cls = self.job_class
        path = job_path(cls)
        encoded_args, encoded_kwargs = serialization.encode_args(args, kwargs)
        key = cls().unique_key(*args, **kwargs) if cls.unique_key is not Job.unique_key else None
        if key is not None and not isinstance(key, str):
            raise TypeError(f"{cls.__qualname__}.unique_key must return a str or None, got {key!r}")
        opts = self.options
        return NewJob(
            id=job_id or new_id(),
            job_class=path,
            queue=opts.queue or cls.queue,
            priority=cls.priority if opts.priority is None else opts.priority,
            args=encoded_args,
            kwargs=encoded_kwargs,
            max_attempts=cls.retry.attempts,
            max_resumptions=cls.max_resumptions,
            delay=opts.delay,
            run_at=opts.run_at,
            unique_key=key,
            fresh=opts.fresh,
        )

    def perform_later(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Store the job and return at once (inside ``continuations``: on the parent's success)."""
        job = self.new_job(args, kwargs)
        pending = collector.get()
        if pending is not None:
            handle = JobHandle(job.id, pending.store)
            pending.jobs.append(job)
            pending.handles.append(handle)
            return handle
        store = stores.default()
        [job_id] = store.enqueue([job])
        return JobHandle(job_id, store)

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
        pending = collector.get()
        if pending is not None:
            handles = [JobHandle(j.id, pending.store) for j in jobs]
            pending.jobs.extend(jobs)
            pending.handles.extend(handles)
            return handles
        store = stores.default()
        return [JobHandle(i, store) for i in (store.enqueue(jobs) if jobs else [])]

    def perform_now(self, *args: Any, **kwargs: Any) -> Any:
        """Run the job here, recorded in the store; returns ``perform``'s result."""
        from onward import execution

        return execution.perform_now(self.new_job(args, kwargs))


# -- the base class ----------------------------------------------------------------------


class Job:
    """Base class of background jobs. Subclass it and define ``perform``."""

    queue: ClassVar[str] = "default"
    priority: ClassVar[int] = 0
    retry: ClassVar[Retry] = Retry()
    discard_on: ClassVar[tuple[type[BaseException], ...]] = ()
    checkpoint_interval: ClassVar[float] = 1.0
    max_run_time: ClassVar[float | None] = None
    max_resumptions: ClassVar[int | None] = None
    resume_errors_after_advancing: ClassVar[bool] = True

    # set on the instance that runs
    id: str
    attempt: int
    resumptions: int
    state: dict[str, Any]
    result: Any
    _runner: StepRunner | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__qualname__
        if not isinstance(cls.queue, str) or not cls.queue:
            raise TypeError(f"{name}.queue must be a non-empty str, got {cls.queue!r}")
        if isinstance(cls.priority, bool) or not isinstance(cls.priority, int):
            raise TypeError(f"{name}.priority must be an int, got {cls.priority!r}")
        if not isinstance(cls.retry, Retry):
            raise TypeError(f"{name}.retry must be an onward.Retry, got {cls.retry!r}")
        if isinstance(cls.discard_on, type):
            cls.discard_on = (cls.discard_on,)
        if not isinstance(cls.discard_on, tuple):
            raise TypeError(f"{name}.discard_on must be a tuple of exception classes, got {cls.discard_on!r}")
        if not isinstance(cls.checkpoint_interval, (int, float)) or cls.checkpoint_interval < 0:
            raise TypeError(f"{name}.checkpoint_interval must be seconds >= 0, got {cls.checkpoint_interval!r}")

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must define perform()")

    def continuations(self, *args: Any, **kwargs: Any) -> Any:
        """Enqueue follow-up jobs; runs only after ``perform`` succeeded (see docs)."""
        return None

    def unique_key(self, *args: Any, **kwargs: Any) -> str | None:
        """A key making this job unique while enqueued or running; ``None``: not unique."""
        return None

    def step(
        self, name: str, fn: Callable[..., Any] | None = None, *, start: Any = None, isolated: bool = False
    ) -> Any:
        """Run a named, checkpointed step (``await`` it in ``async def perform``)."""
        runner = self._runner
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
    ) -> Configured:
        """Options for the next ``perform_later``/``perform_now``."""
        return Configured(cls, Options.build(wait, wait_until, queue, priority, fresh))

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> JobHandle:
        """Store the job and return at once."""
        return Configured(cls, _NO_OPTIONS).perform_later(*args, **kwargs)

    @classmethod
    def perform_all_later(cls, calls: Iterable[Sequence[Any] | Args]) -> list[JobHandle]:
        """Enqueue many jobs in one transaction (tuples of arguments or ``onward.Args``)."""
        return Configured(cls, _NO_OPTIONS).perform_all_later(calls)

    @classmethod
    def perform_now(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the job in this process, recorded in the store; returns ``perform``'s result."""
        return Configured(cls, _NO_OPTIONS).perform_now(*args, **kwargs)

    @classmethod
    def has_continuations(cls) -> bool:
        return cls.continuations is not Job.continuations


_NO_OPTIONS = Options()
