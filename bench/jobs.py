"""Job classes the benchmarks enqueue; ``onward worker --import bench.jobs`` runs them."""

from __future__ import annotations

import time

from onward import Job


class Noop(Job):
    """Does nothing: what is measured is Onward's own cost per job."""

    queue = "bench"

    def perform(self, n: int = 0) -> None:
        return None


class StartedAt(Job):
    """Returns the wall-clock time it started: enqueue-to-start latency, across processes."""

    queue = "bench"

    def perform(self) -> float:
        return time.time()


class TenChildren(Job):
    """A parent whose success enqueues ten ``Noop`` continuations in the same transaction."""

    queue = "bench"

    def perform(self, n: int = 0) -> None:
        return None

    def continuations(self, n: int = 0) -> None:
        Noop.perform_all_later([(i,) for i in range(10)])


class TwoPerKey(Job):
    """Does nothing, at most two at once per key (``n % 1000``: 1,000 keys)."""

    queue = "bench"
    concurrency = 2

    def limit_key(self, n: int = 0) -> str:
        return f"key:{n % 1000}"

    def perform(self, n: int = 0) -> None:
        return None


class OneAtATime(Job):
    """Does nothing, one at a time in all (the class path is the key)."""

    queue = "bench"
    concurrency = 1

    def perform(self, n: int = 0) -> None:
        return None
