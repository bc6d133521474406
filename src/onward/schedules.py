"""Periodic jobs: ``onward.schedule(...)`` declares a schedule in this process.

A declaration is checked at once (job class, cron expression or interval, time zone,
arguments...) and kept in this process's registry; workers run the schedules declared in
their process (:mod:`onward.duties.scheduler`) and the store records each tick with its job,
so any number of workers may run the same schedules. Nothing here does I/O; when a schedule
ticks is computed by :mod:`onward.ticks`.
"""

from __future__ import annotations

import dataclasses
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from onward import tracing
from onward.errors import SerializationError
from onward.ids import new_id
from onward.job import Configured, Job
from onward.options import Options
from onward.registry import job_path
from onward.stores.base import NewJob
from onward.ticks import TickRule

__all__ = [
    "DECLARE_EVERY",
    "LIVE_WITHIN",
    "MAX_CATCH_UP",
    "MISSED_POLICIES",
    "Schedule",
    "declared",
    "describe",
    "schedule",
]

#: What ``missed=`` may be: enqueue the most recent missed tick, every one, or none.
MISSED_POLICIES = ("latest", "all", "skip")
#: ``missed="all"`` enqueues at most this many ticks (the most recent ones).
MAX_CATCH_UP = 1000
#: Longest schedule key, as for queue names.
MAX_KEY_LENGTH = 200
#: Seconds between a running worker's declarations of its schedules to the store.
DECLARE_EVERY = 10.0
#: A schedule declared within this many seconds is run by a live worker.
LIVE_WITHIN = 3 * DECLARE_EVERY

_registry: dict[str, Schedule] = {}
_registry_lock = threading.Lock()
#: NewJob's fields in order, and where those a tick's job has of its own are among them.
_FIELDS = tuple(f.name for f in dataclasses.fields(NewJob))
_ID, _RUN_AT, _TRACE_CONTEXT, _SCHEDULED_FOR = map(_FIELDS.index, ("id", "run_at", "trace_context", "scheduled_for"))


class Schedule:
    """A declared schedule: which job to enqueue, with which arguments, at which ticks.

    Made by :func:`onward.schedule`; its attributes are the declaration's, read-only.
    """

    __slots__ = (
        "_template",
        "_values",
        "args",
        "cron",
        "every",
        "job_class",
        "job_path",
        "key",
        "kwargs",
        "missed",
        "overlap",
        "priority",
        "queue",
        "rule",
        "settings",
        "timezone",
    )

    key: str
    job_class: type[Job]
    job_path: str
    cron: str | None
    every: timedelta | None
    timezone: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    missed: str
    overlap: bool
    queue: str
    priority: int
    rule: TickRule
    settings: dict[str, Any]  # what is stored and compared: JSON values only
    _template: NewJob
    _values: tuple[Any, ...]  # the template's fields in NewJob's order

    def __repr__(self) -> str:
        return f"<Schedule {self.key!r}: {self.job_path} {describe(self.cron, self.every, self.timezone)}>"

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_template"):
            raise AttributeError(f"schedule {self.key!r} cannot be changed; declare it again with new settings")
        object.__setattr__(self, name, value)

    @property
    def expression(self) -> str:
        """The schedule as people read it: ``0 3 * * * (Europe/Paris)`` or ``every 30s``."""
        return describe(self.cron, self.every, self.timezone)

    def next_tick(self, after: datetime | None = None) -> datetime:
        """The first tick strictly after ``after`` (an aware datetime; default now), in UTC."""
        if after is None:
            after = datetime.now(UTC)
        elif after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"schedule {self.key!r}: after must be an aware datetime, got naive {after!r}")
        return datetime.fromtimestamp(self.rule.next_after(after.timestamp()), UTC)

    def new_job(self, tick: float, job_id: str | None = None) -> NewJob:
        """The job of the tick at ``tick`` (epoch seconds): due at the tick itself."""
        job_id = job_id or new_id()
        values = list(self._values)  # the template's fields, in order (a job per tick: made positionally)
        values[_ID] = job_id
        values[_RUN_AT] = values[_SCHEDULED_FOR] = tick
        if tracing.inject is not None:
            t = self._template
            values[_TRACE_CONTEXT] = tracing.inject(t.queue, t.job_class, job_id)
        return NewJob(*values)


