"""Jobs that schedules enqueue in the tests (importable by worker processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from onward import Job


class Tick(Job):
    """Returns the tick it was enqueued for, as its job saw it (``self.scheduled_for``)."""

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        return None if self.scheduled_for is None else self.scheduled_for.isoformat()


class Other(Job):
    def perform(self) -> None:
        return None


class HoldUntilFile(Job):
    """Runs until the file ``path`` exists (a tick's job that is still running at the next tick)."""

    def perform(self, path: str) -> str | None:
        deadline = time.monotonic() + 120
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        return None if self.scheduled_for is None else self.scheduled_for.isoformat()


class Keyed(Job):
    """A unique job: while one is enqueued or running, another tick names that one."""

    def unique_key(self, name: str) -> str:
        return f"keyed:{name}"

    def perform(self, name: str) -> str:
        return name


def touch(path: Path) -> None:
    path.write_text("go")
