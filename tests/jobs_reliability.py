"""Jobs for the reliability tests: crashes, graceful stops, timeouts, recycled processes."""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from pathlib import Path

from jobs_core import event, wait_for_file
from onward import Job, Retry


class WaitsOnceForEvent(Job):
    """Sets event ``started``, then waits for event ``go``; a single attempt."""

    retry = Retry(attempts=1)

    def perform(self, started: str, go: str, timeout: float = 30.0) -> str:
        event(started).set()
        if not event(go).wait(timeout):
            raise TimeoutError(f"event {go!r} never came")
        return "done"


class Short(Job):
    """Appends its number to ``dir/ran-<pid>`` (one line per execution)."""

    def perform(self, n: int, directory: str) -> int:
        with open(os.path.join(directory, f"ran-{os.getpid()}"), "a") as f:
            f.write(f"{n}\n")
        return n


class Segfaults(Job):
    """Kills its worker process with a segmentation fault on its first attempt."""

    def perform(self, directory: str) -> str:
        Path(directory, f"segfault-{self.attempt}").touch()
        if self.attempt == 1:
            ctypes.string_at(0)
        return "survived"


class Hangs(Job):
    """Writes ``dir/started-<attempt>`` and waits until ``dir/go`` exists (across processes)."""

    retry = Retry(attempts=2, backoff=0)

    def perform(self, directory: str, timeout: float = 120.0) -> int:
        marker = Path(directory, f"started-{self.attempt}")
        Path(f"{marker}.tmp").write_text(str(os.getpid()))
        os.replace(f"{marker}.tmp", marker)  # whole when it appears: a test reads it at once
        wait_for_file(os.path.join(directory, "go"), timeout)
        return self.attempt


class HangsFirstTime(Job):
    """Hangs on its first attempt (in a thread that cannot be stopped) until ``dir/go``
    exists; later attempts return at once."""

    timeout = 0.5
    retry = Retry(attempts=3, backoff=0)

    def perform(self, directory: str) -> int:
        Path(directory, f"started-{self.attempt}-{os.getpid()}").touch()
        if self.attempt == 1:
            wait_for_file(os.path.join(directory, "go"), 600)
            self.state["abandoned code ran on"] = True
            self.step("after", lambda: None)
        return self.attempt


class Sleeps(Job):
    """Sleeps ``seconds``; no timeout of its own."""

    retry = Retry(attempts=1)

    def perform(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"


class SleepsAsync(Job):
    """An async job that sleeps ``seconds``; ``timeout`` cancels it."""

    timeout = 0.3
    retry = Retry(attempts=1)

    async def perform(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"


class Grows(Job):
    """Keeps ``mb`` MB alive in its process (a leak), then returns its pid."""

    _kept: list[bytes] = []

    def perform(self, mb: int) -> int:
        Grows._kept.append(os.urandom(mb * 1024 * 1024))
        time.sleep(0.4)
        return os.getpid()


class Pid(Job):
    """Returns the pid of the worker process that ran it."""

    def perform(self) -> int:
        time.sleep(0.01)
        return os.getpid()
