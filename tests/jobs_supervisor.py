"""Jobs for the ``onward worker --processes N`` tests: they report which process ran them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from onward import Job, Retry
from onward.steps import Step


class MeetsAnotherProcess(Job):
    """Writes its process id into ``directory``, then waits until ``parties`` different
    processes have done so: it can only succeed if that many processes run jobs at once."""

    def perform(self, directory: str, parties: int, timeout: float = 30.0) -> int:
        Path(directory, str(os.getpid())).touch()
        deadline = time.monotonic() + timeout
        while len(os.listdir(directory)) < parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {os.listdir(directory)} arrived")
            time.sleep(0.01)
        return os.getpid()


class CrashesItsProcessOnce(Job):
    """Kills its own worker process the first time (``marker`` does not exist yet)."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, marker: str) -> int:
        if not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()


class CountsUntilStopped(Job):
    """Advances a cursor every few milliseconds until the worker stops it (then resumes);
    writes ``started`` once running. Finishes after ``limit`` items."""

    checkpoint_interval = 0

    def perform(self, started: str, limit: int = 100_000) -> int:
        Path(started).touch()
        self.step("count", self.count)
        return int(self.state.get("counted", 0))

    def count(self, step: Step) -> None:
        for item in range(step.cursor or 0, 100_000):
            self.state["counted"] = item + 1
            time.sleep(0.005)
            step.advance(from_=item)
