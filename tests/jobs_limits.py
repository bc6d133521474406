"""Jobs with concurrency and rate limits, for the tests that run them in worker processes.
Each records when it started and ended (its result), so the tests measure the limits."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from onward import Job, Throttle
from onward.steps import Step

HOLD = float(os.environ.get("ONWARD_TEST_HOLD", "0.15"))


def _times(started: float, **more: Any) -> dict[str, Any]:
    return {"start": started, "end": time.time(), "pid": os.getpid(), **more}


class Capped(Job):
    """At most two at once per account."""

    concurrency = 2

    def limit_key(self, number: int, account: str) -> str:
        return f"account:{account}"

    def perform(self, number: int, account: str) -> dict[str, Any]:
        started = time.time()
        time.sleep(HOLD)
        return _times(started, key=f"account:{account}")


class Free(Job):
    """No limits."""

    def perform(self, number: int) -> dict[str, Any]:
        return _times(time.time())


class Throttled(Job):
    """At most three starts per second."""

    throttle = Throttle(3, per=timedelta(seconds=1))

    def perform(self, number: int) -> dict[str, Any]:
        return _times(time.time())


class SharedA(Job):
    """One at a time with SharedB: both return the key ``shared``."""

    concurrency = 1

    def limit_key(self, number: int) -> str:
        return "shared"

    def perform(self, number: int) -> dict[str, Any]:
        started = time.time()
        time.sleep(HOLD)
        return _times(started)


class SharedB(SharedA):
    pass


class Lingering(Job):
    """One at a time; runs until the file it is given exists (or 60 s)."""

    concurrency = 1

    def perform(self, number: int, until: str) -> dict[str, Any]:
        started = time.time()
        deadline = started + 60
        while not Path(until).exists() and time.time() < deadline:
            time.sleep(0.02)
        return _times(started)


class SteppedCapped(Job):
    """One at a time; steps over items with a save at every item."""

    concurrency = 1
    checkpoint_interval = 0

    def perform(self, number: int, items: int) -> dict[str, Any]:
        started = time.time()
        self.step("items", lambda step: self.walk(step, items))
        return _times(started, resumptions=self.resumptions)

    def walk(self, step: Step, items: int) -> None:
        step.total = items
        for item in range(step.cursor or 0, items):
            time.sleep(0.01)
            step.advance(from_=item)


class OnePerAccount(Job):
    """One at a time per account; three starts per minute per account."""

    concurrency = 1
    throttle = Throttle(3, per=timedelta(minutes=1))

    def limit_key(self, account: int) -> str:
        return f"account:{account}"

    def perform(self, account: int) -> None:
        return None


class ThreePerMinute(Job):
    """Three starts per minute, shared by every job of the class."""

    throttle = Throttle(3, per=60)

    def perform(self, number: int) -> None:
        return None
