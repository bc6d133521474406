"""Cancelling a running async job's task: ``perform`` sees ``asyncio.CancelledError``.

A cancellation request reaches an execution through its :class:`~onward.steps.StopSignal`,
set from the heartbeat thread (or a ``NOTIFY``). Sync jobs stop at their next step boundary
or checkpoint, or when they look at ``self.cancelled``. An async job's ``perform`` is also
interrupted at its current ``await``: the signal's ``on_cancel`` hook asks the event loop to
cancel the task, but only while ``perform`` itself runs, never the execution's own writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from onward.steps import StopSignal

__all__ = ["perform_cancellable"]


async def perform_cancellable(signal: StopSignal, perform: Awaitable[Any]) -> Any:
    """Await ``perform`` in the current task, cancelling the task if ``signal`` is cancelled
    meanwhile. Once ``perform`` ended, the task is as it was (``uncancel``)."""
    task = asyncio.current_task()
    if task is None:
        return await perform
    loop = asyncio.get_running_loop()
    state = {"running": True, "cancelled": False}

    def cancel_task() -> None:  # on the loop's thread, so perform is suspended at an await
        if state["running"] and not state["cancelled"]:
            state["cancelled"] = True
            task.cancel()

    def from_any_thread() -> None:
        loop.call_soon_threadsafe(cancel_task)

    signal.on_cancel = from_any_thread
    if signal.cancelled:
        loop.call_soon(cancel_task)
    try:
        return await perform
    finally:
        state["running"] = False
        signal.on_cancel = None
        if state["cancelled"]:
            task.uncancel()
