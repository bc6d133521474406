"""A job's ``timeout``: the error of an abandoned execution, and an async ``perform`` whose
task is cancelled when the time is up. (Sync jobs are abandoned by the worker's watchdog,
see :meth:`onward.lanes.Lanes._time_out`: a thread cannot be stopped.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from onward.errors import JobTimeout

__all__ = ["perform_within", "timeout_error"]


def timeout_error(name: str, limit: float) -> JobTimeout:
    return JobTimeout(f"{name} ran longer than its timeout of {limit:g} s and was abandoned")


async def perform_within(perform: Awaitable[Any], limit: float | None, name: str) -> Any:
    """Await ``perform``; past ``limit`` seconds its task is cancelled and ``JobTimeout``
    raised (a ``TimeoutError`` of the job's own goes through as it is)."""
    if limit is None:
        return await perform
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await perform
    except TimeoutError:
        if deadline.expired():
            raise timeout_error(name, limit) from None
        raise
