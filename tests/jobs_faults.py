"""Jobs run by worker processes under connection faults (tests/integration/test_proxy_faults.py).

Every execution appends one line to the file named by ``$ONWARD_FAULTS_LOG`` (the effect the
test counts); imported by a worker with that variable set, the module also declares a schedule
ticking every second."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import onward
from jobs_core import append_line
from onward import Job, Retry

LOG = os.environ.get("ONWARD_FAULTS_LOG")
RETRY = Retry(attempts=25, backoff=0.1)


def effect(*words: Any) -> None:
    append_line(os.environ["ONWARD_FAULTS_LOG"], " ".join(str(w) for w in words))


class ChainLink(Job):
    """Link ``i`` of chain ``chain`` (``n`` links): its continuations enqueue the next link
    and two leaves in one batch (``perform_all_later``)."""

    retry = RETRY

    def perform(self, chain: int, i: int, n: int) -> int:
        effect("link", self.id, chain, i)
        time.sleep(0.01)
        return i

    def continuations(self, chain: int, i: int, n: int) -> None:
        if i + 1 < n:
            ChainLink.perform_later(chain, i + 1, n)
        Leaf.perform_all_later([(chain, i, 0), (chain, i, 1)])


class Leaf(Job):
    retry = RETRY

    def perform(self, chain: int, i: int, k: int) -> None:
        effect("leaf", self.id, chain, i, k)


class Stepped(Job):
    """Processes ``items`` items, saving the cursor after each (``checkpoint_interval = 0``):
    after any fault, at most the item in flight runs again."""

    retry = RETRY
    checkpoint_interval = 0.0

    def perform(self, key: int, items: int) -> None:
        self.key, self.items = key, items
        self.step("work", self.work)
        self.step("done", lambda: effect("done", self.id, key))

    def work(self, step: onward.Step) -> None:
        for i in range(step.cursor or 0, self.items):
            effect("item", self.id, self.key, i)
            time.sleep(0.01)
            step.advance(from_=i)


class Delayed(Job):
    retry = RETRY

    def perform(self, n: int) -> None:
        effect("delayed", self.id, n)


class Tick(Job):
    retry = RETRY

    def perform(self) -> None:
        effect("tick", self.id, self.scheduled_for.isoformat() if self.scheduled_for else "-")


if LOG:
    onward.schedule("faults-tick", Tick, every=timedelta(seconds=1))
