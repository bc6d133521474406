"""``$ONWARD_BENCH_SCHEDULES`` schedules with ``every=1`` (``onward worker --import bench.schedule_app``):
each enqueues a no-op job on the queue ``bench-ticks``."""

from __future__ import annotations

import os

import onward
from bench.jobs import Noop

TICK_QUEUE = "bench-ticks"

for i in range(int(os.environ.get("ONWARD_BENCH_SCHEDULES", "0"))):
    onward.schedule(f"bench-{i:04d}", Noop, every=1, args=(i,), queue=TICK_QUEUE, overlap=True)
