"""Jobs used by the command-line tests (importable as ``cli_jobs`` by in-process workers
and by subprocesses whose PYTHONPATH includes this directory)."""

from __future__ import annotations

import threading
from typing import Any

from onward import Job, Retry, Step


class Greet(Job):
    def perform(self, name: str, punctuation: str = "!") -> str:
        return f"hello {name}{punctuation}"


class Chain(Job):
    """Enqueues ``Greet`` twice on success: a parent with two children."""

    def perform(self, name: str) -> str:
        return name

    def continuations(self, name: str) -> None:
        Greet.perform_later(f"{name}-1")
        Greet.perform_later(f"{name}-2")


class Boom(Job):
    retry = Retry(attempts=1)

    def perform(self, message: str) -> None:
        raise RuntimeError(message)


class Mailing(Job):
    queue = "mailers"

    def perform(self) -> None:
        return None


#: Set by a test to make ``Flaky`` fail in step ``process`` once its cursor reaches 5.
flaky_fail = threading.Event()


class Flaky(Job):
    """Two steps; counts how often each step body ran in ``self.state``."""

    retry = Retry(attempts=1)
    checkpoint_interval = 0
    resume_errors_after_advancing = False  # fail for good, so that `onward retry` is needed

    def perform(self) -> dict[str, Any]:
        self.step("prepare", self.prepare)
        self.step("process", self.process)
        return self.state

    def prepare(self) -> None:
        self.state["prepare_runs"] = self.state.get("prepare_runs", 0) + 1

    def process(self, step: Step) -> None:
        step.total = 10
        for i in range(step.cursor or 0, 10):
            if i == 5 and flaky_fail.is_set():
                raise RuntimeError("failed at item 5")
            self.state.setdefault("processed", []).append(i)
            step.advance(from_=i)


#: ``Gated`` waits on this inside its step, after advancing 3 of 10 items.
gate = threading.Event()


class Gated(Job):
    checkpoint_interval = 0

    def perform(self) -> None:
        self.step("work", self.work)

    def work(self, step: Step) -> None:
        step.total = 10
        for i in range(step.cursor or 0, 10):
            if i == 3:
                step.checkpoint()
                if not gate.wait(30):
                    raise TimeoutError("the test never opened the gate")
            step.advance(from_=i)


class Countdown(Job):
    """A chain of ``n + 1`` jobs, each enqueuing the next as its continuation."""

    def perform(self, n: int) -> int:
        return n

    def continuations(self, n: int) -> None:
        if n > 0:
            Countdown.perform_later(n - 1)
