"""Running a job's ``continuations()`` after its ``perform`` succeeded: the jobs it enqueues
are collected, not stored, so that the success and its continuations commit together (see
:mod:`onward.collecting`). An exception there stores none of them: the job still succeeds,
and the error is kept on its record for an operator to see and re-run."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from onward import collecting
from onward.stores.base import Store

if TYPE_CHECKING:
    from onward.job import Job

__all__ = ["Continued", "run_continuations", "run_continuations_async"]

#: What ``continuations`` enqueued: its collector (jobs, and batches opened there), or its error.
Continued = tuple[collecting.Collector | None, str | None]

_NONE: Continued = (None, None)


def run_continuations(
    job: Job, store: Store, args: list[Any], kwargs: dict[str, Any], result: Any, failed: Callable[[Exception], str]
) -> Continued:
    """Call ``job.continuations`` (a sync job's); ``failed(exc)`` gives the error text to keep."""
    if not type(job).has_continuations():
        return _NONE
    job.result = result
    with collecting.collecting(store) as pending:
        try:
            outcome = job.continuations(*args, **kwargs)
            if inspect.isawaitable(outcome):
                raise TypeError("continuations returned an awaitable but perform is not async def")
        except Exception as exc:
            return None, failed(exc)
    return pending, None


async def run_continuations_async(
    job: Job, store: Store, args: list[Any], kwargs: dict[str, Any], result: Any, failed: Callable[[Exception], str]
) -> Continued:
    """Call ``job.continuations`` of an async job, awaiting it if it is a coroutine."""
    if not type(job).has_continuations():
        return _NONE
    job.result = result
    with collecting.collecting(store) as pending:
        try:
            outcome = job.continuations(*args, **kwargs)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            return None, failed(exc)
    return pending, None
