"""Writing an execution's checkpoints to the store.

A sync job saves on its own thread. An async job must not block its event loop, so its saves
go to a thread, at most one in flight and in order (a save asked for while one is in flight is
folded into one more save after it); ``flush`` waits for them without blocking the loop. A
save refused because the lease was taken back stops the execution (``StopSignal`` with
``lost``) and raises :class:`~onward.errors.Interrupt` so that it ends without writing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from onward import serialization
from onward.errors import Interrupt, LeaseLost, SerializationError
from onward.steps import StepRunner, StopSignal
from onward.stores.base import Checkpoint, Claimed, Store

if TYPE_CHECKING:
    from onward.job import Job

__all__ = ["CheckpointWriter"]

log = logging.getLogger("onward.worker")


class CheckpointWriter:
    """Saves the checkpoints ``progress()`` returns for the job ``claimed`` runs under."""

    def __init__(
        self,
        store: Store,
        claimed: Claimed,
        signal: StopSignal,
        progress: Callable[[], Checkpoint],
        saved: Callable[[], None],
    ) -> None:
        self.store = store
        self.claimed = claimed
        self.signal = signal
        self.progress = progress
        self.saved = saved  # told after each durable save (the ``checkpointed`` event)
        self._pending: asyncio.Future[None] | None = None
        self._again = False

    def _write(self, checkpoint: Checkpoint) -> None:
        self.store.save_checkpoint(self.claimed.id, self.claimed.lease_token, checkpoint)

    def save(self, force: bool) -> None:
        """Save now, on this thread."""
        try:
            self._write(self.progress())
        except LeaseLost:
            self.signal.stop("lease lost", lost=True)
            raise Interrupt("lease lost") from None
        self.saved()

    def save_async(self, force: bool) -> None:
        """From the event loop: hand the save to a thread; at most one in flight, in order."""
        if self.signal.lost:
            raise Interrupt("lease lost")
        if self._pending is not None and not self._pending.done():
            self._again = True
            return
        checkpoint = self.progress()
        future = asyncio.get_running_loop().run_in_executor(None, self._write, checkpoint)
        self._pending = future
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, LeaseLost):
            self.signal.stop("lease lost", lost=True)
        elif error is not None:
            log.error("checkpoint save failed for job %s: %s", self.claimed.id, error)
        else:
            self.saved()
        if self._again and not self.signal.lost:
            self._again = False
            with contextlib.suppress(Interrupt, SerializationError):
                self.save_async(True)

    async def settle(self) -> None:
        """Wait for the save in flight, if any."""
        while self._pending is not None and not self._pending.done():
            await asyncio.wait([self._pending])

    async def flush(self) -> None:
        """Wait for the save in flight, then save now, without blocking the event loop."""
        await self.settle()
        self._again = False
        if self.signal.lost:
            raise Interrupt("lease lost")
        checkpoint = self.progress()
        try:
            await asyncio.to_thread(self._write, checkpoint)
        except LeaseLost:
            self.signal.stop("lease lost", lost=True)
            raise Interrupt("lease lost") from None
        self.saved()


def open_runner(
    job: Job,
    claimed: Claimed,
    signal: StopSignal,
    save: Callable[[bool], None],
    writer: CheckpointWriter | None,
    notify: Callable[..., None],
    started: float,
) -> StepRunner:
    """The step runner of ``job``, an execution of ``claimed`` that began at ``started``
    (monotonic); an async job's saves go through ``writer``."""
    cls = type(job)
    return StepRunner(
        job,
        serialization.from_json(claimed.steps) or [],
        signal,
        save if writer is None else writer.save_async,
        interval=float(cls.checkpoint_interval),
        max_run_time=cls.max_run_time,
        flush=None if writer is None else writer.flush,
        notify=notify,
        started=started,
    )
