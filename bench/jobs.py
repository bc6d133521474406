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
