"""Jobs for the cancellation tests; importable by worker subprocesses (``--import jobs_cancel``).

Each takes a directory where it leaves marker files ("started", ...), so that a test in
another process knows where the job is."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from onward import Job, Retry


def mark(where: str, name: str) -> None:
    Path(where, name).touch()


class Looping(Job):
    """Advances a step until it is stopped; a second step and continuations must never run."""

    retry = Retry(attempts=1)
    checkpoint_interval = 0

    def perform(self, where: str) -> str:
        self.where = where
        self.step("loop", self.loop)
        self.step("after", lambda: mark(where, "after"))
        return "done"

    def loop(self, step: object) -> None:
        mark(self.where, "started")
        while True:
            time.sleep(0.005)
            step.advance()  # type: ignore[attr-defined]

    def continuations(self, where: str) -> None:
        mark(where, "continued")


class Polling(Job):
    """No steps: loops until ``self.cancelled``, then returns."""

    retry = Retry(attempts=1)

    def perform(self, where: str) -> str:
        mark(where, "started")
        while not self.cancelled:
            time.sleep(0.005)
        mark(where, "noticed")
        return "stopped early"


class Sleeping(Job):
    """An async job waiting on an ``await``: cancellation cancels its task."""

    retry = Retry(attempts=1)

    async def perform(self, where: str) -> None:
        mark(where, "started")
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            mark(where, "cancelled-error")
            raise


class FailsOnce(Job):
    """Fails its first try and waits a long backoff before the next."""

    retry = Retry(attempts=3, backoff=600)

    def perform(self) -> str:
        if self.attempt == 1:
            raise ConnectionError("try again later")
        return "ok"


class Keyed(Job):
    def unique_key(self, key: str) -> str:
        return key

    def perform(self, key: str) -> str:
        return key


class Quick(Job):
    """Succeeds at once, with a continuation."""

    def perform(self, n: int) -> int:
        return n

    def continuations(self, n: int) -> None:
        Keyed.perform_later(f"after-{n}")
