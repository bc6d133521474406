"""Waiting in tests for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["poll"]


def poll(condition: Callable[[], bool], what: str = "condition", *, timeout: float, interval: float = 0.01) -> None:
    """Wait until ``condition()`` is true, looking every ``interval`` seconds; fail with
    "timed out waiting for ``what``" after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