def schedule(
    key: str,
    job_class: type[Job],
    *,
    cron: str | None = None,
    every: timedelta | float | None = None,
    timezone: str = "UTC",
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    missed: str = "latest",
    overlap: bool = False,
    queue: str | None = None,
    priority: int | None = None,
) -> Schedule:
    """Declare the schedule ``key`` in this process: enqueue ``job_class(*args, **kwargs)`` at
    every tick of ``cron`` (in ``timezone``) or ``every`` (a ``timedelta`` or seconds, at whole
    multiples of it since the Unix epoch). Workers run the schedules declared in their process;
    each tick enqueues exactly one job however many run it. Declaring the same key again
    with the same settings returns the existing schedule; with other settings, or with bad
    settings, raises ``ValueError`` naming the schedule."""
    name = _check_key(key)

    def bad(problem: str) -> ValueError:
        return ValueError(f"schedule {name}: {problem}")

    if not (isinstance(job_class, type) and issubclass(job_class, Job)):
        raise bad(f"job_class must be an onward.Job subclass, got {job_class!r}")
    if (cron is None) == (every is None):
        raise bad("give exactly one of cron= and every=" + (", not both" if cron is not None else ""))
    if missed not in MISSED_POLICIES:
        raise bad(f"missed must be one of {', '.join(map(repr, MISSED_POLICIES))}, got {missed!r}")
    if not isinstance(overlap, bool):
        raise bad(f"overlap must be True or False, got {overlap!r}")
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise bad(f"args must be a tuple or list, got {args!r}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise bad(f"kwargs must be a dict, got {kwargs!r}")
    try:
        rule = _rule(cron, every, timezone)
        path = job_path(job_class)
        options = Options.build(queue=queue, priority=priority)
    except (ValueError, SerializationError) as exc:
        raise bad(str(exc)) from None
    arguments = tuple(args)
    keywords = dict(kwargs or {})
    try:
        template = Configured(job_class, options).new_job(arguments, keywords)
    except SerializationError as exc:
        raise SerializationError(f"schedule {name}: {exc}") from None
    template = dataclasses.replace(template, delay=0.0, schedule_key=key, trace_context=None)
    made = _new(
        key=key,
        job_class=job_class,
        job_path=path,
        cron=rule.cron,
        every=None if rule.every_us is None else timedelta(microseconds=rule.every_us),
        timezone=rule.zone.key,
        args=arguments,
        kwargs=keywords,
        missed=missed,
        overlap=overlap,
        queue=template.queue,
        priority=template.priority,
        rule=rule,
        settings={
            "job_class": path,
            "cron": rule.cron,
            "every": None if rule.every_us is None else rule.every_us / 1_000_000,
            "timezone": rule.zone.key,
            "args": template.args,
            "kwargs": template.kwargs,
            "missed": missed,
            "overlap": overlap,
            "queue": template.queue,
            "priority": template.priority,
        },
        _template=template,
    )
    with _registry_lock:
        existing = _registry.get(key)
        if existing is None:
            _registry[key] = made
            return made
    if existing.settings == made.settings:
        return existing
    changed = [f"{k}={made.settings[k]!r} (was {existing.settings[k]!r})" for k in made.settings if
               made.settings[k] != existing.settings[k]]  # fmt: skip
    raise bad(f"already declared in this process with other settings: {', '.join(changed)}; give it another key")


def declared() -> list[Schedule]:
    """The schedules declared in this process, in declaration order."""
    with _registry_lock:
        return list(_registry.values())


def _forget(key: str) -> None:
    """Remove ``key`` from this process's declarations (tests)."""
    with _registry_lock:
        _registry.pop(key, None)


def describe(cron: str | None, every: timedelta | float | None, timezone: str) -> str:
    """A schedule's ticks as people read them: ``0 3 * * * (Europe/Paris)``, ``every 30s``."""
    if cron is not None:
        return cron if timezone == "UTC" else f"{cron} ({timezone})"
    if every is None:
        return "-"
    seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"every {int(seconds // size)}{unit}"
    return f"every {seconds:g}s"


def _new(**values: Any) -> Schedule:
    made = Schedule.__new__(Schedule)
    template = values.pop("_template")
    for name, value in values.items():
        object.__setattr__(made, name, value)
    object.__setattr__(made, "_values", tuple(getattr(template, name) for name in _FIELDS))
    object.__setattr__(made, "_template", template)
    return made


def _check_key(key: object) -> str:
    """``key`` quoted for messages, once it is known to be a usable key."""
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"a schedule key must be a non-empty str, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"schedule key {key[:40]!r}... is longer than {MAX_KEY_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in key):
        raise ValueError(f"schedule key {key!r} holds control characters or lone surrogates")
    return repr(key)


def _rule(cron: str | None, every: timedelta | float | None, timezone: str) -> TickRule:
    if every is None:
        return TickRule(cron=cron, zone=timezone)
    if isinstance(every, timedelta):
        micros = (every.days * 86400 + every.seconds) * 1_000_000 + every.microseconds
    elif isinstance(every, (int, float)) and not isinstance(every, bool):
        if every != every or every in (float("inf"), float("-inf")):
            raise ValueError(f"every must be a finite number of seconds, got {every!r}")
        micros = round(every * 1_000_000)
    else:
        raise ValueError(f"every must be a timedelta or seconds, got {every!r}")
    if micros <= 0:
        raise ValueError(f"every must be positive, got {every!r}")
    if micros < 1000:
        raise ValueError(f"every must be at least a millisecond, got {every!r}")
    return TickRule(every_us=micros, zone=timezone)
