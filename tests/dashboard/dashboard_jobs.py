"""Job classes for the dashboard tests (module level, so workers import them by path).

:data:`THROTTLE` lets a test run :class:`Stepped` one item at a time: the job processes an
item only once the test allowed it, and the test waits until the item's checkpoint is saved.
"""

from __future__ import annotations

import threading
from typing import Any

from onward import Job, Retry, Step

WAIT = 30.0


class Throttle:
    """Items a job may process (``allow``) and items it has saved (``wait_saved``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.allowed = 0
        self.saved = 0
        self.opened = False

    def allow(self, count: int = 1) -> None:
        with self._cond:
            self.allowed += count
            self._cond.notify_all()

    def open(self) -> None:
        """Let every item through (so no job thread is left waiting)."""
        with self._cond:
            self.opened = True
            self._cond.notify_all()

    def take(self) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.opened or self.saved < self.allowed, WAIT):
                raise TimeoutError("the test never allowed the next item")

    def saved_one(self) -> None:
        with self._cond:
            self.saved += 1
            self._cond.notify_all()

    def wait_saved(self, count: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.saved >= count, WAIT):
                raise AssertionError(f"the job saved {self.saved} items, expected {count}")


THROTTLE = Throttle()


def reset() -> None:
    global THROTTLE
    THROTTLE.open()
    THROTTLE = Throttle()


class Stepped(Job):
    """Three steps; ``process`` handles ``n`` items under :data:`THROTTLE`, saving each."""

    queue = "steps"
    checkpoint_interval = 0

    def perform(self, n: int) -> dict[str, int]:
        self.n = n
        self.step("prepare", lambda: None)
        self.step("process", self.process)
        self.step("finish", lambda: None)
        return {"processed": n}

    def process(self, step: Step) -> None:
        step.total = self.n
        throttle = THROTTLE
        for item in range(step.cursor or 0, self.n):
            throttle.take()
            step.advance(from_=item)
            throttle.saved_one()


class Boom(Job):
    """Always fails, at once, with its first argument as the message."""

    retry = Retry(attempts=1)

    def perform(self, message: str, **details: Any) -> None:
        raise ValueError(message)


class Quick(Job):
    def perform(self, value: Any = None) -> Any:
        return value


class Grandchild(Job):
    def perform(self, value: Any) -> Any:
        return value


class Child(Job):
    def perform(self, value: Any) -> Any:
        return value

    def continuations(self, value: Any) -> None:
        if value == "a":
            Grandchild.perform_later("a1")


class Parent(Job):
    """Its success enqueues two children; the first enqueues a grandchild."""

    def perform(self) -> str:
        return "done"

    def continuations(self) -> None:
        Child.perform_later("a")
        Child.perform_later("b")


class Later(Job):
    """Meant to stay enqueued (tests enqueue it with a wait)."""

    queue = "later"

    def perform(self) -> None:
        pass


class Flaky(Job):
    """Fails its first try, then succeeds."""

    retry = Retry(attempts=2, backoff=0)
    tries: dict[str, int] = {}

    def perform(self) -> str:
        Flaky.tries[self.id] = Flaky.tries.get(self.id, 0) + 1
        if Flaky.tries[self.id] == 1:
            raise ConnectionError("the mail server hung up")
        return "sent"


class Fanout(Job):
    """Its success enqueues ``n`` :class:`Later` jobs (which wait an hour)."""

    def perform(self, n: int) -> None:
        pass

    def continuations(self, n: int) -> None:
        for _ in range(n):
            Later.set(wait=3600).perform_later()


class StopsInStep(Job):
    """Fails inside its ``load`` step after ``advance`` items (a ``prepare`` step that saves
    nothing comes first), and waits an hour before trying again."""

    retry = Retry(attempts=3, backoff=3600)

    def perform(self, advance: int) -> None:
        self.advance = advance
        self.step("prepare", lambda: None)
        self.step("load", self.load)

    def load(self, step: Step) -> None:
        step.total = 10
        for item in range(self.advance):
            step.advance(from_=item)
        raise ConnectionError("the source went away")
