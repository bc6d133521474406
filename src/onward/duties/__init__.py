"""Work a worker does besides running jobs, on its main thread: each duty runs every so often.

A duty is small and quick (a statement or two); what it finds is acted on by the store in one
guarded transaction, so any number of workers may do the same duty at once.
"""

from __future__ import annotations

from typing import Protocol

from onward.stores.base import Store

__all__ = ["Duty"]


class Duty(Protocol):
    """One periodic duty of a worker."""

    #: Shown in logs when the duty fails.
    name: str

    def interval(self) -> float:
        """Seconds until the duty should run again (asked after each run)."""
        ...

    def run(self, store: Store) -> bool:
        """Do the duty once; ``True`` when jobs may have become ready because of it."""
        ...

    def close(self, store: Store) -> None:
        """The worker stops: leave the store as a stopped worker should (quick; may fail)."""
        ...
