"""Queues for operators: listing them with their counts, pausing and resuming them.

Part of :class:`onward.admin.Admin` (``onward queues``, the dashboard's Queues page)::

    ops = Admin(onward.connect())
    for q in ops.queues():
        print(q.name, q.counts["enqueued"], q.counts["running"], q.paused)
    ops.pause_queue("mailers")     # no worker claims from it; enqueueing goes on
    ops.resume_queue("mailers")

A queue exists as soon as a job uses it; a queue may also be paused before any job does.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from onward.admin_values import STATES
from onward.stores.base import Store

__all__ = ["MAX_QUEUE_NAME", "QueueAdmin", "QueueView", "check_queue_name"]

#: The longest queue name accepted.
MAX_QUEUE_NAME = 200


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue: its jobs per state (every state appears, zero or not), and whether it is
    paused (since ``paused_at``, UTC)."""

    name: str
    counts: dict[str, int]
    paused: bool
    paused_at: datetime | None


def check_queue_name(name: object) -> str:
    """``name`` if it can name a queue, else ``ValueError`` saying why."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a queue name must be a non-empty str, got {name!r}")
    if len(name) > MAX_QUEUE_NAME:
        raise ValueError(f"queue name {name[:20]!r}... is longer than {MAX_QUEUE_NAME} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise ValueError(f"queue name {name!r} holds control characters or lone surrogates")
    return name


class QueueAdmin:
    """``queues``, ``pause_queue`` and ``resume_queue`` of :class:`onward.admin.Admin`."""

    store: Store

    def queues(self) -> list[QueueView]:
        """Every queue that has jobs or is paused, by name."""
        counts: dict[str, dict[str, int]] = {}
        for row in self.store.count_jobs():
            per_state = counts.setdefault(row.queue, dict.fromkeys(STATES, 0))
            per_state[row.state] = per_state.get(row.state, 0) + row.count
        paused = {q.name: datetime.fromtimestamp(q.paused_at, UTC) for q in self.store.paused_queues()}
        return [
            QueueView(name, counts.get(name, dict.fromkeys(STATES, 0)), name in paused, paused.get(name))
            for name in sorted(counts.keys() | paused.keys())
        ]

    def pause_queue(self, name: str) -> QueueView:
        """Pause queue ``name``: no worker claims its jobs until it is resumed; running jobs go
        on and enqueueing still works. Pausing a paused queue changes nothing."""
        self.store.set_queue_paused(check_queue_name(name), True)
        return self._queue(name)

    def resume_queue(self, name: str) -> QueueView:
        """Resume queue ``name``: workers claim its jobs again at once."""
        self.store.set_queue_paused(check_queue_name(name), False)
        return self._queue(name)

    def _queue(self, name: str) -> QueueView:
        found = next((q for q in self.queues() if q.name == name), None)
        return found or QueueView(name, dict.fromkeys(STATES, 0), False, None)
