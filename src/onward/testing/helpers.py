"""``drain`` and the interrupt helpers of ``onward.testing``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from onward import connecting, step_hooks
from onward.job import Job
from onward.options import seconds
from onward.step_hooks import ANY, Hook
from onward.stores.base import Store
from onward.worker import Worker

__all__ = ["ANY", "drain", "interrupt_after_step", "interrupt_during_step"]


def drain(
    queues: Sequence[str] | None = None,
    *,
    store: Store | None = None,
    until: timedelta | float | None = None,
) -> int:
    """Run every ready job in this process, including the jobs they enqueue, until none is
    ready; returns the number of executions.

    Jobs scheduled for later (``wait=``, a retry's backoff) are not waited for, unless
    ``until`` (a ``timedelta`` or seconds) lets time pass for them: then they run too, in the
    order they come due, as if that much time went by, without sleeping. Each time nothing
    is ready, the jobs waiting are made due as soon as the next of them would be; jobs due
    later than ``until`` from the start stay ``enqueued``.
    """
    target = store or connecting.default()
    horizon = seconds(until, "until")
    passed = 0.0
    executions = 0
    while True:
        worker = Worker(queues=queues, store=target, lease_timeout=60.0, schedules=False)
        worker.run(burst=True)
        executions += worker.executions
        if until is None:
            return executions
        due_in = target.next_ready_in(queues)
        if due_in is None or passed + max(0.0, due_in) > horizon:
            return executions
        if due_in <= 0 and not worker.executions:
            return executions  # due, yet nothing ran: held back (a paused queue, a limit)
        if due_in > 0:
            target.advance_waiting(due_in, queues)
            passed += due_in


@contextmanager
def _hook(job_class: type[Job], step_name: str, after: bool, cursor: Any) -> Iterator[Hook]:
    if not (isinstance(job_class, type) and issubclass(job_class, Job)):
        raise TypeError(f"expected a Job subclass, got {job_class!r}")
    hook = Hook(job_class, step_name, after, cursor)
    step_hooks.add(hook)
    try:
        yield hook
    finally:
        step_hooks.remove(hook)
    if not hook.fired:
        where = f"after step {step_name!r}" if after else f"during step {step_name!r}"
        if not after and cursor is not ANY:
            where += f" at cursor {cursor!r}"
        raise AssertionError(f"{job_class.__qualname__} was never interrupted {where}")


def interrupt_during_step(job_class: type[Job], step_name: str, cursor: Any = ANY) -> Any:
    """Interrupt the first matching execution of ``job_class`` inside ``step_name``, at the
    first checkpoint whose updated cursor equals ``cursor`` (any by default), once."""
    return _hook(job_class, step_name, False, cursor)


def interrupt_after_step(job_class: type[Job], step_name: str) -> Any:
    """Interrupt the first matching execution of ``job_class`` at the boundary after
    ``step_name`` completes, once. Raises ``AssertionError`` on exit if it never fired."""
    return _hook(job_class, step_name, True, ANY)
